"""Profile the ledger scenario's two movements (capture, release) in one thread.

Run after a bench run, against its database (it is left seeded):

    BENCH_SCALE=medium python -m bench.profile_ledger [pairs]

It opens `pairs` escrows with a started card payment (as the scenario does), then, on the
first one, prints the SQL of one capture and one release; then times half of the rest (wall
time and this process's CPU time per movement) and profiles the other half with cProfile.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path


def main(argv: list[str]) -> int:
    from bench.config import ROOT, bench_env

    pairs = int(argv[0]) if argv else 60
    os.environ.update(bench_env(Path(os.environ.get("BENCH_VAR_DIR") or ROOT / "var" / "bench")))
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from bench.inproc import _escrows, captures_delivered_inline
    from payments import services

    buyer = (
        User.objects.filter(email__endswith="@bench-buyer.example")
        .select_related("organisation")
        .first()
    )
    supplier = (
        User.objects.filter(email__endswith="@bench-supplier.example")
        .select_related("organisation")
        .first()
    )
    assert buyer is not None and supplier is not None, "run the bench first (it seeds)"
    assert buyer.organisation is not None and supplier.organisation is not None
    made = _escrows(
        f"profile-ledger:{uuid.uuid4().hex[:8]}",
        pairs + 1,
        buyer.organisation,
        supplier.organisation,
    )

    def pair(reference: str, payment) -> None:
        services.payment_card_submit(payment=payment, card_number="4242424242424242", actor=buyer)
        services.escrow_release(
            escrow_reference=reference,
            amount=Decimal("100.00"),
            idempotency_key=f"profile-release:{reference}",
        )

    with captures_delivered_inline():
        reference, payment = made[0]
        with CaptureQueriesContext(connection) as capture:
            services.payment_card_submit(
                payment=payment, card_number="4242424242424242", actor=buyer
            )
        with CaptureQueriesContext(connection) as release:
            services.escrow_release(
                escrow_reference=reference,
                amount=Decimal("100.00"),
                idempotency_key=f"profile-release:{reference}",
            )
        for name, captured in (("capture", capture), ("release", release)):
            print(f"--- {name}: {len(captured.captured_queries)} statements")
            for query in captured.captured_queries:
                print("   ", query["sql"][:150])
        half = len(made) // 2
        wall, cpu = time.perf_counter(), time.process_time()
        for reference, payment in made[1:half]:
            pair(reference, payment)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        movements = 2 * (half - 1)
        print(
            f"--- {movements} movements, no profiler: {1000 * wall / movements:.2f} ms wall, "
            f"{1000 * cpu / movements:.2f} ms CPU of this process per movement"
        )
        profiler = cProfile.Profile()
        profiler.enable()
        for reference, payment in made[half:]:
            pair(reference, payment)
        profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(30)
    stats.sort_stats("tottime").print_stats(25)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
