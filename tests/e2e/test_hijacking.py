"""Account pre-hijacking: someone registers an address that is not theirs
before its owner does. Nobody may end up in an account whose address they
do not control: a password set before the address was proven never
survives a proof made by someone else. Every step is checked with
/v1/login, as an attacker would."""

import time

import pytest

from conftest import login
from harness import Worker, problem, unique_email

ATTACKER_PW = "attacker's password"


def refused(app, email, password):
    problem(app.login(email, password), 401, "invalid_credentials")


def test_a_squatters_password_does_not_survive_the_owners_code_sign_in(app, mail, secrets_seen):
    victim = unique_email("victim")
    # The attacker registers the victim's address and never verifies it.
    assert app.register(victim, ATTACKER_PW).status_code == 202
    mail.wait_for(victim)
    # Later the owner signs in with an emailed code.
    assert app.login_code(victim).status_code == 202
    code = mail.code(victim, index=1)
    r = app.login_code_verify(victim, code)
    assert r.status_code == 200, r.text
    owner = r.json()["token"]
    secrets_seen += [code, owner]
    assert app.me(token=owner).json()["verified"] is True
    refused(app, victim, ATTACKER_PW)
    with app.db() as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE email = ?", (victim,)).fetchone()
    assert stored == "", "the squatter's hash is gone"
    # The owner sets a password of their own; the attacker's still fails.
    assert app.password_reset(victim).status_code == 202
    reset = mail.code(victim, index=2)
    r = app.password_reset_confirm(victim, reset, "the owner's pw")
    assert r.status_code == 200
    login(app, victim, "the owner's pw", secrets_seen)
    refused(app, victim, ATTACKER_PW)


def test_no_session_made_before_the_proof_survives_it(app, mail):
    victim = unique_email("victim")
    assert app.register(victim, ATTACKER_PW).status_code == 202
    mail.wait_for(victim)
    # A session on the unverified account, however it came to be.
    with app.db() as db:
        (user_id,) = db.execute("SELECT id FROM users WHERE email = ?", (victim,)).fetchone()
    app.sql(command=f"INSERT INTO sessions (token_hash, user_id, created_at, expires_at) "
                    f"VALUES ('{'ab' * 32}', '{user_id}', 0, 99999999999)")
    assert app.login_code(victim).status_code == 202
    r = app.login_code_verify(victim, mail.code(victim, index=1))
    assert r.status_code == 200
    with app.db() as db:
        hashes = [h for (h,) in db.execute("SELECT token_hash FROM sessions WHERE user_id = ?", (user_id,))]
    assert hashes and "ab" * 32 not in hashes


def test_a_second_registration_does_not_replace_a_live_ones_password(app, mail, secrets_seen):
    owner = unique_email("owner")
    assert app.register(owner, "the owner's pw").status_code == 202
    code = mail.code(owner)
    refused(app, owner, ATTACKER_PW)
    # Before the owner verifies, the attacker registers the address again.
    r = app.register(owner, ATTACKER_PW)
    assert (r.status_code, r.json()) == (202, {"status": "verification_sent"})
    notice = mail.wait_for(owner, 2)[-1]["json"]
    assert "already waiting" in notice["subject"] and "still waiting" in notice["text"]
    codes_mailed = [m["text"] for m in mail.to(owner) if code in m["text"]]
    assert len(codes_mailed) == 1, "no code went out for the second registration"
    refused(app, owner, ATTACKER_PW)
    # The owner types the code they were mailed.
    assert app.verify_email(owner, code).status_code == 200
    secrets_seen.append(code)
    refused(app, owner, ATTACKER_PW)
    login(app, owner, "the owner's pw", secrets_seen)


def test_a_resent_code_proves_the_address_but_not_a_squatters_password(app, mail, secrets_seen):
    victim = unique_email("victim")
    assert app.register(victim, ATTACKER_PW).status_code == 202
    # The owner registers too, finds the sign-up waiting, and asks again.
    assert app.register(victim, "the owner's pw").status_code == 202
    assert app.resend(victim, "verify_email").status_code == 202
    code = mail.code(victim, index=2)
    secrets_seen.append(code)
    assert app.verify_email(victim, code).status_code == 200
    refused(app, victim, ATTACKER_PW)
    refused(app, victim, "the owner's pw")
    with app.db() as db:
        assert db.execute("SELECT verified, password_hash FROM users WHERE email = ?", (victim,)).fetchone() == (1, "")


@pytest.fixture(scope="module")
def fleeting(mail):
    """Codes and unverified accounts live 3 s, accounts counted from creation."""
    w = Worker("fleeting", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000",
                                           "OTP_TTL_SECONDS": "3", "UNVERIFIED_USER_TTL_SECONDS": "3"})
    yield w
    w.stop()


def test_an_expired_registration_may_be_replaced(fleeting, mail, secrets_seen):
    email = unique_email("stale")
    assert fleeting.register(email, "first password").status_code == 202
    mail.wait_for(email)
    time.sleep(3.3)
    assert fleeting.register(email, "second password").status_code == 202
    code = mail.code(email, index=1)
    assert fleeting.verify_email(email, code).status_code == 200
    secrets_seen.append(code)
    login(fleeting, email, "second password", secrets_seen)
    refused(fleeting, email, "first password")


def test_re_registering_does_not_keep_an_unverified_account_alive(fleeting, mail):
    email = unique_email("squat")
    assert fleeting.register(email, ATTACKER_PW).status_code == 202
    mail.wait_for(email)
    # Re-registered once the code expired: the account is as old as ever,
    # and goes at the next cleanup, live code and all.
    time.sleep(3.3)
    assert fleeting.register(email, ATTACKER_PW).status_code == 202
    mail.wait_for(email, 2)
    time.sleep(1)
    fleeting.scheduled()
    assert fleeting.log_line('"event":"cleanup"', timeout=10)
    with fleeting.db() as db:
        assert db.execute("SELECT COUNT(*) FROM users WHERE email = ?", (email,)).fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM codes WHERE address = ?", (email,)).fetchone() == (0,)
