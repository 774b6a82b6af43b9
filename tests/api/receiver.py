"""A real HTTP server on 127.0.0.1 that records webhook requests, for delivery tests."""

import hashlib
import hmac
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class ReceivedRequest:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each request with the next status in `statuses` (then 200), after `delay` s."""

    url: str = ""
    requests: list[ReceivedRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    first_request_arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event | None = None

    def delivery_ids(self) -> list[str]:
        return [request.headers["TradeAssure-Delivery"] for request in self.requests]


def verify_signature(secret: str, headers: dict, body: bytes, tolerance: int = 300) -> bool:
    """The README's ten lines, verbatim in spirit: what a partner runs on its side."""
    timestamp = headers["TradeAssure-Timestamp"]
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    signatures = [
        part[3:] for part in headers["TradeAssure-Signature"].split(",") if part.startswith("v1=")
    ]
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


def start_receiver() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            body = self.rfile.read(length)
            receiver.requests.append(ReceivedRequest(headers=dict(self.headers), body=body))
            receiver.first_request_arrived.set()
            if receiver.release is not None:
                receiver.release.wait(30)
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            try:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"nope")
            except OSError:
                pass  # the sender went away mid-request

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
