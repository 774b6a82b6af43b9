"""In-process micro-benchmarks: `make bench-micro` (or `python bench/micro.py [name-filter]`).

The at-scale tool is `make bench` (bench/run.py); these older ratios stay for quick checks.

Each `bench/bench_<area>.py` defines `BENCHMARKS`, a list of `Benchmark(name, baseline, subject,
setup=None, repeat=5)`. `setup()` prepares data and returns a dict passed to both callables.
Baseline and subject run alternately in the same process against the same throwaway database, and
the harness prints subject/baseline time ratios (median of the repeats) — a ratio says "how much
more the real thing costs than the floor it is compared with", and it is stable across machines.
There is no pass/fail: compare ratios between commits.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


@dataclass
class Benchmark:
    name: str
    baseline: Callable[[dict], object]
    subject: Callable[[dict], object]
    setup: Callable[[], dict] | None = None
    repeat: int = 5
    notes: str = ""
    timings: dict[str, list[float]] = field(default_factory=lambda: {"baseline": [], "subject": []})


def _django_with_a_scratch_database() -> None:
    """Configure Django on a migrated scratch database: SQLite in a temp dir by default, or the
    database named by BENCH_DATABASE_URL (e.g. a PostgreSQL one you may wipe)."""
    sys.path.insert(0, str(ROOT))
    scratch = Path(tempfile.mkdtemp(prefix="tradeassure-bench-"))
    os.environ["TRADEASSURE_VAR_DIR"] = str(scratch)
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", f"sqlite:///{scratch / 'bench.sqlite3'}"
    )
    os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradeassure.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("migrate", verbosity=0, interactive=False)


def get_many(path: str | None = None, times: int = 20) -> Callable[[dict], None]:
    """A benchmark side that GETs a page `times` times with `context["client"]`.

    With no path, it reads `context["path"]` (for pages whose URL the setup creates).
    """

    def get(context: dict) -> None:
        for _ in range(times):
            response = context["client"].get(path or context["path"])
            assert response.status_code == 200, response.status_code

    return get


def discover(name_filter: str = "") -> list[tuple[str, Benchmark]]:
    found = []
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"bench.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for benchmark in getattr(module, "BENCHMARKS", []):
            if name_filter in f"{path.stem}:{benchmark.name}":
                found.append((path.stem, benchmark))
    return found


def _time(call: Callable[[dict], object], context: dict) -> float:
    started = time.perf_counter()
    call(context)
    return time.perf_counter() - started


def run(benchmark: Benchmark) -> tuple[float, float, float]:
    for _ in range(benchmark.repeat):
        # Fresh data for each pair, and the order alternates so warm-up favours neither side.
        for side in ("baseline", "subject") if _ % 2 == 0 else ("subject", "baseline"):
            context = benchmark.setup() if benchmark.setup else {}
            benchmark.timings[side].append(_time(getattr(benchmark, side), context))
    baseline = statistics.median(benchmark.timings["baseline"])
    subject = statistics.median(benchmark.timings["subject"])
    return baseline, subject, subject / baseline if baseline else float("inf")


def main(argv: list[str]) -> int:
    _django_with_a_scratch_database()
    benchmarks = discover(argv[0] if argv else "")
    if not benchmarks:
        print("No benchmarks found in bench/bench_*.py")
        return 1
    print(f"{'benchmark':<72} {'baseline':>10} {'subject':>10} {'ratio':>8}")
    for module_name, benchmark in benchmarks:
        baseline, subject, ratio = run(benchmark)
        label = f"{module_name.removeprefix('bench_')}: {benchmark.name}"
        print(f"{label:<72} {baseline * 1000:>8.1f}ms {subject * 1000:>8.1f}ms {ratio:>7.2f}x")
        if benchmark.notes:
            print(f"    {benchmark.notes}")
    print("ratio = subject / baseline (median of repeats); lower is better. Not a pass/fail test.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
