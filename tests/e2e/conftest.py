import pytest

import random

from harness import ADMIN_TOKEN, TWILIO_SID, TWILIO_TOKEN, StandIn, Worker, unique_email

SECRETS_SEEN = []  # codes, passwords and tokens the suite handled, for the log scan


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
               secrets={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN})
    yield w
    w.stop()


def create_key(worker, channels=("email", "sms", "whatsapp"), name="test app", **extra):
    r = worker.post("/v1/admin/api-keys", {"name": name, "channels": list(channels), **extra},
                    headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
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
    assert app.post("/v1/register", {"email": email, "password": password}).status_code == 202
    code = mail.code(email)
    secrets_seen += [code, password]
    assert app.post("/v1/verify-email", {"email": email, "code": code}).status_code == 200
    return email, password


def login(app, email, password, secrets_seen=None):
    r = app.post("/v1/login", {"email": email, "password": password})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    if secrets_seen is not None:
        secrets_seen.append(token)
    return token
