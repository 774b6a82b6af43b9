"""Every scenario of `make bench`, in order: HTTP (product and floor interleaved), then in-process."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from bench import inproc
from bench.config import ROOT, Scale
from bench.http import Server, load, loader

PRODUCT_PORT = int(os.environ.get("BENCH_PORT", "18700"))  # the floor listens on the next one
FLOOR_PORT = PRODUCT_PORT + 1
SUPPLIER = "__SUPPLIER__"


def _terms() -> dict:
    from tradeassure.core import clock

    return {
        "currency": "USD",
        "coverage": "post_delivery",
        "items": [
            {
                "description": "USB-C charger 65 W",
                "quality_requirements": "CE marked; 65 W ±5 %",
                "quantity": "100",
                "unit": "pcs",
                "unit_price": "12.50",
            }
        ],
        "shipment_deadline": (clock.now() + timedelta(days=40)).isoformat(),
        "incoterm": "FOB",
        "destination": "Felixstowe, GB",
        "shipping_method": "sea",
        "shipping_fee": "150.00",
        "initial_payment_amount": "400.00",
    }


def _body(data: dict) -> str:
    return json.dumps(data).replace(f'"{SUPPLIER}"', "{supplier}")


def http_scenarios(fixture: dict) -> list[dict]:
    """Each: name, kind (create | read), and the product's and the floor's request."""
    api = {"Authorization": f"Bearer {fixture['api_key']}"}
    session = {"Cookie": fixture["cookie"]}
    order_id, floor = fixture["order_id"], fixture["floor"]
    create = _body({"supplier_id": SUPPLIER, "purchase_order_number": "PO-1", "terms": _terms()})
    floor_create = _body(
        {
            "buyer_id": floor["buyer_id"],
            "supplier_id": SUPPLIER,
            "total": "1400.00",
            "currency": "USD",
            "summary": "USB-C charger 65 W",
            "terms": _terms(),
        }
    )
    return [
        {
            "name": "create protected order (API)",
            "kind": "create",
            "product": {"path": "/api/v1/orders/", "headers": api, "body": create},
            "floor": {"path": "/orders/", "headers": {}, "body": floor_create},
        },
        {
            "name": "order list (API)",
            "kind": "read",
            "product": {"path": "/api/v1/orders/", "headers": api},
            "floor": {"path": f"/buyers/{floor['buyer_id']}/orders.json", "headers": {}},
        },
        {
            "name": "order list (HTML)",
            "kind": "read",
            "product": {"path": "/orders/", "headers": session},
            "floor": {"path": f"/buyers/{floor['buyer_id']}/orders/", "headers": {}},
        },
        {
            "name": "order page (HTML)",
            "kind": "read",
            "product": {"path": f"/orders/{order_id}/", "headers": session},
            "floor": {"path": f"/orders/{floor['order_id']}/", "headers": {}},
        },
        {
            "name": "order page (API)",
            "kind": "read",
            "product": {"path": f"/api/v1/orders/{order_id}/", "headers": api},
            "floor": {"path": f"/orders/{floor['order_id']}.json", "headers": {}},
        },
    ]


def _one_request(side: dict, name: str, supplier: int) -> dict:
    body = side.get("body")
    headers = dict(side["headers"])
    if body is not None:
        body = body.replace("{supplier}", str(supplier))
        headers["Idempotency-Key"] = f"count-{uuid.uuid4()}"
    return {"name": name, "path": side["path"], "headers": headers, "body": body}


def query_counts(scenarios: list[dict], fixture: dict, env: dict) -> dict[str, dict]:
    from bench.querycount import count

    supplier = fixture["supplier_ids"][-1]
    product = count([_one_request(s["product"], s["name"], supplier) for s in scenarios])
    floor_requests = [_one_request(s["floor"], s["name"], supplier) for s in scenarios]
    done = subprocess.run(
        [sys.executable, "-m", "bench.querycount"],
        input=json.dumps(floor_requests),
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    floor = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        s["name"]: {"product": product[s["name"]], "floor": floor[s["name"]]} for s in scenarios
    }


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 2)


def selected(only: str, name: str) -> bool:
    """`--only`: scenarios whose name contains it, or any of its comma-separated parts."""
    return any(part.strip() in name for part in only.split(","))


def run_http(scale: Scale, fixture: dict, var_dir: Path, env: dict, log, only: str) -> list[dict]:
    scenarios = [s for s in http_scenarios(fixture) if selected(only, s["name"])]
    if not scenarios:
        return []
    servers = {
        "product": Server("product", "tradeassure.wsgi:application", PRODUCT_PORT, env, var_dir,
                          probe="/healthz"),
        "floor": Server("floor", "bench.floor.wsgi:application", FLOOR_PORT,
                        {**env, "DJANGO_SETTINGS_MODULE": "bench.floor.settings"}, var_dir,
                        probe="/orders/1.json"),
    }  # fmt: skip
    queries = query_counts(scenarios, fixture, env)
    runs: dict[str, dict[str, list[dict]]] = {
        s["name"]: {"product": [], "floor": []} for s in scenarios
    }
    suppliers = fixture["supplier_ids"]
    try:
        for server in servers.values():
            server.start()
        log(f"HTTP: gunicorn x{len(servers)} up; loader: {loader()}")

        def once(scenario: dict, side: str, seconds: float, tag: str) -> dict:
            request = scenario[side]
            return load(
                servers[side].url + request["path"],
                seconds=seconds,
                headers=request["headers"],
                body=request.get("body"),
                prefix=f"{tag}-{uuid.uuid4().hex[:8]}",
                suppliers=suppliers,
                work_dir=var_dir,
            )

        def measured(scenario: dict, side: str, tag: str) -> dict:
            """One timed run; a run that completed no request at all (a window shorter than one
            request on a loaded machine, as in the 1 s smoke runs) measured nothing, so it is
            run again with twice the window, up to 8 times the configured one."""
            seconds = float(scale.http_seconds)
            result = once(scenario, side, seconds, tag)
            while not result["requests"] and seconds < 8 * scale.http_seconds:
                seconds *= 2
                log(
                    f"  {scenario['name']} ({side}): no request completed, again for {seconds:.0f}s"
                )
                result = once(scenario, side, seconds, tag)
            return result

        if scale.http_warmup_seconds:
            for scenario in scenarios:
                for side in ("product", "floor"):
                    once(scenario, side, scale.http_warmup_seconds, "warm")
        for round_no in range(scale.rounds):
            sides = ("product", "floor") if round_no % 2 == 0 else ("floor", "product")
            for scenario in scenarios:
                for side in sides:
                    result = measured(scenario, side, f"r{round_no}")
                    runs[scenario["name"]][side].append(result)
            log(f"  round {round_no + 1}/{scale.rounds} done")
    finally:
        for server in servers.values():
            server.stop()
    results = []
    for scenario in scenarios:
        row = {"name": scenario["name"], "kind": scenario["kind"], "http": True}
        for side in ("product", "floor"):
            side_runs = runs[scenario["name"]][side]
            row[side] = {
                "rps": _median(side_runs, "rps"),
                "p50_ms": _median(side_runs, "p50_ms"),
                "p99_ms": _median(side_runs, "p99_ms"),
                "errors": sum(run["errors"] for run in side_runs),
                "requests": sum(run["requests"] for run in side_runs),
                "queries": queries[scenario["name"]][side],
                "rounds": side_runs,
            }
        product, floor = row["product"], row["floor"]
        if scenario["kind"] == "create":
            row["ratio"] = round(product["rps"] / floor["rps"], 3) if floor["rps"] else None
            row["ratio_means"] = "throughput, product / floor"
        else:
            row["ratio"] = (
                round(product["p50_ms"] / floor["p50_ms"], 2) if floor["p50_ms"] else None
            )
            row["ratio_means"] = "median latency, product / floor"
        row["errors"] = product["errors"] + floor["errors"]
        results.append(row)
    return results


def _guarded(name: str, call: Callable[[], dict], log) -> dict:
    started = time.perf_counter()
    try:
        result = call()
    except Exception as error:
        traceback.print_exc()
        result = {"name": name, "kind": "failed", "errors": 1, "failure": repr(error)}
    log(f"  {name}: {time.perf_counter() - started:.1f}s")
    return result


def run_all(scale: Scale, fixture: dict, var_dir: Path, *, only: str = "", log=print) -> list[dict]:
    env = dict(os.environ)
    results = run_http(scale, fixture, var_dir, env, log, only)
    log("in-process scenarios:")
    cast = inproc._cast(fixture)
    wanted = [
        ("dispute filing", lambda: inproc.dispute_filing(scale)),
        ("outbox dispatch", lambda: inproc.outbox(scale)),
        ("ledger, distinct suppliers", lambda: inproc.ledger(scale, fixture, cast, hot=False)),
        ("ledger, one hot supplier", lambda: inproc.ledger(scale, fixture, cast, hot=True)),
        ("pgbench -N", lambda: inproc.pgbench(scale.ledger_seconds)),
    ]

    def sweep_runner(sweep: inproc.Sweep) -> Callable[[], dict]:
        def run() -> dict:
            # The floor is measured right before each sweep's timed runs (after its setup), so
            # each ratio compares two numbers taken on the same machine load.
            return inproc.run_sweep(
                sweep,
                scale,
                fixture,
                cast,
                lambda: inproc.bare_updates(min(3.0, scale.sweep_cap_s)),
            )

        return run

    wanted += [(sweep.name, sweep_runner(sweep)) for sweep in inproc.SWEEPS]
    for name, call in wanted:
        if selected(only, name):
            results.append(_guarded(name, call, log))
    ledger_floor = next((r for r in results if r["name"] == "pgbench -N"), None)
    for result in results:
        if result.get("kind") == "ledger" and ledger_floor and ledger_floor.get("per_s"):
            result["floor_per_s"] = ledger_floor["per_s"]
            result["ratio"] = round(result["per_s"] / ledger_floor["per_s"], 3)
    return results
