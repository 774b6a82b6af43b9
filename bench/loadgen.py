"""A small closed-loop HTTP load generator, used when wrk is not installed.

`--connections` threads each send one request at a time for `--seconds` and record latencies;
POSTs get a unique Idempotency-Key, and "{supplier}" in the body takes ids from BENCH_SUPPLIERS in
turn (as bench/wrk/post.lua does). Prints the same BENCH_JSON line as the wrk scripts. It costs
more CPU than wrk, on the same cores as the servers: compare runs made with the same loader.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import threading
import time
from urllib.parse import urlparse


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--body-file")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    url = urlparse(args.url)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    headers = dict(h.split(": ", 1) for h in args.header)
    body = open(args.body_file).read() if args.body_file else None  # noqa: SIM115
    if body is not None:
        headers["Content-Type"] = "application/json"
    suppliers = (os.environ.get("BENCH_SUPPLIERS") or "1").split(",")
    latencies: list[list[float]] = [[] for _ in range(args.connections)]
    errors = [0] * args.connections
    deadline = time.perf_counter() + args.seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        count = 0
        while time.perf_counter() < deadline:
            count += 1
            request_headers = dict(headers)
            payload = None
            if body is not None:
                request_headers["Idempotency-Key"] = f"{args.prefix}-{index}-{count}"
                payload = body.replace("{supplier}", suppliers[count % len(suppliers)])
            started = time.perf_counter()
            try:
                connection.request(
                    "POST" if body is not None else "GET", path, payload, request_headers
                )
                response = connection.getresponse()
                response.read()
                if response.status >= 400:
                    errors[index] += 1
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                connection.close()
            latencies[index].append((time.perf_counter() - started) * 1000)

    began = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    every = [value for values in latencies for value in values]
    result = {
        "requests": len(every),
        "seconds": round(elapsed, 3),
        "errors": sum(errors),
        "p50_ms": round(percentile(every, 0.50), 3),
        "p99_ms": round(percentile(every, 0.99), 3),
    }
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
