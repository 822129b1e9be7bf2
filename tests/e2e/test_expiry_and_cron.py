"""Lifetimes and the cron cleanup, on a worker whose sessions and unverified
accounts live seconds. Codes live a minute at least (OTP_TTL_SECONDS):
the test lets them run out in the database."""

import json
import time

import pytest

from conftest import login
from harness import ADMIN_TOKEN, Worker, problem, unique_email

TTL = 3


@pytest.fixture(scope="module")
def short(mail):
    w = Worker("short", mail=mail, vars={
        "RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000",
        "RESET_OTP_TTL_SECONDS": str(TTL),
        "SESSION_TTL_SECONDS": str(TTL), "UNVERIFIED_USER_TTL_SECONDS": str(TTL),
    })
    yield w
    w.stop()


def test_expired_codes_sessions_and_stale_accounts_go(short, mail):
    stale = unique_email("stale")
    short.register(stale, "correct horse")
    stale_code = mail.code(stale)

    email = unique_email("exp")
    short.register(email, "correct horse")
    assert short.verify_email(email, mail.code(email)).status_code == 200
    token = login(short, email, "correct horse")
    assert short.me(token=token).status_code == 200
    stats = short.admin_stats(token=ADMIN_TOKEN).json()
    assert stats["active_codes"] >= 1 and stats["active_sessions"] == 1

    time.sleep(TTL + 1.5)
    short.expire_codes(stale)
    short.expire_codes(email)
    problem(short.verify_email(stale, stale_code), 400, "expired_code")
    problem(short.me(token=token), 401, "unauthorized")
    stats = short.admin_stats(token=ADMIN_TOKEN).json()
    assert stats["active_codes"] == 0 and stats["expired_codes"] >= 1 and stats["active_sessions"] == 0

    short.scheduled()
    deadline = time.time() + 10
    while '"event":"cleanup"' not in short.logs() and time.time() < deadline:
        time.sleep(0.1)
    line = next(l for l in short.logs().splitlines() if '"event":"cleanup"' in l)
    counts = json.loads(line[line.index("{"):])["deleted"]
    assert counts["expired_codes"] >= 1 and counts["expired_sessions"] == 1 and counts["unverified_users"] >= 1

    stats = short.admin_stats(token=ADMIN_TOKEN).json()
    assert stats["expired_codes"] == 0
    assert stats["users"]["total"] == stats["users"]["verified"] == 1
    with short.db() as db:
        assert db.execute("SELECT COUNT(*) FROM users WHERE email = ?", (stale,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    # The stale address can register again from scratch.
    assert short.register(stale, "correct horse").status_code == 202
