"""The product's clock can be moved forward for every process at once (tests and demos), and
the production profile refuses to start with that setting."""

import os
import subprocess
import sys
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from tradeassure.core import clock


def test_the_offset_file_moves_now_and_follows_its_changes(settings, tmp_path):
    # given no offset file: the clock is the wall clock
    settings.TA_CLOCK_OFFSET_FILE = ""
    before = clock.now()
    assert abs(before - timezone.now()) < timedelta(seconds=5)

    # when an offset file is set and moved by 3 days, then by 2 more
    path = tmp_path / "offset"
    settings.TA_CLOCK_OFFSET_FILE = str(path)
    assert clock.travel(str(path), timedelta(days=3)) == timedelta(days=3)
    three = clock.now()
    clock.travel(str(path), timedelta(days=2))
    five = clock.now()

    # then now() follows the file each time it changes
    assert timedelta(days=3) <= three - before < timedelta(days=3, minutes=1)
    assert timedelta(days=5) <= five - before < timedelta(days=5, minutes=1)


def test_an_unreadable_or_missing_offset_file_leaves_the_clock_alone(settings, tmp_path):
    path = tmp_path / "offset"
    settings.TA_CLOCK_OFFSET_FILE = str(path)
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=5)
    path.write_text("not a number")
    assert abs(clock.now() - timezone.now()) < timedelta(seconds=5)


def test_another_process_reads_the_same_moved_clock(tmp_path):
    # given the clock moved 10 days in a file
    path = tmp_path / "offset"
    clock.travel(str(path), timedelta(days=10))

    # when another process (as the worker would) reads its clock with the same file
    code = (
        "import django; django.setup(); from tradeassure.core import clock;"
        "from django.utils import timezone;"
        "print(round((clock.now() - timezone.now()).total_seconds()))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tradeassure.settings"}
    env["TA_CLOCK_OFFSET_FILE"] = str(path)
    output = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    # then it sees the same 10 days
    assert int(output.strip().splitlines()[-1]) == 10 * 86400


def test_the_production_profile_refuses_a_moved_clock(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings.production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "example.com",
        "TA_CLOCK_OFFSET_FILE": str(tmp_path / "offset"),
    }
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "TA_CLOCK_OFFSET_FILE moves the clock" in result.stderr
