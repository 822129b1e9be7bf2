"""Two-step sign-in with an authenticator app, with PyPI's `pyotp` as the
app: enrolment (the otpauth URI parses, the QR code is on the page), the
second step after a password or an emailed code, a code good once, one
step of drift either way and not two, the budgets, recovery codes, turning
it off; on the pages in Chromium; and the ID token's `amr` naming both
factors. The worker's clock is the harness's: the codes are those of the
steps around now."""

import time

import pyotp
import pytest
from playwright.sync_api import expect

from browser import journey
from conftest import SECRETS_SEEN, login
from harness import ADMIN_TOKEN, problem, unique_email
from oidc_support import Callback, register_client, remember, sign_in_with_password, start_provider
from test_oidc_provider import authlib_app

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
STEP = 30


def settle():
    """Waits while the step is about to change, so that the step a code is
    made for here is the one the worker reads a moment later."""
    while time.time() % STEP > STEP - 4:
        time.sleep(0.5)


class Authenticator:
    """pyotp's TOTP from the URI the worker gave, and the last step the
    worker accepted: a code is good once, so each use takes a later step of
    the three around now, waiting for the next step when they are spent."""

    def __init__(self, uri):
        self.totp = pyotp.parse_uri(uri)
        self.used = 0

    def at(self, drift):
        """The code `drift` steps from now (not counted as used)."""
        settle()
        return self.totp.at(time.time() + drift * STEP)

    def fresh(self):
        while True:
            settle()
            now = int(time.time()) // STEP
            for step in (now - 1, now, now + 1):
                if step > self.used:
                    self.used = step
                    code = self.totp.at(step * STEP)
                    SECRETS_SEEN.append(code)
                    return code
            time.sleep(1)


def mail_about(mail, email, needle, timeout=10):
    """The mail to `email` whose subject says `needle`, once it came."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = [m for m in mail.to(email) if needle in m["json"]["subject"]]
        if found:
            return found[-1]["json"]
        time.sleep(0.05)
    raise AssertionError(f"no mail about {needle!r} to {email}")


def enrol(app, token):
    r = app.totp_begin(token)
    assert r.status_code == 201, r.text
    body = r.json()
    SECRETS_SEEN.append(body["secret"])
    return body


def confirm(app, token, auth, code=None):
    r = app.totp_confirm(token, code or auth.fresh())
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    SECRETS_SEEN.extend(codes)
    return codes


def with_totp(app, mail):
    """A verified account with its authenticator app on: (email, password,
    the app, the recovery codes)."""
    email, password = unique_email("totp"), "correct horse battery"
    assert app.register(email, password).status_code == 202
    code = mail.code(email)
    SECRETS_SEEN.extend([code, password])
    assert app.verify_email(email, code).status_code == 200
    token = login(app, email, password, SECRETS_SEEN)
    auth = Authenticator(enrol(app, token)["otpauth_uri"])
    return email, password, auth, confirm(app, token, auth)


def first_step(app, email, password):
    body = problem(app.login(email, password), 403, "mfa_required")
    SECRETS_SEEN.append(body["mfa_token"])
    assert body["mfa_token"] not in body["detail"]
    return body["mfa_token"]


def second_step(app, ticket, code):
    r = app.login_mfa(ticket, code)
    assert r.status_code == 200, r.text
    SECRETS_SEEN.append(r.json()["token"])
    return r.json()["token"]


def test_enrolment_gives_an_otpauth_uri_pyotp_reads_and_ten_recovery_codes(app, mail, verified_user):
    email, password = verified_user
    token = login(app, email, password, SECRETS_SEEN)
    body = enrol(app, token)
    totp = pyotp.parse_uri(body["otpauth_uri"])
    assert totp.secret == body["secret"] and len(body["secret"]) == 32  # 160 bits, base32
    assert (totp.issuer, totp.name) == ("Acme", email)
    assert (totp.digits, totp.interval, totp.digest().name) == (6, 30, "sha1")
    # Pending, it guards nothing yet.
    assert app.login(email, password).status_code == 200
    problem(app.totp_confirm(token, "000000" if totp.now() != "000000" else "111111"), 400, "invalid_code")
    codes = confirm(app, token, Authenticator(body["otpauth_uri"]))
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in codes)
    problem(app.totp_begin(token), 409, "totp_already_enabled")
    mail_about(mail, email, "Two-step sign-in is on")
    # At rest: the secret sealed, the codes only as keyed digests.
    row = app.db().execute("SELECT secret_sealed FROM totp_factors f JOIN users u ON u.id = f.user_id"
                           " WHERE u.email = ?", (email,)).fetchone()
    assert row[0].startswith("v1.") and body["secret"] not in row[0]
    digests = [d for (d,) in app.db().execute(
        "SELECT digest FROM recovery_codes r JOIN users u ON u.id = r.user_id WHERE u.email = ?", (email,))]
    assert len(digests) == 10
    assert not any(c.replace("-", "") in d for c in codes for d in digests)


def test_sign_in_needs_the_second_step_and_a_code_is_good_once(app, mail):
    email, password, auth, _ = with_totp(app, mail)
    problem(app.login(email, "wrong horse battery"), 401, "invalid_credentials")
    ticket = first_step(app, email, password)
    code = auth.fresh()
    token = second_step(app, ticket, code)
    assert app.me(token=token).json()["email"] == email
    # The ticket is spent, and the code is used: replayed on a new sign-in
    # within its 30 seconds, it is refused.
    problem(app.login_mfa(ticket, auth.fresh()), 401, "invalid_mfa_token")
    body = problem(app.login_mfa(first_step(app, email, password), code), 400, "invalid_code")
    assert body["attempts_left"] == 4
    # An emailed code is a first factor like the password.
    mail_about(mail, email, "Two-step sign-in is on")
    assert app.login_code(email).status_code == 202
    mail.wait_for(email, 3)
    r = app.login_code_verify(email, mail.code(email))
    SECRETS_SEEN.append(problem(r, 403, "mfa_required")["mfa_token"])
    problem(app.login_mfa("no-such-ticket", "123456"), 401, "invalid_mfa_token")


def test_one_step_of_drift_either_way_is_accepted_and_two_are_refused(app, mail, verified_user):
    email, password = verified_user
    token = login(app, email, password, SECRETS_SEEN)
    auth = Authenticator(enrol(app, token)["otpauth_uri"])
    for drift in (-2, 2):
        problem(app.totp_confirm(token, auth.at(drift)), 400, "invalid_code")
    settle()
    now = int(time.time()) // STEP
    confirm(app, token, auth, auth.totp.at((now - 1) * STEP))
    auth.used = now - 1
    ticket = first_step(app, email, password)
    settle()
    later = int(time.time()) // STEP + 1
    second_step(app, ticket, auth.totp.at(later * STEP))


def test_a_ticket_takes_five_guesses_and_the_account_ten(app, mail):
    email, password, auth, _ = with_totp(app, mail)
    wrong = lambda: pyotp.TOTP(pyotp.random_base32()).now()  # noqa: E731 (a code of another app)
    ticket = first_step(app, email, password)
    for left in (4, 3, 2, 1):
        assert problem(app.login_mfa(ticket, wrong()), 400, "invalid_code")["attempts_left"] == left
    problem(app.login_mfa(ticket, wrong()), 429, "too_many_attempts")
    problem(app.login_mfa(ticket, auth.fresh()), 429, "too_many_attempts")
    # A new ticket does not refill the account's budget (10 failures).
    ticket = first_step(app, email, password)
    for guess in range(5):
        problem(app.login_mfa(ticket, wrong()), *((400, "invalid_code") if guess < 4 else (429, "too_many_attempts")))
    r = app.login_mfa(first_step(app, email, password), auth.fresh())
    problem(r, 429, "second_factor_locked")
    assert int(r.headers["retry-after"]) > 0


def test_a_recovery_code_works_once_and_its_owner_is_told(app, mail):
    email, password, auth, codes = with_totp(app, mail)
    token = second_step(app, first_step(app, email, password), codes[0].upper().replace("-", " "))
    assert app.me(token=token).status_code == 200
    assert "9 of them are left" in mail_about(mail, email, "A recovery code signed in")["text"]
    problem(app.login_mfa(first_step(app, email, password), codes[0]), 400, "invalid_code")
    events = app.admin_events(params={"kind": "recovery_code_used"}, headers=ADMIN).json()["events"]
    assert events, "audited"
    # New codes, for a fresh code from the app: the old ones are void.
    r = app.totp_recovery_codes(token, auth.fresh())
    assert r.status_code == 200, r.text
    fresh = r.json()["recovery_codes"]
    SECRETS_SEEN.extend(fresh)
    problem(app.login_mfa(first_step(app, email, password), codes[1]), 400, "invalid_code")
    second_step(app, first_step(app, email, password), fresh[1])


def test_turning_it_off_needs_a_fresh_code_and_a_reset_does_not(app, mail):
    email, password, auth, codes = with_totp(app, mail)
    token = second_step(app, first_step(app, email, password), auth.fresh())
    waiting = first_step(app, email, password)
    # A password reset proves the mailbox, not the app: the factor stays.
    mail_about(mail, email, "Two-step sign-in is on")
    assert app.password_reset(email).status_code == 202
    mail.wait_for(email, 3)
    assert app.password_reset_confirm(email, mail.code(email), "a new horse battery").status_code == 200
    SECRETS_SEEN.append("a new horse battery")
    password = "a new horse battery"
    # It ends the sign-ins waiting for their second step, as it ends sessions.
    problem(app.login_mfa(waiting, codes[3]), 401, "invalid_mfa_token")
    problem(app.me(token=token), 401, "unauthorized")
    token = second_step(app, first_step(app, email, password), codes[2])
    problem(app.totp_remove(token, "000000" if auth.totp.now() != "000000" else "111111"), 400, "invalid_code")
    r = app.totp_remove(token, auth.fresh())
    assert r.status_code == 204, r.text
    mail_about(mail, email, "turned off")
    assert login(app, email, password, SECRETS_SEEN)
    problem(app.totp_remove(token, auth.fresh()), 409, "totp_not_enabled")


def test_the_routes_need_a_session(app):
    problem(app.totp_begin(None), 401, "unauthorized")
    problem(app.totp_confirm(None, "123456"), 401, "unauthorized")
    problem(app.totp_remove(None, "123456"), 401, "unauthorized")


@pytest.fixture(scope="module")
def provider(mail):
    w = start_provider("totp-oidc", mail, {"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000"})
    yield w
    w.stop()


def test_the_pages_set_it_up_and_ask_for_the_second_step_and_the_id_token_says_so(provider, mail, browser):
    email, password = unique_email("totp-pages"), "correct horse battery"
    SECRETS_SEEN.append(password)
    assert provider.register(email, password).status_code == 202
    code = mail.code(email)
    SECRETS_SEEN.append(code)
    assert provider.verify_email(email, code).status_code == 200
    callback = Callback()
    try:
        with journey(browser) as j:
            page = j.page
            page.goto(provider.url + "/auth/sign-in")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", password)
            page.click("button[value=password]")
            page.wait_for_url("**/auth/account")
            expect(page.locator("#totp-status")).to_contain_text("Off")
            j.look("account-two-step-off")
            page.get_by_role("button", name="Set up an authenticator app").click()
            expect(page.get_by_role("img", name="QR code of the setup key for your authenticator app")).to_be_visible()
            assert page.locator(".qr svg path").count() == 1
            secret = page.locator("#totp-secret").inner_text().strip()
            uri = page.locator("#otpauth-link").get_attribute("href")
            SECRETS_SEEN.append(secret)
            assert pyotp.parse_uri(uri).secret == secret
            j.look("totp-setup")
            auth = Authenticator(uri)
            # A wrong code shows the same key again, with the error.
            page.fill("#code", "000000" if auth.totp.now() != "000000" else "111111")
            page.click("#totp-confirm button")
            expect(page.locator("#error")).to_be_visible()
            assert page.locator("#totp-secret").inner_text().strip() == secret
            page.fill("#code", auth.fresh())
            page.click("#totp-confirm button")
            codes = page.locator("#recovery-codes li").all_inner_texts()
            SECRETS_SEEN.extend(codes)
            assert len(codes) == 10
            j.look("recovery-codes")
            page.click("#done")
            expect(page.locator("#totp-status")).to_contain_text("10 recovery codes left")
            j.look("account-two-step-on")
            page.click("#sign-out button")

            # An app sends the person to sign in: password, then the app's code.
            client = register_client(provider, callback)
            app = authlib_app(provider, client, scope="openid email")
            rv = app.create_authorization_url(redirect_uri=callback.uri)
            sign_in_with_password(j, rv["url"], email, password)
            expect(page.locator("#second-step")).to_be_visible()
            expect(page.locator("#continues-to")).to_contain_text("Notes")
            # The pages' ticket is a browser's: the JSON API refuses it.
            browser_ticket = page.locator("input[name=mfa_token]").get_attribute("value")
            SECRETS_SEEN.append(browser_ticket)
            problem(provider.login_mfa(browser_ticket, auth.at(0)), 401, "invalid_mfa_token")
            j.look("second-step")
            page.fill("#code", "000000" if auth.totp.now() != "000000" else "111111")
            page.click("#second-step button")
            expect(page.locator("#error")).to_contain_text("wrong")
            page.fill("#code", auth.fresh())
            page.click("#second-step button")
            page.wait_for_url(callback.uri + "?**")
        back = callback.last()
        token = app.fetch_access_token(redirect_uri=callback.uri, code=back["code"], code_verifier=rv["code_verifier"])
        remember(token)
        claims = app.parse_id_token(token, nonce=rv["nonce"])
        assert claims["amr"] == ["pwd", "otp", "mfa"]
    finally:
        callback.close()


def test_a_recovery_code_on_the_pages_and_without_javascript(provider, mail, browser):
    email, password, auth, codes = with_totp(provider, mail)
    with journey(browser, javascript=False) as j:
        page = j.page
        page.goto(provider.url + "/auth/sign-in")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button[value=password]")
        page.fill("#code", codes[4])
        page.click("#second-step button")
        page.wait_for_url("**/auth/account")
        expect(page.locator("#totp-status")).to_contain_text("9 recovery codes left")
        # Off, with a code from the app.
        page.fill("#off-code", auth.fresh())
        page.click("#totp-off button")
        page.wait_for_url("**/auth/account?notice=totp_off")
        expect(page.locator("#totp-status")).to_contain_text("Off")


def test_the_cron_deletes_expired_tickets_and_enrolments_never_confirmed(app, mail, verified_user):
    email, password, _, _ = with_totp(app, mail)
    ticket = first_step(app, email, password)
    other, other_password = verified_user
    enrol(app, login(app, other, other_password, SECRETS_SEEN))
    # Past their time: the ticket's 5 minutes, the pending secret's day.
    app.sql(command="UPDATE mfa_tickets SET expires_at = 1000 WHERE user_id = "
                    f"(SELECT id FROM users WHERE email = '{email}')")
    app.sql(command="UPDATE totp_factors SET created_at = 1000 WHERE user_id = "
                    f"(SELECT id FROM users WHERE email = '{other}')")
    problem(app.login_mfa(ticket, "123456"), 401, "invalid_mfa_token")
    app.scheduled()
    deadline = time.time() + 10
    while time.time() < deadline:
        db = app.db()
        left = (db.execute("SELECT COUNT(*) FROM mfa_tickets t JOIN users u ON u.id = t.user_id WHERE u.email = ?",
                           (email,)).fetchone()[0],
                db.execute("SELECT COUNT(*) FROM totp_factors f JOIN users u ON u.id = f.user_id WHERE u.email = ?",
                           (other,)).fetchone()[0])
        if left == (0, 0):
            break
        time.sleep(0.2)
    assert left == (0, 0)
    # The confirmed one stays.
    assert app.db().execute("SELECT COUNT(*) FROM totp_factors f JOIN users u ON u.id = f.user_id"
                            " WHERE u.email = ? AND confirmed_at IS NOT NULL", (email,)).fetchone()[0] == 1
