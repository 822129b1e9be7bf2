"""Runs last: no code, password, token or key the suite handled may appear
in what any worker printed, and every request left one JSON line."""

import json
import re

from harness import ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_TOKEN, Worker


def test_logs_hold_no_secrets(app, secrets_seen):
    assert len(secrets_seen) > 20, "the suite should have handled many secrets by now"
    logs = "\n".join(p.read_text(errors="replace") for p in Worker.log_paths)
    assert logs.count('"event":"request"') > 3_000, "the scan must read every worker's real output"
    for secret in [*secrets_seen, ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_TOKEN]:
        # Digit boundaries, so a code is not "found" inside a longer number.
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", logs), "a secret reached the logs"


def test_request_lines_are_json_with_an_id_and_nothing_else(app):
    lines = [line for p in Worker.log_paths for line in p.read_text(errors="replace").splitlines()
             if '"event":"request"' in line]
    for line in lines:
        entry = json.loads(line[line.index("{"):])
        assert set(entry) == {"event", "request_id", "route", "method", "status", "duration_ms"}, entry
        assert re.fullmatch(r"[0-9A-Za-z-]{1,64}", entry["request_id"])
