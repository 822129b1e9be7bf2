"""The budget of failed password sign-ins per address: after
LOGIN_MAX_FAILURES failures (10), password sign-in answers 429
`login_locked` with Retry-After, whatever the password, for unknown
addresses alike, however many clients the guesses come from. Code sign-in
and password reset stay open, and a reset forgets the failures."""

from conftest import login
from harness import problem, unique_email

WRONG = "not the password"


def fail(app, email, n):
    for i in range(n):
        # Each guess from its own client: the per-client cap is no help.
        problem(app.login(email, WRONG, ip=f"203.0.113.{i + 1}"), 401, "invalid_credentials")


def locked(r):
    body = problem(r, 429, "login_locked")
    assert 890 <= int(r.headers["retry-after"]) <= 900, r.headers
    assert "/v1/login/code" in body["detail"]
    return {**body, "detail": None}


def test_ten_failures_lock_an_address_known_or_not(app, verified_user):
    email, password = verified_user
    ghost = unique_email("ghost")
    fail(app, email, 10)
    fail(app, ghost, 10)
    # Whatever the password, the right one included, and the same answer
    # for the unknown address.
    assert locked(app.login(email, password)) == locked(app.login(ghost, password))


def test_a_locked_out_owner_still_gets_in_by_code_and_by_reset(app, mail, verified_user, secrets_seen):
    email, password = verified_user
    fail(app, email, 10)
    locked(app.login(email, password))
    assert app.login_code(email).status_code == 202
    code = mail.code(email, index=1)
    secrets_seen.append(code)
    r = app.login_code_verify(email, code)
    assert r.status_code == 200, r.text
    secrets_seen.append(r.json()["token"])
    # A reset forgets the failures: the new password signs in at once.
    assert app.password_reset(email).status_code == 202
    reset = mail.code(email, index=2)
    assert app.password_reset_confirm(email, reset, "a brand new pw").status_code == 200
    login(app, email, "a brand new pw", secrets_seen)


def test_a_success_resets_the_count(app, verified_user, secrets_seen):
    email, password = verified_user
    fail(app, email, 9)
    login(app, email, password, secrets_seen)
    fail(app, email, 9)
    login(app, email, password, secrets_seen)
