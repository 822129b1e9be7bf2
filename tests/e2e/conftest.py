import json
import random
import re
from pathlib import Path

import pytest

from harness import (ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_SID, TWILIO_TOKEN, StandIn, Worker, oidc_signing_keys,
                     unique_email)

SECRETS_SEEN = []  # codes, passwords and tokens the suite handled, for the log scan
# The main worker's OpenID Provider keys; their private members must never be logged.
OIDC_KEYS = oidc_signing_keys()
SECRETS_SEEN += [k["d"] for k in json.loads(OIDC_KEYS)["keys"]]

# The browser journeys' session-wide Chromium (tests/e2e/browser.py).
pytest_plugins = ["browser"]


def scan_the_logs(whole_suite):
    """No code, password, token or key the suite handled may appear in what
    any worker printed, and every request left one JSON line with an id.
    The floors (enough secrets, enough lines) only hold for a whole run."""
    logs = "\n".join(p.read_text(errors="replace") for p in Worker.log_paths)
    if whole_suite:
        assert len(SECRETS_SEEN) > 20, "the suite should have handled many secrets by now"
        assert logs.count('"event":"request"') > 3_000, "the scan must read every worker's real output"
    for secret in [*SECRETS_SEEN, ADMIN_TOKEN, MAIL_API_KEY, PEPPER, TWILIO_TOKEN]:
        # Digit boundaries, so a code is not "found" inside a longer number.
        assert not re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", logs), "a secret reached the logs"
    for line in logs.splitlines():
        if '"event":"request"' in line:
            entry = json.loads(line[line.index("{"):])
            assert set(entry) == {"event", "request_id", "route", "method", "status", "duration_ms"}, entry
            assert re.fullmatch(r"[0-9A-Za-z-]{1,64}", entry["request_id"])


@pytest.fixture(scope="session", autouse=True)
def log_scan(request):
    """Scans every worker's output once all of them have stopped: set up
    first, so torn down last."""
    yield
    files = {item.path.name for item in request.session.items}
    every = {p.name for p in Path(__file__).parent.glob("test_*.py")}
    scan_the_logs(whole_suite=files == every)


@pytest.fixture(autouse=True)
def stand_in_expectations():
    """Checks each stand-in's `expect`ations when the test ends."""
    yield
    failures = [str(e) for e in map(StandIn.verify_quietly, StandIn.instances) if e]
    assert not failures, "; ".join(failures)


@pytest.fixture(scope="session")
def mail():
    server = StandIn()
    yield server
    server.close()


@pytest.fixture(scope="session")
def twilio():
    # Twilio answers 201 Created with the message resource.
    server = StandIn(ok_status=201, ok_body={"sid": "SM00000000000000000000000000000000", "status": "queued"})
    yield server
    server.close()


def twilio_vars(twilio):
    return {"TWILIO_API_URL": twilio.url, "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_FROM": "+15005550006", "TWILIO_WHATSAPP_FROM": "+14155238886"}


@pytest.fixture(scope="session")
def app(mail, twilio):
    """The main worker: production-like defaults, except that the cooldown is
    off and the hourly/IP caps are high so tests can send freely."""
    w = Worker("main", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000",
                                        "MAIL_TIMEOUT_MS": "1500", **twilio_vars(twilio)},
               secrets={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "OIDC_SIGNING_KEYS": OIDC_KEYS})
    yield w
    w.stop()


@pytest.fixture(scope="session")
def uncooled(mail):
    """A worker with no cooldown and a small hourly cap (3 per address), for
    what happens once the cap is reached."""
    w = Worker("hourly", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "3"})
    yield w
    w.stop()


def create_key(worker, channels=("email", "sms", "whatsapp"), name="test app", **extra):
    r = worker.call("admin_create_key", {"name": name, "channels": list(channels), **extra}, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 201, r.text
    SECRETS_SEEN.append(r.json()["key"])
    return r.json()


@pytest.fixture
def api_key(app):
    """A fresh key for every channel; returns its secret."""
    return create_key(app)["key"]


def unique_phone():
    return "+1555" + "".join(random.choices("0123456789", k=7))


@pytest.fixture
def secrets_seen():
    return SECRETS_SEEN


@pytest.fixture
def verified_user(app, mail, secrets_seen):
    """Registers and verifies a fresh account; returns (email, password)."""
    email, password = unique_email("verified"), "correct horse battery"
    assert app.register(email, password).status_code == 202
    code = mail.code(email)
    secrets_seen += [code, password]
    assert app.verify_email(email, code).status_code == 200
    return email, password


def login(app, email, password, secrets_seen=None):
    r = app.login(email, password)
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    if secrets_seen is not None:
        secrets_seen.append(token)
    return token
