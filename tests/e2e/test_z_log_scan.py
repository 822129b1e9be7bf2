"""Runs last: no code, password, token or key the suite handled may appear
in what the worker printed."""

import re

from harness import ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_TOKEN


def test_logs_hold_no_secrets(app, secrets_seen):
    assert len(secrets_seen) > 20, "the suite should have handled many secrets by now"
    logs = app.logs()
    assert '"event":"request"' in logs, "the scan must read the worker's real output"
    for secret in [*secrets_seen, ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_TOKEN]:
        # Digit boundaries, so a code is not "found" inside a longer number.
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", logs), "a secret reached the logs"
