"""The deployed gunicorn (its command as docker-compose.yml and the Dockerfile run it) leaves
long request lines to Django, so an over-long query string under /api/ is a problem+json 414
and a path with an encoded newline a problem+json 404, never gunicorn's own HTML page."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _compose_web_command() -> list[str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return list(compose["services"]["web"]["command"])


def _dockerfile_command() -> list[str]:
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("CMD "):
            return json.loads(line[4:])
    raise AssertionError("no CMD in the Dockerfile")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def gunicorn_url(tmp_path_factory):
    # the compose web command, bound to a free loopback port with one worker (these requests
    # are answered before any database access)
    tmp_path = tmp_path_factory.mktemp("gunicorn")
    port = _free_port()
    args = [
        arg
        for arg in _compose_web_command()[1:]
        if not arg.startswith(("--bind", "--workers", "--access-logfile"))
    ]
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            *args,
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
        ],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "false"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/healthz/live", timeout=30)
                break
            except OSError:  # refused while it boots
                assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_compose_and_the_image_run_gunicorn_without_its_own_request_line_limit():
    assert "--limit-request-line=0" in _compose_web_command()
    assert "--limit-request-line=0" in _dockerfile_command()


@pytest.mark.parametrize("length", [5_000, 9_000, 100_000])
def test_long_query_string_over_gunicorn_is_a_problem_414(gunicorn_url, length):
    # when a partner sends a query string longer than Django's limit (8,192) — below and above
    # gunicorn's default request line limit (4,094 and 8,190)
    status, content_type, body = _get(f"{gunicorn_url}/api/v1/events/?topic={'x' * length}")
    # then 414 problem+json from Django (under 8,192: the request reaches the view: 401)
    if length < 8192:
        assert status == 401, body[:300]
    else:
        assert status == 414, body[:300]
        assert json.loads(body)["code"] == "request_uri_too_long"
    assert content_type == "application/problem+json"


def test_path_with_an_encoded_newline_over_gunicorn_is_a_problem_404(gunicorn_url):
    status, content_type, body = _get(f"{gunicorn_url}/api/v1/%0A")
    assert status == 404, body[:300]
    assert content_type == "application/problem+json"
