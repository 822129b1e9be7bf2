"""Passwordless login by email code: /v1/login/code and /v1/login/code/verify."""

from concurrent.futures import ThreadPoolExecutor

from conftest import login
from harness import problem, unique_email
from test_enumeration import same, timed


def ask(app, email):
    return app.login_code(email)


def test_code_login_gives_a_session_and_the_code_works_once(app, mail, verified_user, secrets_seen):
    email, _ = verified_user
    r = ask(app, email)
    assert (r.status_code, r.json()) == (202, {"status": "code_sent"})
    mail.wait_for(email, 2)
    req = mail.to(email)[-1]
    assert "sign-in code" in req["json"]["subject"]
    code = mail.code(email)
    secrets_seen.append(code)
    r = app.login_code_verify(email, code)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"token", "token_type", "expires_at"} and body["token_type"] == "Bearer"
    secrets_seen.append(body["token"])
    assert app.me(token=body["token"]).json()["email"] == email
    problem(app.login_code_verify(email, code), 400, "invalid_code")


def test_code_login_verifies_an_unverified_address(app, mail):
    email = unique_email("codeverify")
    assert app.register(email, "correct horse").status_code == 202
    mail.wait_for(email)
    assert ask(app, email).status_code == 202
    mail.wait_for(email, 2)
    r = app.login_code_verify(email, mail.code(email))
    assert r.status_code == 200, r.text
    assert app.me(token=r.json()["token"]).json()["verified"] is True
    # The password was set before the address was proven, maybe by someone
    # else: the proof drops it, and the owner sets one with a reset.
    problem(app.login(email, "correct horse"), 401, "invalid_credentials")
    assert app.password_reset(email).status_code == 202
    code = mail.code(email, index=2)
    r = app.password_reset_confirm(email, code, "owner's own pw")
    assert r.status_code == 200
    login(app, email, "owner's own pw")


def test_unknown_addresses_get_the_same_answer_and_no_code(app, mail, verified_user):
    email, _ = verified_user
    ghost = unique_email("ghost")
    mail.expect(ghost, 0)
    same(ask(app, email), ask(app, ghost))
    problem(app.login_code_verify(ghost, "123456"), 400, "invalid_code")


def test_code_login_timing_does_not_tell_known_from_unknown(app, mail, verified_user):
    email, _ = verified_user
    mail.set(email, delay=0.4)
    try:
        known = timed(lambda: ask(app, email), n=5)
        unknown = timed(lambda: ask(app, unique_email("ghost")), n=5)
    finally:
        mail.set(email)
    assert known < unknown + 0.2, (known, unknown)


def test_wrong_codes_burn_the_login_code(app, mail, verified_user):
    email, _ = verified_user
    ask(app, email)
    mail.wait_for(email, 2)
    code = mail.code(email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        problem(app.login_code_verify(email, wrong), 400, "invalid_code")
    problem(app.login_code_verify(email, wrong), 429, "too_many_attempts")
    problem(app.login_code_verify(email, code), 429, "too_many_attempts")


def test_input_is_validated(app):
    problem(ask(app, "not-an-email"), 400, "invalid_request")
    problem(app.login_code_verify(unique_email(), "12ab56"), 400, "invalid_request")
    problem(app.call("login_code_verify", {"email": unique_email()}), 400, "invalid_request")


def test_concurrent_code_logins_create_exactly_one_session(app, mail, verified_user):
    email, _ = verified_user
    ask(app, email)
    mail.wait_for(email, 2)
    code = mail.code(email)
    with app.db() as db:
        before = db.execute("SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?",
                            (email,)).fetchone()[0]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: app.login_code_verify(email, code), range(8)))
    assert [r.status_code for r in answers].count(200) == 1, [r.status_code for r in answers]
    with app.db() as db:
        after = db.execute("SELECT COUNT(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ?",
                           (email,)).fetchone()[0]
    assert after == before + 1
