"""An email backend for the fault tests' stack: every message handed over is one JSON line.

The stack's processes run with EMAIL_BACKEND=tests.faults.mailsink.EmailBackend and
FAULT_MAIL_FILE=<path>; the test reads the file to count what was actually sent.
"""

import json
import os

from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        with open(os.environ["FAULT_MAIL_FILE"], "a", encoding="utf-8") as sink:
            for message in email_messages:
                # One write per line in append mode: processes writing at once never interleave.
                sink.write(json.dumps({"to": message.to, "subject": message.subject}) + "\n")
                sink.flush()
        return len(email_messages)
