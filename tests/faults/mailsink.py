"""An email backend for the fault tests' stack: every message handed over is one JSON line.

The stack's processes run with EMAIL_BACKEND=tests.faults.mailsink.EmailBackend and
FAULT_MAIL_FILE=<path>; the test reads the file to count what was actually sent. While the file
`<path>.stall` exists the "mail server" hangs before accepting a message (and says which one in
`<path>.stalled`), so a test can kill a worker in the middle of handing mail over.
"""

import json
import os
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        sink = Path(os.environ["FAULT_MAIL_FILE"])
        stall = sink.with_name(sink.name + ".stall")
        for message in email_messages:
            line = json.dumps({"to": message.to, "subject": message.subject}) + "\n"
            if stall.exists():
                sink.with_name(sink.name + ".stalled").write_text(line)
                while stall.exists():
                    time.sleep(0.1)
            # One write per line in append mode: processes writing at once never interleave.
            with open(sink, "a", encoding="utf-8") as out:
                out.write(line)
        return len(email_messages)
