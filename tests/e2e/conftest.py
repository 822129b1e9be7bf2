import pytest

from harness import MailServer, Worker, unique_email

SECRETS_SEEN = []  # codes, passwords and tokens the suite handled, for the log scan


@pytest.fixture(scope="session")
def mail():
    server = MailServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def app(mail):
    """The main worker: production-like defaults, except that the cooldown is
    off and the hourly/IP caps are high so tests can send freely."""
    w = Worker("main", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000", "MAIL_TIMEOUT_MS": "1500"})
    yield w
    w.stop()


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
