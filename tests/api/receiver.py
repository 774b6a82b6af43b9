"""A real HTTP server on 127.0.0.1 that records webhook requests, for delivery tests."""

import hashlib
import hmac
import ssl
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
    # Answer with this many bytes of body, written in 64 KB chunks (0: a two-byte body); set
    # `body_sent_bytes` to how much went out before the sender hung up.
    answer_bytes: int = 0
    body_sent_bytes: int = 0
    answer_finished: threading.Event = field(default_factory=threading.Event)

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


def start_receiver(
    address: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
) -> tuple[Receiver, ThreadingHTTPServer]:
    """Serve on `address` (plain HTTP, or HTTPS with the server context `tls`)."""
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
                if receiver.answer_bytes:
                    self.send_header("Content-Length", str(receiver.answer_bytes))
                self.end_headers()
                if not receiver.answer_bytes:
                    self.wfile.write(b"ok" if status < 300 else b"nope")
                chunk = b"x" * 65536
                while receiver.body_sent_bytes < receiver.answer_bytes:
                    self.wfile.write(chunk)
                    receiver.body_sent_bytes += len(chunk)
            except OSError:
                pass  # the sender went away mid-request
            finally:
                receiver.answer_finished.set()

        def log_message(self, *args):
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    receiver.url = f"{scheme}://{address}:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server
