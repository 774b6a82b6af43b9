"""The table, the targets (met, or missed by how much) and latest.json's shape."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime

from bench.config import CONNECTIONS, THREADS, WORKERS, Scale
from bench.http import loader


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _target(name: str, met: bool, measured: str, miss: str) -> dict:
    return {"target": name, "met": met, "measured": measured, "missed_by": "" if met else miss}


def targets(results: list[dict]) -> list[dict]:
    by_name = {r["name"]: r for r in results}
    out = []
    create = by_name.get("create protected order (API)")
    if create and "product" in create:
        p = create["product"]
        ratio = create["ratio"] or 0
        queries = p["queries"] if p["queries"] is not None else 10**6
        checks = [
            (ratio >= 0.3, f"{ratio:.3f}x floor", f"needs {0.3 / ratio:.1f}x the throughput"
             if ratio else "no throughput"),
            (queries <= 15, f"{p['queries']} queries", f"{queries - 15} queries over 15"),
            (p["p99_ms"] <= 250, f"p99 {p['p99_ms']:.0f} ms", f"{p['p99_ms'] - 250:.0f} ms over"),
            (p["errors"] == 0, f"{p['errors']} errors", f"{p['errors']} errors"),
        ]  # fmt: skip
        for label, (met, measured, miss) in zip(
            ["≥ 0.3x floor throughput", "≤ 15 queries", "p99 ≤ 250 ms", "0 errors"],
            checks,
            strict=True,
        ):
            out.append(_target(f"create protected order: {label}", met, measured, miss))
    for name in ("order list (API)", "order list (HTML)", "order page (HTML)", "order page (API)"):
        row = by_name.get(name)
        if not row or "product" not in row:
            continue
        ratio = row["ratio"] or float("inf")
        p99 = row["product"]["p99_ms"]
        out.append(
            _target(
                f"{name}: ≤ 10x plain view latency",
                ratio <= 10,
                f"{ratio:.1f}x",
                f"{ratio / 10:.1f}x too slow",
            )
        )
        out.append(_target(f"{name}: p99 ≤ 150 ms", p99 <= 150, f"{p99:.0f} ms",
                           f"{p99 - 150:.0f} ms over"))  # fmt: skip
    for row in results:
        if row.get("kind") != "sweep":
            continue
        rate = row["per_s"]
        out.append(
            _target(
                f"{row['name']}: ≥ 5,000 transitions/s",
                rate >= 5000,
                f"{rate:,.0f}/s",
                f"needs {5000 / rate:.1f}x" if rate else "none done",
            )
        )
        out.append(_target(
            f"{row['name']}: {row['due_rows']:,} due rows cleared in ≤ 60 s, none failed by the limit",
            row["seconds_to_clear"] <= 60 and row["failed_by_time_limit"] == 0,
            f"{'cleared' if row['cleared'] else 'projected'} in {row['seconds_to_clear']:,.0f} s, "
            f"{row['failed_by_time_limit']} failed by the limit",
            f"{row['seconds_to_clear'] - 60:,.0f} s over" if row["seconds_to_clear"] > 60
            else f"{row['failed_by_time_limit']} rows failed by the time limit",
        ))  # fmt: skip
    for name, want in (("ledger, distinct suppliers", 500), ("ledger, one hot supplier", 200)):
        row = by_name.get(name)
        if row and "per_s" in row:
            rate = row["per_s"]
            out.append(_target(f"{name}: ≥ {want} movements/s", rate >= want, f"{rate:,.0f}/s",
                               f"needs {want / rate:.1f}x" if rate else "none"))  # fmt: skip
    row = by_name.get("outbox dispatch")
    if row and "per_s" in row:
        rate = row["per_s"]
        out.append(_target("outbox: ≥ 2,000 messages/s", rate >= 2000, f"{rate:,.0f}/s",
                           f"needs {2000 / rate:.1f}x" if rate else "none"))  # fmt: skip
    return out


def build(scale: Scale, fixture: dict, results: list[dict], elapsed: float) -> dict:
    public = {k: v for k, v in fixture.items() if k not in ("api_key", "cookie", "supplier_ids")}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "scale": scale.as_dict(),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "setup": {
            "gunicorn_workers": WORKERS,
            "connections": CONNECTIONS,
            "threads": THREADS,
            "loader": loader(),
        },
        "fixture": public,
        "results": results,
        "targets": targets(results),
        "seconds": round(elapsed, 1),
    }


def _fmt(value, spec: str = ",.1f") -> str:
    if value is None or value == "":
        return "-"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def show(summary: dict, log) -> None:
    setup = summary["setup"]
    log("")
    log(
        f"TradeAssure bench, {summary['scale']['name']} scale, {summary['machine']['cores']} cores, "
        f"gunicorn {setup['gunicorn_workers']} sync workers, {setup['connections']} connections "
        f"({setup['loader']}), {summary['scale']['rounds']} rounds (medians)"
    )
    header = (
        f"{'scenario':<34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'queries':>7}"
        f" {'floor/s':>9} {'floor p50':>9} {'ratio':>7}"
    )
    log(header)
    log("-" * len(header))
    for row in summary["results"]:
        if row.get("http"):
            p, f = row["product"], row["floor"]
            log(
                f"{row['name']:<34} {_fmt(p['rps']):>9} {_fmt(p['p50_ms']):>8} "
                f"{_fmt(p['p99_ms']):>8} {p['errors']:>6} {_fmt(p['queries'], 'd'):>7} "
                f"{_fmt(f['rps']):>9} {_fmt(f['p50_ms']):>9} {_fmt(row['ratio'], '.2f'):>7}"
            )
        elif row.get("kind") == "failed":
            log(f"{row['name']:<34} FAILED: {row['failure'][:80]}")
        else:
            log(
                f"{row['name']:<34} {_fmt(row.get('per_s')):>9} {_fmt(row.get('p50_ms')):>8} "
                f"{'':>8} {row.get('errors', 0):>6} {_fmt(row.get('queries'), 'd'):>7} "
                f"{_fmt(row.get('floor_per_s')):>9} {'':>9} {_fmt(row.get('ratio'), '.3f'):>7}"
            )
    log("ratio: create = throughput product/floor; pages = median latency product/floor; "
        "in-process = rate product/floor")  # fmt: skip
    workers = next((r["workers"] for r in summary["results"] if r.get("workers")), None)
    if workers:
        log(f"ledger: 16 workers as {workers} (forked), each on its own escrows")
    log("")
    log("Targets:")
    for target in summary["targets"]:
        mark = "MET   " if target["met"] else "MISSED"
        extra = f" — missed by {target['missed_by']}" if not target["met"] else ""
        log(f"  {mark} {target['target']}: {target['measured']}{extra}")


def all_ran(summary: dict) -> bool:
    """Every scenario produced numbers with no errors (what the smoke test checks)."""
    for row in summary["results"]:
        if row.get("kind") == "failed" or row.get("errors", 0):
            return False
        if row.get("http") and not (row["product"]["requests"] and row["floor"]["requests"]):
            return False
    return bool(summary["results"])


def markdown(summary: dict) -> str:
    """The table and the targets as Markdown (for bench/README.md's "before" section)."""
    setup = summary["setup"]
    lines = [
        f"{summary['scale']['name']} scale, {summary['machine']['cores']} cores, commit "
        f"{summary['commit']}, {summary['when']}, loader {setup['loader']}, "
        f"{summary['seconds']:.0f} s in all.",
        "",
        "| scenario | req/s (or /s) | p50 ms | p99 ms | errors | queries | floor /s | floor p50 ms "
        "| ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in summary["results"]:
        if row.get("http"):
            p, f = row["product"], row["floor"]
            cells = [p["rps"], p["p50_ms"], p["p99_ms"], p["errors"], p["queries"], f["rps"],
                     f["p50_ms"], row["ratio"]]  # fmt: skip
        elif row.get("kind") == "failed":
            lines.append(f"| {row['name']} | failed: {row['failure'][:60]} | | | | | | | |")
            continue
        else:
            cells = [row.get("per_s"), row.get("p50_ms"), None, row.get("errors", 0),
                     row.get("queries"), row.get("floor_per_s"), None, row.get("ratio")]  # fmt: skip
        *values, ratio = cells
        text = [_fmt(c, "d" if isinstance(c, int) else ",.1f") for c in values]
        lines.append(f"| {row['name']} | " + " | ".join([*text, _fmt(ratio, ".3f")]) + " |")
    lines += ["", "Targets:", ""]
    for target in summary["targets"]:
        mark = "met" if target["met"] else f"**missed** by {target['missed_by']}"
        lines.append(f"- {target['target']}: {target['measured']} — {mark}")
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    print(markdown(json.loads(open(sys.argv[1]).read())))  # noqa: SIM115
