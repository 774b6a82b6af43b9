"""Mail backends for outbox fault tests that run a dispatcher in a separate process."""

import os
import time

from django.core.mail.backends.base import BaseEmailBackend


class HangingFileBackend(BaseEmailBackend):
    """Appends each message's Message-ID to OUTBOX_TEST_SINK (flushed: what the mail server
    accepted), and after OUTBOX_TEST_HANG_AFTER messages writes `<sink>.hung` and hangs, so the
    test can kill the worker in the middle of a chunk."""

    def send_messages(self, messages):
        sink = os.environ["OUTBOX_TEST_SINK"]
        hang_after = int(os.environ["OUTBOX_TEST_HANG_AFTER"])
        for message in messages:
            with open(sink, encoding="utf-8") as existing:
                already = sum(1 for _ in existing)
            if already >= hang_after:
                with open(f"{sink}.hung", "w", encoding="utf-8") as marker:
                    marker.write("hung\n")
                time.sleep(600)
            with open(sink, "a", encoding="utf-8") as out:
                out.write(message.extra_headers["Message-ID"] + "\n")
                out.flush()
                os.fsync(out.fileno())
        return len(messages)
