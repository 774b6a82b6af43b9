"""A running production-profile stack for fault tests: its own PostgreSQL cluster and Redis
server (on free ports, so a test may stop and restart them), gunicorn, Celery workers and beats
as separate processes. Nothing here touches the developer's or CI's own services.

The binaries: `initdb`/`pg_ctl` from PATH or /usr/lib/postgresql/<newest>/bin, `redis-server`
from PATH (.ci/run installs postgresql and redis-server when missing). As root, the cluster is
run as the `postgres` OS user (PostgreSQL refuses to run as root).
"""

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
WAIT_SECONDS = int(
    os.environ.get("FAULT_WAIT_SECONDS", "120")
)  # upper bound for anything to come up or catch up; never a timing assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the thing polled may be down on purpose
            last_error = error
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last error: {last_error!r})")


def postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(f"{name} not found on PATH or in /usr/lib/postgresql/*/bin")
    return candidates[-1]


def missing_binaries() -> str | None:
    try:
        postgres_bin("initdb")
        postgres_bin("pg_ctl")
    except FileNotFoundError as error:
        return str(error)
    if not shutil.which("redis-server"):
        return "redis-server not found on PATH"
    return None


class PgCluster:
    """A throwaway PostgreSQL cluster in `directory`, listening on 127.0.0.1:`port`, trust auth."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.data = directory / "pgdata"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode:
            raise RuntimeError(f"{' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(
            postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.directory / "pg.log"),
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str):
        conn = psycopg2.connect(self.url(database), connect_timeout=5)
        conn.autocommit = True
        return conn

    def execute(self, sql: str, database: str = "postgres") -> None:
        conn = self.connect(database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()


class RedisServer:
    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        wait_for("Redis to answer", self.ping, timeout=30)

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), 1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        """A hard stop (SIGKILL): nothing flushed, like a crashed or partitioned Redis."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(30)
            self.process = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


class Proc:
    """One app process in its own session (so a kill reaches its children), logging to a file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Proc":
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=str(self.log_path.parent),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and all its children at once: a crash, no clean shutdown."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if not self.alive():
            self.process = None
            return
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    """The processes of one test, on its own copy of the seeded template database."""

    def __init__(self, base: "StackServices", database: str, directory: Path):
        self.base = base
        self.database = database
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.mail_file = directory / "mail.jsonl"
        self.mail_file.touch()
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.processes: list[Proc] = []
        # Processes started from now on see the clock this far ahead (tradeassure.core.clock).
        self.clock_offset_seconds = 0
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        return (
            self.base.env(self.database)
            | {
                "FAULT_MAIL_FILE": str(self.mail_file),
                "TRADEASSURE_CLOCK_OFFSET_SECONDS": str(self.clock_offset_seconds),
                # A killed dispatcher's claimed rows are taken over after 10 s, not 5 minutes.
                "OUTBOX_LEASE_SECONDS": "10",
            }
            | self.extra_env
        )

    def _proc(self, name: str, command: list[str]) -> Proc:
        proc = Proc(name, command, self.env(), self.directory)
        self.processes.append(proc)
        return proc

    def web(self) -> Proc:
        proc = self._proc(
            "web",
            [
                PYTHON, "-m", "gunicorn", "tradeassure.wsgi:application",
                f"--bind=127.0.0.1:{self.web_port}", "--workers=2", "--timeout=60",
                "--graceful-timeout=5",
            ],
        ).start()  # fmt: skip
        wait_for("gunicorn to answer", lambda: self.get("/healthz/live").status_code == 200)
        return proc

    def worker(self, name: str = "worker") -> Proc:
        return self._proc(
            name,
            [
                PYTHON, "-m", "celery", "-A", "tradeassure", "worker", "--loglevel=INFO",
                "--concurrency=2", f"--hostname={name}-{uuid.uuid4().hex[:6]}@%h",
                "--without-gossip", "--without-mingle",
            ],
        ).start()  # fmt: skip

    def beat(self, name: str = "beat") -> Proc:
        return self._proc(
            name,
            [
                PYTHON, "-m", "celery", "-A", "tradeassure", "beat", "--loglevel=INFO",
                f"--pidfile={self.directory / (name + '.pid')}",
            ],
        ).start()  # fmt: skip

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.kill()

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(f"{self.web_url}{path}", timeout=30, **kwargs)

    def query(self, sql: str, *params) -> list[tuple]:
        conn = self.base.pg.connect(self.database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            conn.close()

    def scalar(self, sql: str, *params) -> Any:
        return self.query(sql, *params)[0][0]

    def mails(self) -> list[dict]:
        return [json.loads(line) for line in self.mail_file.read_text().splitlines() if line]

    def send_task(self, name: str) -> None:
        """Queue a task on the stack's broker, as beat does at each tick."""
        from celery import Celery

        app = Celery()
        try:
            # An explicit connection: CELERY_BROKER_URL in the test's own environment would win
            # over a configured broker_url.
            with app.connection_for_write(self.base.redis.url(0)) as connection:
                app.send_task(name, connection=connection)
        finally:
            app.close()


class StackServices:
    """The PostgreSQL cluster and Redis server shared by the fault tests of one session."""

    TEMPLATE = "ta_faults_template"

    def __init__(self, directory: Path):
        self.directory = directory
        # Outside pytest's tmp folder (mode 700): the `postgres` user must reach its data dir.
        self.pg_directory = Path(tempfile.mkdtemp(prefix="ta-faults-pg-"))
        self.pg_directory.chmod(0o755)
        self.pg = PgCluster(self.pg_directory)
        self.redis = RedisServer(directory / "redis")
        self.secret_key = secrets.token_urlsafe(50)
        self.seed: dict = {}

    def env(self, database: str) -> dict[str, str]:
        var = self.directory / "var"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
        env.update(
            DJANGO_SETTINGS_MODULE="tradeassure.settings.production",
            SECRET_KEY=self.secret_key,
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.pg.url(database),
            CELERY_BROKER_URL=self.redis.url(0),
            REDIS_URL=self.redis.url(0),
            CACHE_URL=self.redis.url(1),
            SECURE_SSL_REDIRECT="false",
            SESSION_COOKIE_SECURE="false",
            CSRF_COOKIE_SECURE="false",
            SECURE_HSTS_SECONDS="0",
            PAYMENT_PROVIDER="sandbox",
            PAYOUT_PROVIDER="sandbox",
            PAYMENTS_ALLOW_SANDBOX="true",
            WEBHOOK_ALLOW_PRIVATE_NETWORKS="true",
            WEBHOOK_ALLOW_HTTP="true",
            EMAIL_BACKEND="tests.faults.mailsink.EmailBackend",
            CELERY_TASK_ALWAYS_EAGER="false",
            TRADEASSURE_VAR_DIR=str(var),
            MEDIA_ROOT=str(var / "media"),
            PRIVATE_MEDIA_ROOT=str(var / "private"),
            STATIC_ROOT=str(self.directory / "static"),
            LOG_LEVEL="INFO",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        env.pop("TRADEASSURE_REQUIRE_SERVICES", None)
        return env

    def manage(self, database: str, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env(database) | {"FAULT_MAIL_FILE": os.devnull},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def up(self) -> None:
        self.pg.init()
        self.redis.start()
        self.pg.execute(f"CREATE DATABASE {self.TEMPLATE}")
        self.manage(self.TEMPLATE, "migrate", "--noinput")
        self.manage(self.TEMPLATE, "collectstatic", "--noinput", "--verbosity=0")
        result = subprocess.run(
            [PYTHON, "-m", "tests.faults.stack_tool", "seed"],
            cwd=ROOT,
            env=self.env(self.TEMPLATE) | {"FAULT_MAIL_FILE": os.devnull},
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode:
            raise RuntimeError(f"seeding failed:\n{result.stderr[-4000:]}")
        self.seed = json.loads(result.stdout.strip().splitlines()[-1])

    def new_database(self) -> str:
        name = f"ta_faults_{uuid.uuid4().hex[:8]}"
        self.pg.execute(f"CREATE DATABASE {name} TEMPLATE {self.TEMPLATE}")
        return name

    def down(self) -> None:
        self.redis.stop()
        with contextlib.suppress(RuntimeError):
            self.pg.stop("immediate")
        shutil.rmtree(self.pg_directory, ignore_errors=True)


class Api:
    """A partner's HTTP client on the stack: API key, an Idempotency-Key on every POST."""

    def __init__(self, base_url: str, key: str):
        self.base = f"{base_url}/api/v1"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", timeout=30)

    def post(self, path: str, body: dict | None = None, key: str | None = None):
        return self.session.post(
            f"{self.base}{path}",
            json=body or {},
            headers={"Idempotency-Key": key or str(uuid.uuid4())},
            timeout=30,
        )
