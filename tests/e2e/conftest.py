"""The browser stories' stage: the live server on PostgreSQL, a real Celery worker and beat as
subprocesses (sweeps, outbox, sandbox webhooks), one Chromium, and the checks every page of a
story passes: no horizontal scroll, no console error, no request to another host, no serious or
critical axe-core violation; a screenshot of each key page.

Time moves with the product's own clock (`tradeassure.core.clock`, TA_CLOCK_OFFSET_FILE): the
web process, the worker and beat all read the same offset file, so a sweep that runs after
`stage.travel(...)` sees the deadline passed, exactly as it would in production days later.
"""

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import CHROMIUM_ARGS
from tradeassure.celery import app as celery_app
from tradeassure.core import clock

AXE = Path(__file__).parent / "vendor" / "axe.min.js"
AXE_URL_PATH = "/__tests__/axe.min.js"
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}
WAIT_SECONDS = 60


def screenshots_dir() -> Path:
    """$TRADEASSURE_VAR_DIR/screenshots (README "Browser stories"), var/screenshots by default."""
    base = os.environ.get("TRADEASSURE_VAR_DIR") or str(Path(settings.BASE_DIR) / "var")
    return Path(base) / "screenshots"


def _database_url() -> str:
    db = connection.settings_dict
    credentials = db["USER"] or ""
    if db["PASSWORD"]:
        credentials += f":{db['PASSWORD']}"
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until(check: Callable[[], object], what: str, seconds: float = WAIT_SECONDS) -> object:
    """Poll `check` until it returns something truthy (the worker acts asynchronously)."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


class Stage:
    """The running system: where the server is, the worker's log, and the shared clock."""

    def __init__(self, url: str, offset_file: Path, logs: dict[str, Path], processes: dict):
        self.url = url
        self.offset_file = offset_file
        self.logs = logs
        self.processes = processes

    def travel(self, **delta: float) -> None:
        """Move every process's clock forward (web, worker, beat read the same file)."""
        clock.travel(str(self.offset_file), timedelta(**delta))

    def sweep(self, task: str) -> None:
        """Ask the worker to run a sweep now rather than at beat's next tick (same task, same
        broker, same worker: only sooner)."""
        with celery_app.connection_for_write() as conn:
            celery_app.send_task(task, connection=conn)

    def assert_alive(self) -> None:
        for name, process in self.processes.items():
            assert process.poll() is None, f"{name} exited:\n{self.logs[name].read_text()[-4000:]}"


@pytest.fixture
def stage(live_server, redis_url, tmp_path, settings) -> Iterator[Stage]:
    """Live server + `celery worker` + `celery beat` on the test database and a Redis broker."""
    # (The tests carry the postgres, redis and browser markers: tests/conftest.py skips them, or
    # fails them under TRADEASSURE_REQUIRE_SERVICES=1, when a service is missing.)
    from tradeassure.platform.schedules import sync_periodic_tasks

    offset_file = tmp_path / "clock-offset"
    offset_file.write_text("0")
    settings.TA_CLOCK_OFFSET_FILE = str(offset_file)
    settings.SITE_URL = live_server.url
    # Web requests queue real messages: the worker runs them, not the test process.
    celery_app.conf.task_always_eager = False
    # A transactional test starts from flushed tables: write beat's schedules again.
    sync_periodic_tasks(sender=None)
    with celery_app.connection_for_write() as conn:
        conn.default_channel.client.delete("celery")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tradeassure.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_url,
        "TRADEASSURE_VAR_DIR": str(tmp_path),
        "TA_CLOCK_OFFSET_FILE": str(offset_file),
        "SITE_URL": live_server.url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    commands = {
        "worker": [
            sys.executable, "-m", "celery", "-A", "tradeassure", "worker", "--pool=solo",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO",
        ],
        "beat": [
            sys.executable, "-m", "celery", "-A", "tradeassure", "beat", "--loglevel=INFO",
            "--schedule", str(tmp_path / "beat-schedule"),
        ],
    }  # fmt: skip
    processes: dict[str, subprocess.Popen] = {}
    logs: dict[str, Path] = {}
    for name, command in commands.items():
        logs[name] = tmp_path / f"{name}.log"
        with logs[name].open("w") as log:
            processes[name] = subprocess.Popen(
                command,
                cwd=Path(settings.BASE_DIR),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    stage = Stage(live_server.url, offset_file, logs, processes)
    try:
        wait_until(lambda: "ready." in logs["worker"].read_text(), "the worker to start", 90)
        yield stage
        stage.assert_alive()
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        celery_app.conf.task_always_eager = True


class Actor:
    """One person in a story: their own browser context (cookies), at the story's width, with
    every page they open checked."""

    def __init__(self, browser, stage: Stage, *, story: str, width: str, name: str, shots):
        self.stage = stage
        self.name = name
        self.story = story
        self.width = width
        self.shots = shots
        self.host = urlparse(stage.url).netloc
        w, h = WIDTHS[width]
        self.context = browser.new_context(
            base_url=stage.url, viewport={"width": w, "height": h}, timezone_id="Europe/Paris"
        )
        self.context.set_default_timeout(20_000)
        self.errors: list[str] = []
        self.foreign: list[str] = []
        # axe-core is served from the server's own origin (a route in this context only), so
        # the site's CSP (script-src 'self') holds while it is injected.
        self.context.route(f"**{AXE_URL_PATH}", lambda route: route.fulfill(path=str(AXE)))
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"{self.page.url}: {error}"))
        self.page.on("request", self._request)

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"{self.page.url}: {message.text}")

    def _request(self, request) -> None:
        parsed = urlparse(request.url)
        if parsed.scheme in ("data", "blob", "about"):
            return
        if parsed.netloc != self.host:
            self.foreign.append(request.url)

    def check(self, name: str | None = None) -> None:
        """The checks of every page: call after each navigation. `name` also saves a
        screenshot of a key page."""
        page = self.page
        page.wait_for_load_state("load")
        self.stage.assert_alive()
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if scroll > inner:
            wide = page.evaluate(
                """() => [...document.querySelectorAll("body *")]
                  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                  .filter(e => ![...e.children].some(
                      c => c.getBoundingClientRect().right > window.innerWidth + 1))
                  .slice(0, 6)
                  .map(e => e.outerHTML.slice(0, 100) + " in " + e.parentElement.tagName + "." + e.parentElement.className + " → "
                            + Math.round(e.getBoundingClientRect().right))"""
            )
            raise AssertionError(
                f"{page.url} scrolls sideways at {self.width}: {scroll} > {inner}; widest: {wide}"
            )
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.add_script_tag(url=AXE_URL_PATH)
        violations = page.evaluate(
            """async () => {
                const result = await axe.run(document, {resultTypes: ["violations"]});
                return result.violations
                  .filter(v => v.impact === "serious" || v.impact === "critical")
                  .map(v => ({id: v.id, impact: v.impact, help: v.help,
                              nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
            }"""
        )
        assert not violations, f"axe on {page.url} at {self.width}: {violations}"
        if name:
            self.shots(self, name)

    def goto(self, path: str, name: str | None = None) -> None:
        response = self.page.goto(path)
        assert response is not None and response.status < 400, (path, response and response.status)
        self.check(name)

    def close(self) -> None:
        assert not self.errors, f"console errors: {self.errors}"
        assert not self.foreign, f"requests to other hosts: {self.foreign}"
        self.context.close()


@pytest.fixture
def cast(stage, monkeypatch, request) -> Iterator[Callable[..., Actor]]:
    """`cast("buyer")` → an Actor in a fresh context at the test's width (param `width`)."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    width = request.node.callspec.params["width"]
    story = re.sub(r"^test_|\[.*$", "", request.node.name)
    folder = screenshots_dir() / f"{story}-{width}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    counter = iter(range(1, 1000))

    def shot(actor: Actor, name: str) -> None:
        actor.page.screenshot(
            path=str(folder / f"{next(counter):02d}-{actor.name}-{name}.png"), full_page=True
        )

    actors: list[Actor] = []
    with sync_playwright() as playwright:
        chromium = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)

        def make(name: str) -> Actor:
            actor = Actor(browser, stage, story=story, width=width, name=name, shots=shot)
            actors.append(actor)
            return actor

        try:
            yield make
            for actor in actors:
                actor.close()
        finally:
            browser.close()
            from django.db import connections

            connections.close_all()
