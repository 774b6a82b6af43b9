"""The kernel's transition engine on a small made-up lifecycle (no app involved)."""

from dataclasses import dataclass

import pytest
from django.db import models

from tradeassure.core.errors import InvalidTransition, NotAllowed
from tradeassure.core.transitions import Lifecycle, rows


class Lamp(models.TextChoices):
    OFF = "off", "Off"
    ON = "on", "On"
    BROKEN = "broken", "Broken"


@dataclass
class Subject:
    status: str
    bulb: bool = True
    pk: int = 1

    def save(self, *args, **kwargs) -> None:
        pass


def _has_bulb(subject: Subject) -> bool:
    return subject.bulb


def _not_twice(subject: Subject, party: str) -> str | None:
    return "You broke it already." if party == "child" and subject.status == Lamp.BROKEN else None


LAMP = Lifecycle(
    noun="lamp",
    transitions=[
        *rows("switch_on", Lamp.OFF, Lamp.ON, {"adult"}, "Switch on", _has_bulb, "No bulb."),
        *rows("switch_off", Lamp.ON, Lamp.OFF, {"adult", "child"}, "Switch off"),
        *rows("note", (Lamp.OFF, Lamp.ON), None, {"adult"}, "Write a note"),
        *rows("kick", (Lamp.ON, Lamp.BROKEN), Lamp.BROKEN, {"child"}, "Kick the lamp"),
    ],
    statuses=Lamp,
    event_model=models.Model,
    subject_field="lamp",
    party_rules={"kick": _not_twice},
)


def test_check_returns_the_row_the_party_may_take():
    # given a lamp that is off, with a bulb
    # when an adult switches it on
    row = LAMP.check(Subject(Lamp.OFF), "switch_on", "adult")
    # then the row moves it on
    assert (row.source, row.target, row.label) == (Lamp.OFF, Lamp.ON, "Switch on")


def test_an_action_not_possible_from_this_status_is_a_conflict_naming_the_status():
    with pytest.raises(InvalidTransition) as refused:
        LAMP.check(Subject(Lamp.BROKEN), "switch_on", "adult")
    assert refused.value.message == "“Switch on” is not possible while the lamp is broken."
    assert refused.value.code == "invalid_transition"


def test_a_party_the_map_does_not_name_is_not_allowed():
    with pytest.raises(NotAllowed) as refused:
        LAMP.check(Subject(Lamp.OFF), "switch_on", "child")
    assert refused.value.message == "You may not “Switch on” on this lamp."
    with pytest.raises(NotAllowed):
        LAMP.check(Subject(Lamp.OFF), "switch_on", None)


def test_a_guard_that_fails_refuses_with_its_own_words():
    with pytest.raises(InvalidTransition) as refused:
        LAMP.check(Subject(Lamp.OFF, bulb=False), "switch_on", "adult")
    assert refused.value.message == "No bulb."


def test_a_party_rule_refuses_with_its_own_words():
    assert LAMP.check(Subject(Lamp.ON), "kick", "child").target == Lamp.BROKEN
    with pytest.raises(InvalidTransition) as refused:
        LAMP.check(Subject(Lamp.BROKEN), "kick", "child")
    assert refused.value.message == "You broke it already."


def test_a_row_without_target_keeps_the_status():
    assert LAMP.check(Subject(Lamp.ON), "note", "adult").target == Lamp.ON


def test_available_is_what_check_would_allow():
    lamp = Subject(Lamp.ON)
    offered = {row.action for row in LAMP.available(lamp, "child", LAMP.actions)}
    assert offered == {"switch_off", "kick"}
    for action in LAMP.actions:
        try:
            LAMP.check(lamp, action, "child")
            allowed = True
        except (InvalidTransition, NotAllowed):
            allowed = False
        assert allowed == (action in offered), action
    assert LAMP.available(lamp, None, LAMP.actions) == []


def test_lookups():
    assert LAMP.actions == ["kick", "note", "switch_off", "switch_on"]
    assert LAMP.label_for("kick") == "Kick the lamp"
    assert LAMP.label_for("unknown") == "unknown"
    assert LAMP.row_for(Lamp.ON, "switch_off", "child").target == Lamp.OFF
    assert LAMP.row_for(Lamp.ON, "switch_on", "adult") is None
    assert LAMP.first_allowed(Subject(Lamp.OFF, bulb=False), "switch_on") is None
    assert LAMP.status_label("gone") == "gone"
