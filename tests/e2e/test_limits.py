"""Send limits per address and purpose, the hourly cap, and the per-IP cap,
on a worker with the production cooldown (60 s)."""

import pytest

from harness import Worker, problem, unique_email


@pytest.fixture(scope="module")
def limited(mail):
    w = Worker("limits", mail=mail, vars={"MAX_SENDS_PER_HOUR": "3", "IP_RATE_LIMIT_PER_MINUTE": "5"})
    yield w
    w.stop()


@pytest.fixture(scope="module")
def uncooled(mail):
    w = Worker("hourly", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "3"})
    yield w
    w.stop()


_ip = iter(range(1, 250))


def ip():
    """Each test speaks from its own address, so the IP cap stays out of its way."""
    return f"198.51.100.{next(_ip)}"


def test_resend_within_the_cooldown_is_429_with_retry_after_known_or_not(limited, mail):
    known, unknown, addr = unique_email("cool"), unique_email("ghost"), ip()
    limited.post("/v1/register", {"email": known, "password": "correct horse"}, ip=addr)
    mail.wait_for(known)
    answers = []
    for email in (known, unknown):
        if email == unknown:
            assert limited.post("/v1/resend", {"email": email, "purpose": "verify_email"}, ip=addr).status_code == 202
        r = limited.post("/v1/resend", {"email": email, "purpose": "verify_email"}, ip=addr)
        body = problem(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        answers.append((r.status_code, body))
    assert answers[0] == answers[1]
    assert len(mail.to(known)) == 1


def test_register_login_and_reset_in_the_cooldown_answer_normally_and_send_nothing(limited, mail):
    email, addr = unique_email("quiet"), ip()
    limited.post("/v1/register", {"email": email, "password": "correct horse"}, ip=addr)
    code = mail.code(email)
    assert limited.post("/v1/register", {"email": email, "password": "correct horse"}, ip=addr).status_code == 202
    problem(limited.post("/v1/login", {"email": email, "password": "correct horse"}, ip=addr), 403, "email_not_verified")
    assert len(mail.to(email)) == 1
    # The pending code stayed valid.
    assert limited.post("/v1/verify-email", {"email": email, "code": code}, ip=addr).status_code == 200
    assert limited.post("/v1/password-reset", {"email": email}, ip=addr).status_code == 202
    mail.wait_for(email, 2)
    assert limited.post("/v1/password-reset", {"email": email}, ip=ip()).status_code == 202
    import time
    time.sleep(0.5)
    assert len(mail.to(email)) == 2


def test_hourly_cap_per_address(uncooled, mail):
    email = unique_email("hourly")
    uncooled.post("/v1/register", {"email": email, "password": "correct horse"})
    for _ in range(2):
        assert uncooled.post("/v1/resend", {"email": email, "purpose": "verify_email"}).status_code == 202
    r = uncooled.post("/v1/resend", {"email": email, "purpose": "verify_email"})
    problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) <= 3600
    # The cap covers every purpose of the address.
    problem(uncooled.post("/v1/resend", {"email": email, "purpose": "reset_password"}), 429, "rate_limited")
    mail.wait_for(email, 3)
    assert len(mail.to(email)) == 3


def test_per_ip_cap_on_posts(limited):
    addr = ip()
    for _ in range(5):
        assert limited.post("/v1/password-reset", {"email": unique_email()}, ip=addr).status_code == 202
    r = limited.post("/v1/password-reset", {"email": unique_email()}, ip=addr)
    problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # Counted before the body is read: even a bad request is refused.
    problem(limited.post("/v1/login", {}, ip=addr), 429, "rate_limited")
    # Other clients are unaffected, and GETs are not counted.
    assert limited.post("/v1/password-reset", {"email": unique_email()}, ip=ip()).status_code == 202
    assert limited.get("/healthz", headers={"cf-connecting-ip": addr}).status_code == 200
