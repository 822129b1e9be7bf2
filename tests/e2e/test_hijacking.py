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
    # The owner types the code they were mailed, with their password: the
    # second registration contested the sign-up.
    r = app.call("verify_email", {"email": owner, "code": code, "password": "the owner's pw"})
    assert r.json() == {"status": "verified", "password_kept": True}, r.text
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
    r = app.verify_email(victim, code)
    assert r.json() == {"status": "verified", "password_kept": False}, r.text
    refused(app, victim, ATTACKER_PW)
    refused(app, victim, "the owner's pw")
    with app.db() as db:
        assert db.execute("SELECT verified, password_hash FROM users WHERE email = ?", (victim,)).fetchone() == (1, "")


@pytest.fixture(scope="module")
def fleeting(mail):
    """Unverified accounts live 3 s, counted from creation; codes are let
    run out in the database (they live a minute at least)."""
    w = Worker("fleeting", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000",
                                           "UNVERIFIED_USER_TTL_SECONDS": "3"})
    yield w
    w.stop()


def test_an_expired_registration_may_be_replaced(fleeting, mail, secrets_seen):
    email = unique_email("stale")
    assert fleeting.register(email, "first password").status_code == 202
    mail.wait_for(email)
    fleeting.expire_codes(email)
    assert fleeting.register(email, "second password").status_code == 202
    code = mail.code(email, index=1)
    secrets_seen.append(code)
    # A second sign-up contests the address: the code keeps the password
    # the request proves.
    r = fleeting.call("verify_email", {"email": email, "code": code, "password": "second password"})
    assert r.json() == {"status": "verified", "password_kept": True}, r.text
    login(fleeting, email, "second password", secrets_seen)
    refused(fleeting, email, "first password")


def test_re_registering_does_not_keep_an_unverified_account_alive(fleeting, mail):
    email = unique_email("squat")
    assert fleeting.register(email, ATTACKER_PW).status_code == 202
    mail.wait_for(email)
    # Re-registered once the code expired: the account is as old as ever,
    # and goes at the next cleanup, live code and all.
    fleeting.expire_codes(email)
    time.sleep(3.3)
    assert fleeting.register(email, ATTACKER_PW).status_code == 202
    mail.wait_for(email, 2)
    time.sleep(1)
    fleeting.scheduled()
    assert fleeting.log_line('"event":"cleanup"', timeout=10)
    with fleeting.db() as db:
        assert db.execute("SELECT COUNT(*) FROM users WHERE email = ?", (email,)).fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM codes WHERE address = ?", (email,)).fetchone() == (0,)


# Contested sign-ups: the squatter's code in the owner's inbox ------------

OWNER_PW = "the owner's pw"


def verify(app, email, code, password=None):
    body = {"email": email, "code": code, **({"password": password} if password else {})}
    r = app.call("verify_email", body)
    assert r.status_code == 200, r.text
    return r.json()["password_kept"]


def test_squatter_first_the_owner_types_the_only_code_in_the_inbox(app, mail, secrets_seen):
    """The squatter signs up with the owner's address; the owner signs up
    too, within the code's lifetime, and types the one code the inbox has:
    the squatter's. The address is verified, with no password: neither the
    squatter's nor the owner's (never stored) signs in; the owner sets one."""
    victim = unique_email("victim")
    assert app.register(victim, ATTACKER_PW).status_code == 202
    code = mail.code(victim)
    assert app.register(victim, OWNER_PW).status_code == 202
    assert "already waiting" in mail.wait_for(victim, 2)[-1]["json"]["subject"]
    secrets_seen.append(code)
    assert verify(app, victim, code, OWNER_PW) is False
    refused(app, victim, ATTACKER_PW)
    refused(app, victim, OWNER_PW)
    assert app.password_reset(victim).status_code == 202
    reset = mail.code(victim, index=2)
    assert app.password_reset_confirm(victim, reset, OWNER_PW).status_code == 200
    login(app, victim, OWNER_PW, secrets_seen)
    refused(app, victim, ATTACKER_PW)


@pytest.fixture(scope="module")
def cooling(mail):
    """The production cooldown (60 s) and hourly cap (5)."""
    w = Worker("cooling", mail=mail)
    yield w
    w.stop()


def test_a_sign_up_the_limits_stop_still_contests_the_address(cooling, uncooled, mail, secrets_seen):
    """The owner signs up while the squatter's cooldown still runs, or once
    the squatter has filled the mailbox's hourly cap with resets of an
    unknown alias (no mail reaches the owner). The owner's sign-up sends
    nothing, but it still asked for the address: the only code in the
    inbox, the squatter's, keeps no password, even with the owner's."""
    for worker in (cooling, uncooled):
        victim = unique_email("swallowed")
        assert worker.register(victim, ATTACKER_PW).status_code == 202
        code = mail.code(victim)
        secrets_seen.append(code)
        worker.after_answer()
        if worker is uncooled:
            alias = victim.replace("@", "+x@")
            for _ in range(2):
                assert worker.password_reset(alias).status_code == 202
        assert worker.register(victim, OWNER_PW).status_code == 202
        worker.after_answer()
        mail.expect(victim, 1)
        assert verify(worker, victim, code, OWNER_PW) is False
        refused(worker, victim, ATTACKER_PW)
        refused(worker, victim, OWNER_PW)


def test_owner_first_the_owners_code_keeps_the_password_only_with_it(app, mail, secrets_seen):
    """The owner signs up, the squatter signs up the same address: the
    owner's code keeps the owner's password when the request carries it,
    and without it verifies the address with no password."""
    for with_password in (True, False):
        owner = unique_email("owner")
        assert app.register(owner, OWNER_PW).status_code == 202
        code = mail.code(owner)
        assert app.register(owner, ATTACKER_PW).status_code == 202
        secrets_seen.append(code)
        assert verify(app, owner, code, OWNER_PW if with_password else None) is with_password
        refused(app, owner, ATTACKER_PW)
        if with_password:
            login(app, owner, OWNER_PW, secrets_seen)
        else:
            refused(app, owner, OWNER_PW)


def test_uncontested_the_code_alone_keeps_the_password(app, mail, secrets_seen):
    email = unique_email("plain")
    assert app.register(email, OWNER_PW).status_code == 202
    code = mail.code(email)
    secrets_seen.append(code)
    assert verify(app, email, code) is True
    login(app, email, OWNER_PW, secrets_seen)


def test_on_the_pages_the_browser_that_signed_up_proves_its_password(app, mail, secrets_seen):
    """Both orders through the pages. Owner first: the owner's browser
    carries its sign-up's token, and its code keeps the owner's password
    and signs that browser in.
    Squatter first: the only code is the squatter's, and the owner's
    browser proves nothing about it: verified with no password, and the page
    says to choose one."""
    from test_page_defences import Browser

    def sign_up(email):
        b = Browser(app)
        r = b.submit("/auth/sign-up", "sign-up", {"email": email, "password": OWNER_PW})
        assert r.status_code == 303
        assert "__Host-otp_signup" in b.jar
        return b, r.headers["location"]

    def type_code(b, at, email, code):
        action, form = b.form(at, "verify")
        r = b.post(action, {**form.fields, "email": email, "code": code})
        assert r.status_code == 303, r.text
        return r.headers["location"]

    owner = unique_email("page-owner")
    b, at = sign_up(owner)
    code = mail.code(owner)
    assert app.register(owner, ATTACKER_PW).status_code == 202
    secrets_seen.append(code)
    # The owner's own browser proved the password: it is signed in.
    assert type_code(b, at, owner, code) == "/auth/account"
    assert b.get("/auth/account").status_code == 200
    login(app, owner, OWNER_PW, secrets_seen)
    refused(app, owner, ATTACKER_PW)

    victim = unique_email("page-victim")
    assert app.register(victim, ATTACKER_PW).status_code == 202
    code = mail.code(victim)
    b, at = sign_up(victim)
    secrets_seen.append(code)
    assert type_code(b, at, victim, code).startswith("/auth/forgot?notice=verified_without_password")
    assert "__Host-otp_session" not in b.jar, "no session for a verification that kept no password"
    refused(app, victim, ATTACKER_PW)
    refused(app, victim, OWNER_PW)
