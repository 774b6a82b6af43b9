"""`make bench`: the at-scale benchmark, product against floor, in one run (bench/README.md).

    python -m bench.run            # full scale (about 10-15 minutes on 2 cores)
    python -m bench.run --smoke    # tiny seed, short runs (CI: only checks that all ran)

It recreates its own PostgreSQL database (BENCH_DATABASE_URL, default tradeassure_bench),
seeds it, serves the product and the floor app with the same gunicorn settings, loads them over
HTTP from a separate process (wrk, or bench.loadgen without it), runs the sweep, ledger and
outbox scenarios in-process, prints the table and the targets and writes bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.config import BENCH_DIR, FULL, MEDIUM, ROOT, SMOKE, Scale, bench_env, database_url

RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or BENCH_DIR / "results")


def log(message: str) -> None:
    print(message, flush=True)


def recreate_database(url: str) -> None:
    """Drop and create the bench database (it is the harness's own)."""
    import psycopg2

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"refusing to recreate database {name!r}")
    admin = psycopg2.connect(
        host=parsed.hostname,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname="postgres",
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    admin.close()


def django_setup() -> None:
    import django

    django.setup()


def prepare(scale: Scale, var_dir: Path) -> dict:
    """A fresh, migrated, seeded database with the floor's tables; returns the fixture."""
    from django.core.management import call_command

    from bench import floor_data, seed

    step = time.perf_counter()
    recreate_database(database_url())
    django_setup()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"},
        check=True,
    )
    log(f"database, migrations, static files: {time.perf_counter() - step:.1f}s")
    log(f"seeding ({scale.name}):")
    fixture = seed.seed(scale, log=lambda m: log(m))
    fixture["floor"] = floor_data.seed_floor(
        orders=fixture["orders"], buyer_orders=fixture["buyer_orders"]
    )
    log(f"seeded {fixture['orders']} orders in {fixture['seed_seconds']}s")
    return fixture


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny seed, short runs")
    parser.add_argument(
        "--only", default="", help="run scenarios whose name contains this (or any of a,b,…)"
    )
    args = parser.parse_args(argv)
    scales = {"full": FULL, "medium": MEDIUM, "smoke": SMOKE}
    scale = SMOKE if args.smoke else scales[os.environ.get("BENCH_SCALE") or "full"]
    started = time.perf_counter()
    var_dir = Path(os.environ.get("BENCH_VAR_DIR") or ROOT / "var" / f"bench-{scale.name}")
    var_dir.mkdir(parents=True, exist_ok=True)
    os.environ.update(bench_env(var_dir))
    log(f"TradeAssure bench ({scale.name}) on {os.cpu_count()} cores, {platform.platform()}")
    fixture = prepare(scale, var_dir)
    from bench import report, scenarios

    results = scenarios.run_all(scale, fixture, var_dir, only=args.only, log=log)
    elapsed = time.perf_counter() - started
    summary = report.build(scale, fixture, results, elapsed)
    report.show(summary, log)
    RESULTS.mkdir(exist_ok=True)
    name = "latest.json" if scale.name == "full" else f"latest-{scale.name}.json"
    (RESULTS / name).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    log(f"wrote {RESULTS / name} ({elapsed:.0f}s in all)")
    return 0 if report.all_ran(summary) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
