"""One transition engine for every lifecycle (orders, disputes): the rows of an explicit map, the
lookup with actor, guard and party rule, the refusal a person reads, and the move that writes the
timeline row in the caller's transaction.

Each app declares its map as `Transition` rows and wraps it in a `Lifecycle`; its services call
`Lifecycle.check` before changing anything and `Lifecycle.move` to change it, then publish their
own domain event. The kernel knows no app: models, statuses and parties come in as arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from django.db import models

from tradeassure.core import clock
from tradeassure.core.error_codes import CommonErrorCode
from tradeassure.core.errors import InvalidTransition, NotAllowed


class Subject(Protocol):
    """What a lifecycle moves: a model row with a status."""

    pk: Any
    status: str

    def save(self, *args: Any, **kwargs: Any) -> None: ...


T = TypeVar("T", bound=Subject)
Guard = Callable[[Any], bool]
PartyRule = Callable[[Any, str], "str | None"]


@dataclass(frozen=True)
class Transition:
    """One row of a map: `action` from `source` to `target` by one of `actors`.

    `guard` is a rule on the subject's facts (not on who acts) that must hold too; `refusal` is
    what a person reads when it does not. A `target` equal to the source keeps the status (a step
    on the timeline without a move)."""

    action: str
    source: str
    target: str
    actors: frozenset[str]
    label: str
    guard: Guard | None = None
    refusal: str = ""

    def allows(self, subject: Any) -> bool:
        return self.guard is None or bool(self.guard(subject))


def rows(
    action: str,
    sources: str | Iterable[str],
    target: str | None,
    actors: Iterable[str],
    label: str,
    guard: Guard | None = None,
    refusal: str = "",
) -> list[Transition]:
    """One row per source status; `target=None` keeps the status."""
    if isinstance(sources, str):
        sources = (sources,)
    return [
        Transition(action, source, target or source, frozenset(actors), label, guard, refusal)
        for source in sources
    ]


@dataclass
class Lifecycle(Generic[T]):
    """A map of transitions over one kind of subject, and how to record a move on its timeline.

    `statuses` gives the human label of a status; `party_rules` say when a party the map allows
    may not act, and why; `resolve_target` turns a symbolic target (e.g. "the status before the
    dispute") into a status; `event_model` / `subject_field` name the timeline rows."""

    noun: str
    transitions: Sequence[Transition]
    statuses: type[models.TextChoices]
    event_model: type[models.Model]
    subject_field: str
    party_rules: Mapping[str, PartyRule] = field(default_factory=dict)
    resolve_target: Callable[[Any, str], str] | None = None
    _by_key: dict[tuple[str, str], list[Transition]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {}
        for row in self.transitions:
            self._by_key.setdefault((row.action, row.source), []).append(row)

    @property
    def actions(self) -> list[str]:
        return sorted({row.action for row in self.transitions})

    def rows_from(self, action: str, source: str) -> list[Transition]:
        return self._by_key.get((action, source), [])

    def label_for(self, action: str) -> str:
        return next((r.label for r in self.transitions if r.action == action), action)

    def status_label(self, status: str) -> str:
        return str(self.statuses(status).label) if status in self.statuses.values else status

    def first_allowed(self, subject: T, action: str) -> Transition | None:
        """The row that applies to this subject now (first whose guard holds), whoever acts."""
        return next((r for r in self.rows_from(action, subject.status) if r.allows(subject)), None)

    def row_for(self, status: str, action: str, party: str | None) -> Transition | None:
        """The row for this party taking this action from this status (guards not applied)."""
        return next((r for r in self.rows_from(action, status) if party in r.actors), None)

    def party_refusal(self, subject: T, action: str, party: str) -> str | None:
        rule = self.party_rules.get(action)
        return rule(subject, party) if rule else None

    def check(self, subject: T, action: str, party: str | None) -> Transition:
        """The row this party may take now, or the refusal (see `check_as`)."""
        return self.check_as(subject, action, party)[0]

    def check_as(self, subject: T, action: str, party: str | None) -> tuple[Transition, str]:
        """The row this party may take now and the party itself (never None once accepted), or
        the refusal: `InvalidTransition` (409) when the subject's state forbids it, `NotAllowed`
        (403) when this party may never do it here."""
        candidates = self.rows_from(action, subject.status)
        if not candidates:
            raise InvalidTransition(
                f"“{self.label_for(action)}” is not possible while the {self.noun} is "
                f"{self.status_label(subject.status).lower()}.",
                code=CommonErrorCode.INVALID_TRANSITION,
            )
        if party is None or not any(party in row.actors for row in candidates):
            raise NotAllowed(
                f"You may not “{candidates[0].label}” on this {self.noun}.",
                code=CommonErrorCode.NOT_ALLOWED,
            )
        refusal = self.party_refusal(subject, action, party)
        if refusal:
            raise InvalidTransition(refusal, code=CommonErrorCode.INVALID_TRANSITION)
        for row in candidates:
            if party in row.actors and row.allows(subject):
                return row, party
        raise InvalidTransition(
            candidates[0].refusal or "Not possible now.", code=CommonErrorCode.INVALID_TRANSITION
        )

    def available(self, subject: T, party: str | None, actions: Iterable[str]) -> list[Transition]:
        """What this party may do to this subject now, among `actions`: map, guards, party rules."""
        if party is None:
            return []
        offered = []
        for action in actions:
            row = self.first_allowed(subject, action)
            if row and party in row.actors and self.party_refusal(subject, action, party) is None:
                offered.append(row)
        return offered

    def target_for(self, subject: T, row: Transition) -> str:
        if self.resolve_target is not None:
            return self.resolve_target(subject, row.target)
        return row.target

    def move(
        self,
        subject: T,
        row: Transition,
        *,
        party: str,
        actor: Any,
        note: str = "",
        data: dict[str, Any] | None = None,
        to_status: str | None = None,
    ) -> Any:
        """Apply a checked row to a locked subject: its status, and one timeline row, written in
        the caller's transaction. Returns the timeline row (its from/to status included)."""
        from_status = subject.status
        subject.status = to_status or self.target_for(subject, row)
        subject.save()
        return self.record(
            subject,
            action=row.action,
            party=party,
            actor=actor,
            note=note,
            data=data,
            from_status=from_status,
        )

    def record(
        self,
        subject: T,
        *,
        action: str,
        party: str,
        actor: Any,
        note: str = "",
        data: dict[str, Any] | None = None,
        from_status: str | None = None,
    ) -> Any:
        """A timeline row; without `from_status` a fact that is not a status move."""
        event = self.timeline_row(
            subject,
            action=action,
            party=party,
            actor=actor,
            note=note,
            data=data,
            from_status=from_status,
        )
        event.save(force_insert=True)
        return event

    def timeline_row(
        self,
        subject: T,
        *,
        action: str,
        party: str,
        actor: Any,
        note: str = "",
        data: dict[str, Any] | None = None,
        from_status: str | None = None,
    ) -> Any:
        """`record`'s timeline row, unsaved (for a caller that writes it with other rows)."""
        return self.event_model(
            **{self.subject_field: subject},
            action=action,
            actor_party=party,
            actor=actor,
            from_status=subject.status if from_status is None else from_status,
            to_status=subject.status,
            note=note,
            data=data or {},
            created_at=clock.now(),
        )
