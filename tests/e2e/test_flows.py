"""The account flows, end to end, with the mail API stand-in capturing mail."""

import re
from datetime import datetime, timezone

from conftest import login
from harness import MAIL_API_KEY, problem, unique_email


def test_register_verify_login_me_logout(app, mail, secrets_seen):
    email, password = unique_email("flow"), "correct horse battery"
    r = app.register(email.upper(), password)
    assert r.status_code == 202 and r.json() == {"status": "verification_sent"}
    code = mail.code(email)
    secrets_seen += [code, password]
    assert len(code) == 6

    # Unverified: answered as a wrong password is; the right password
    # mails a fresh code after the answer, which replaces the first.
    problem(app.login(email, password), 401, "invalid_credentials")
    code = mail.code(email, index=1)
    secrets_seen.append(code)
    r = app.verify_email(email, code)
    assert r.status_code == 200 and r.json() == {"status": "verified", "password_kept": True}

    r = app.login(email, password)
    assert r.status_code == 200
    body = r.json()
    secrets_seen.append(body["token"])
    assert body["token_type"] == "Bearer" and len(body["token"]) >= 43
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    days = (expires - datetime.now(timezone.utc)).total_seconds() / 86400
    assert 6.9 < days <= 7.0

    me = app.me(token=body["token"])
    assert me.status_code == 200
    assert me.json()["email"] == email and me.json()["verified"] is True
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", me.json()["created_at"])

    r = app.logout(headers={"authorization": f"Bearer {body['token']}"})
    assert r.status_code == 204 and r.content == b""
    problem(app.me(token=body["token"]), 401, "unauthorized")


def test_mail_request_shape_matches_resend(app, mail):
    email = unique_email("shape")
    app.register(email, "correct horse")
    req = mail.wait_for(email)[-1]
    assert req["path"] == "/emails"
    assert req["headers"]["authorization"] == f"Bearer {MAIL_API_KEY}"
    assert req["headers"]["content-type"].startswith("application/json")
    assert req["headers"]["idempotency-key"]
    body = req["json"]
    assert set(body) == {"from", "to", "subject", "text", "html", "tags"}
    # The tag Resend's delivery webhook names the send by.
    assert body["tags"] == [{"name": "otp_send", "value": req["headers"]["idempotency-key"]}]
    assert body["from"] == "Acme <no-reply@acme.test>" and body["to"] == [email]
    code = mail.code(email)
    for part in (body["text"], body["html"]):
        assert code in part and "Acme" in part and "10 minutes" in part and "didn't ask for this" in part


def test_registering_a_pending_address_again_keeps_the_first_password_and_code(app, mail):
    email = unique_email("again")
    app.register(email, "first password")
    first = mail.code(email)
    r = app.register(email, "second password")
    assert r.status_code == 202 and r.json() == {"status": "verification_sent"}
    notice = mail.wait_for(email, 2)[-1]["json"]
    assert "already waiting" in notice["subject"] and not re.search(r"\d{4,}", notice["text"])
    # The second sign-up contested the address: the first code keeps the
    # first password when the request proves it.
    r = app.call("verify_email", {"email": email, "code": first, "password": "first password"})
    assert r.json() == {"status": "verified", "password_kept": True}, r.text
    problem(app.login(email, "second password"), 401, "invalid_credentials")
    login(app, email, "first password")


def test_registering_a_verified_address_changes_nothing_and_mails_a_notice(app, mail, verified_user):
    email, password = verified_user
    before = len(mail.to(email))
    r = app.register(email, "attacker password")
    assert r.status_code == 202 and r.json() == {"status": "verification_sent"}
    notice = mail.wait_for(email, before + 1)[-1]["json"]
    assert not re.search(r"\d{4,}", notice["text"]), "the notice must carry no code"
    assert "already has one" in notice["text"]
    problem(app.login(email, "attacker password"), 401, "invalid_credentials")
    login(app, email, password)


def test_resend_mails_a_fresh_verification_code(app, mail):
    email = unique_email("resend")
    app.register(email, "correct horse")
    mail.wait_for(email, 1)
    r = app.resend(email, "verify_email")
    assert r.status_code == 202 and r.json() == {"status": "code_sent"}
    code = mail.code(email, index=1)
    assert app.verify_email(email, code).status_code == 200
    # Nothing left to verify: a verified account gets no verification mail.
    app.resend(email, "verify_email")
    mail.expect(email, 2)


def test_password_reset_sets_the_password_and_revokes_every_session(app, mail, verified_user, secrets_seen):
    email, old = verified_user
    t1, t2 = login(app, email, old, secrets_seen), login(app, email, old, secrets_seen)
    r = app.password_reset(email)
    assert r.status_code == 202 and r.json() == {"status": "code_sent"}
    mails = mail.wait_for(email, 2)
    assert "password reset" in mails[-1]["json"]["subject"] and "15 minutes" in mails[-1]["json"]["text"]
    code = mail.code(email)
    secrets_seen.append(code)
    new = "brand new password"
    r = app.password_reset_confirm(email, code, new)
    assert r.status_code == 200 and r.json() == {"status": "password_reset"}
    for t in (t1, t2):
        problem(app.me(token=t), 401, "unauthorized")
    problem(app.login(email, old), 401, "invalid_credentials")
    login(app, email, new)
    # The code was single use.
    problem(app.password_reset_confirm(email, code, "another one!"), 400, "invalid_code")


def test_password_reset_proves_ownership_of_an_unverified_address(app, mail):
    email = unique_email("resetunverified")
    app.register(email, "forgotten pw")
    mail.wait_for(email, 1)
    app.password_reset(email)
    code = mail.code(email, index=1)
    assert app.password_reset_confirm(email, code, "remembered pw").status_code == 200
    login(app, email, "remembered pw")


def test_codes_are_bound_to_their_purpose(app, mail):
    email = unique_email("purpose")
    app.register(email, "correct horse")
    verify_code = mail.code(email)
    problem(app.password_reset_confirm(email, verify_code, "hijacked pw"),
            400, "invalid_code")
    assert app.verify_email(email, verify_code).status_code == 200
