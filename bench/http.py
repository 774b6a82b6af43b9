"""Serve an app with gunicorn and load it from another process (wrk, or bench.loadgen)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import BENCH_DIR, CONNECTIONS, ROOT, WORKERS


@dataclass
class Server:
    """`gunicorn <wsgi>` with WORKERS sync workers on 127.0.0.1:<port>, in its own session."""

    name: str
    wsgi: str
    port: int
    env: dict
    log_dir: Path
    probe: str = "/"
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        log = open(self.log_dir / f"gunicorn-{self.name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                str(gunicorn),
                self.wsgi,
                "--workers",
                str(WORKERS),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--timeout",
                "120",
                "--backlog",
                "2048",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn for {self.name} exited; see {log.name}")
            try:
                urllib.request.urlopen(self.url + self.probe, timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"gunicorn for {self.name} did not answer in 60 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def loader() -> str:
    """ "wrk" when installed (apt-get install wrk), else the bundled Python load generator."""
    forced = os.environ.get("BENCH_LOADER")
    if forced:
        return forced
    return "wrk" if shutil.which("wrk") else "python"


def load(
    url: str,
    *,
    seconds: float,
    headers: dict[str, str],
    body: str | None = None,
    prefix: str = "",
    suppliers: list[int] | None = None,
    work_dir: Path,
) -> dict:
    """Load `url` with CONNECTIONS connections for `seconds`; GET, or POST when `body` is given.

    Returns requests, seconds, rps, errors (non-2xx/3xx or socket), p50_ms, p99_ms."""
    env = {**os.environ, "BENCH_SUPPLIERS": ",".join(str(s) for s in suppliers or [1])}
    header_args = [f"{name}: {value}" for name, value in headers.items()]
    body_file = None
    if body is not None:
        body_file = work_dir / f"body-{abs(hash(body))}.json"
        body_file.write_text(body)
    use_wrk = loader() == "wrk"
    if use_wrk:
        script = BENCH_DIR / "wrk" / ("post.lua" if body is not None else "get.lua")
        args = [str(body_file), prefix] if body is not None else []
        command = [
            "wrk",
            "-t",
            str(min(2, os.cpu_count() or 1)),
            "-c",
            str(CONNECTIONS),
            "-d",
            f"{int(seconds)}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
            "--",
            *args,
            *header_args,
        ]
    else:
        command = [
            sys.executable,
            "-m",
            "bench.loadgen",
            "--url",
            url,
            "--seconds",
            str(seconds),
            "--connections",
            str(CONNECTIONS),
            "--prefix",
            prefix,
        ]
        if body_file is not None:
            command += ["--body-file", str(body_file)]
        for header in header_args:
            command += ["--header", header]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result = json.loads(line.removeprefix("BENCH_JSON "))
            result["rps"] = result["requests"] / result["seconds"] if result["seconds"] else 0
            result["loader"] = "wrk" if use_wrk else "python"
            return result
    if use_wrk and not os.environ.get("BENCH_LOADER"):
        # Say so loudly, and still measure: the JSON records which loader each run used.
        print(f"WARNING: wrk gave no result ({done.stderr.strip()[:300]}); using bench.loadgen")
        os.environ["BENCH_LOADER"] = "python"
        return load(url, seconds=seconds, headers=headers, body=body, prefix=prefix,
                    suppliers=suppliers, work_dir=work_dir)  # fmt: skip
    raise RuntimeError(f"load generator printed no result: {done.stdout}\n{done.stderr}")
