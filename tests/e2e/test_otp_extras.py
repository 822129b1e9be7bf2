"""What users of OTP services keep asking for, end to end
against the worker under `wrangler dev`, with stand-ins for the mail API,
Twilio and Turnstile's siteverify: test recipients, the SMS-pumping guards,
message languages, one-tap autofill, Turnstile, delivery status, and the
WhatsApp-to-SMS fallback."""

import base64
import hashlib
import hmac
import json
import random
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from conftest import SECRETS_SEEN, create_key, twilio_vars
from harness import ADMIN_TOKEN, TWILIO_TOKEN, Worker, code_in, free_port, problem, unique_email

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
PUBLIC_BASE_URL = "https://otp.example.com"
WHSEC = "whsec_" + base64.b64encode(b"e2e-resend-webhook-secret-32byte").decode()


def auth(key):
    return {"authorization": f"Bearer {key}"}


def send(worker, key, channel, to, purpose="sign_in", **extra):
    return worker.call("otp_send", {"channel": channel, "to": to, "purpose": purpose, **extra}, headers=auth(key))


def verify(worker, key, channel, to, code, purpose="sign_in"):
    SECRETS_SEEN.append(code)
    return worker.otp_verify(channel, to, purpose, code, headers=auth(key))


def uk_phone(block=None):
    """A +44 7… number; `block` fixes its first 7 national digits."""
    block = block or "77009" + "".join(random.choices("0123456789", k=2))
    return f"+44{block}" + "".join(random.choices("0123456789", k=3))


def events(worker, **params):
    r = worker.admin_events(headers=ADMIN, params={"limit": 500, **params})
    assert r.status_code == 200, r.text
    return r.json()["events"]


def recipients_path(key_id):
    return f"/v1/admin/api-keys/{key_id}/test-recipients"


def add_test_recipient(worker, key_id, channel, to, code, headers=ADMIN):
    if len(code) >= 4:  # a refused short one is no secret, and would match any number
        SECRETS_SEEN.append(code)
    return worker.admin_add_test_recipient(key_id, channel, to, code, headers=headers)


class Siteverify:
    """A stand-in for Turnstile's siteverify: each token in `valid` passes
    once (then it is spent, as Cloudflare's are); `down` answers 500."""

    def __init__(self):
        self.valid, self.requests, self.down = set(), [], False
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                form = dict(parse_qsl(raw.decode()))
                stand_in.requests.append(form)
                if stand_in.down:
                    status, answer = 500, {"success": False, "error-codes": ["internal-error"]}
                elif form.get("secret") != "turnstile-e2e-secret":
                    status, answer = 200, {"success": False, "error-codes": ["invalid-input-secret"]}
                elif form.get("response") in stand_in.valid:
                    stand_in.valid.discard(form["response"])
                    status, answer = 200, {"success": True, "error-codes": [], "hostname": "app.example.com"}
                else:
                    status, answer = 200, {"success": False, "error-codes": ["invalid-input-response"]}
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/turnstile/v0/siteverify"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def token(self):
        t = f"e2e.{uuid.uuid4().hex}"
        self.valid.add(t)
        return t


@pytest.fixture(scope="module")
def siteverify():
    s = Siteverify()
    yield s
    s.httpd.shutdown()


@pytest.fixture(scope="module")
def extras(mail, twilio, siteverify):
    """A worker with every option of the apps' extras on: Turnstile, callbacks,
    Resend's webhook, a country list and a small prefix cap."""
    w = Worker("extras", mail=mail,
               vars={"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000", **twilio_vars(twilio),
                     "TURNSTILE_VERIFY_URL": siteverify.url, "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
                     "SMS_ALLOWED_COUNTRIES": "GB, DE", "SMS_MAX_PER_PREFIX_PER_HOUR": "3",
                     "TURNSTILE_SITE_KEY": "0x4AAAAAAAe2e"},
               secrets={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "TURNSTILE_SECRET": "turnstile-e2e-secret",
                        "RESEND_WEBHOOK_SECRET": WHSEC})
    yield w
    w.stop()


# 1. Test identities ------------------------------------------------------------

def test_a_test_recipient_gets_its_fixed_code_and_no_message(app, mail, twilio):
    key = create_key(app, channels=["email", "sms"])
    phone, email = uk_phone(), unique_email("reviewer")
    assert add_test_recipient(app, key["id"], "sms", phone, "424242").status_code == 201
    r = add_test_recipient(app, key["id"], "email", email.upper(), "ab12cd")
    assert r.status_code == 201 and r.json()["to"] == email and r.json()["channel"] == "email", r.text
    listed = app.admin_list_test_recipients(key["id"], headers=ADMIN)
    assert listed.status_code == 200
    assert sorted(t["to"] for t in listed.json()["test_recipients"]) == sorted([phone, email])
    assert "424242" not in listed.text and "AB12CD" not in listed.text.upper()

    sent = send(app, key["key"], "sms", phone)
    assert sent.status_code == 202 and sent.json()["channel"] == "sms", sent.text
    assert send(app, key["key"], "email", email, purpose="checkout").status_code == 202
    twilio.expect(phone, 0)
    mail.expect(email, 0)
    # One fixed code for every purpose, single use, and case-insensitive.
    assert verify(app, key["key"], "sms", phone, "424242").status_code == 200
    problem(verify(app, key["key"], "sms", phone, "424242"), 400, "invalid_code")
    assert verify(app, key["key"], "email", email, "AB12CD", purpose="checkout").status_code == 200
    # The code is never stored: only its HMAC.
    with app.db() as db:
        dump = "\n".join(db.iterdump())
    assert "424242" not in dump and "AB12CD" not in dump.upper()

    app.after_answer()
    trail = [e for e in events(app, kind="code_sent") if e.get("send_id") == sent.json()["id"]]
    assert len(trail) == 1 and trail[0]["test"] is True and trail[0]["outcome"] == "sent"
    report = app.otp_status(sent.json()["id"], token=key["key"])
    assert report.status_code == 200, report.text
    assert report.json()["test"] is True and report.json()["status"] == "verified"
    assert report.json()["delivery"]["status"] == "none"


def test_a_test_code_keeps_the_guess_budget(app, twilio):
    key = create_key(app, channels=["sms"])
    phone = uk_phone()
    assert add_test_recipient(app, key["id"], "sms", phone, "135790").status_code == 201
    assert send(app, key["key"], "sms", phone).status_code == 202
    for left in (4, 3, 2, 1):
        body = problem(verify(app, key["key"], "sms", phone, "000000"), 400, "invalid_code")
        assert body["attempts_left"] == left
    problem(verify(app, key["key"], "sms", phone, "000000"), 429, "too_many_attempts")
    # A resend refills nothing: the fixed code no longer works.
    assert send(app, key["key"], "sms", phone).status_code == 202
    problem(verify(app, key["key"], "sms", phone, "135790"), 429, "too_many_attempts")
    twilio.expect(phone, 0)


def test_test_recipients_are_admin_only_bounded_and_removable(app):
    key = create_key(app, channels=["email"])
    email = unique_email("ci")
    problem(add_test_recipient(app, key["id"], "email", email, "123456", headers=auth(key["key"])),
            401, "unauthorized")
    problem(add_test_recipient(app, "0" * 32, "email", email, "123456"), 404, "not_found")
    problem(add_test_recipient(app, key["id"], "email", "not-an-address", "123456"), 400, "invalid_request")
    problem(add_test_recipient(app, key["id"], "email", email, "12"), 400, "invalid_request")
    # As hard to guess as an issued code: 4 digits in 5 attempts is not.
    body = problem(add_test_recipient(app, key["id"], "email", email, "1234"), 400, "invalid_request")
    assert "`code`" in body["detail"]
    assert add_test_recipient(app, key["id"], "email", email, "123456").status_code == 201
    assert send(app, key["key"], "email", email).status_code == 202
    path = recipients_path(key["id"])
    problem(app.session_delete(path, headers=ADMIN, params={"channel": "email"}), 400, "invalid_request")
    assert app.admin_remove_test_recipient(key["id"], "email", email, headers=ADMIN).status_code == 204
    # Its pending code goes with it: the fixed code stops working at once.
    problem(verify(app, key["key"], "email", email, "123456"), 400, "invalid_code")
    problem(app.admin_remove_test_recipient(key["id"], "email", email, headers=ADMIN), 404, "not_found")
    for i in range(50):
        assert add_test_recipient(app, key["id"], "email", f"r{i}-{email}", "123456").status_code == 201
    problem(add_test_recipient(app, key["id"], "email", email, "123456"), 409, "too_many_test_recipients")
    # A revoked key's test recipients go with it.
    assert app.admin_revoke_key(key["id"], headers=ADMIN).status_code == 204
    problem(add_test_recipient(app, key["id"], "email", email, "123456"), 404, "not_found")


def test_test_recipients_are_refused_in_production_unless_allowed(mail):
    prod = {"ENVIRONMENT": "production", "RESEND_COOLDOWN_SECONDS": "0"}
    w = Worker("prod-test-recipients", mail=mail, vars=prod)
    try:
        key = create_key(w, channels=["email"])
        problem(add_test_recipient(w, key["id"], "email", unique_email(), "123456"), 403,
                "test_recipients_disabled")
    finally:
        w.stop()
    w = Worker("prod-test-recipients-allowed", mail=mail, vars={**prod, "ALLOW_TEST_RECIPIENTS": "true"})
    try:
        key = create_key(w, channels=["email"])
        email = unique_email("store-review")
        assert add_test_recipient(w, key["id"], "email", email, "123456").status_code == 201
        assert send(w, key["key"], "email", email).status_code == 202
        mail.expect(email, 0)
        assert verify(w, key["key"], "email", email, "123456").status_code == 200
    finally:
        w.stop()


def test_stats_count_test_sends_apart(app):
    key = create_key(app, channels=["sms"])
    phone = uk_phone()
    before = app.admin_stats(headers=ADMIN).json()
    assert add_test_recipient(app, key["id"], "sms", phone, "246810").status_code == 201
    assert send(app, key["key"], "sms", phone).status_code == 202
    app.after_answer()
    after = app.admin_stats(headers=ADMIN).json()
    assert after["test_codes"] == before["test_codes"] + 1
    assert after["app_codes"] == before["app_codes"]
    assert after["sends_24h"]["test"] == before["sends_24h"]["test"] + 1
    assert after["sends_24h"]["sent"] == before["sends_24h"]["sent"]


# 2. SMS pumping ----------------------------------------------------------------

def test_numbers_outside_the_allowed_countries_are_refused_before_twilio(extras, twilio):
    key = create_key(extras, channels=["sms", "whatsapp"])
    for channel, to in [("sms", "+14155550142"), ("whatsapp", "+18765550142"), ("sms", "+88212345678")]:
        problem(send(extras, key["key"], channel, to), 403, "country_not_allowed")
        twilio.expect(to, 0)
        twilio.expect(f"whatsapp:{to}", 0)
    german = "+4915112345" + "".join(random.choices("0123456789", k=3))
    assert send(extras, key["key"], "sms", german).status_code == 202
    twilio.expect(german, 1)
    extras.after_answer()
    refused = [e for e in events(extras, kind="code_sent") if e["outcome"] == "country_not_allowed"]
    assert len(refused) >= 3


def test_a_run_through_a_number_range_meets_the_prefix_cap(extras, twilio):
    a, b = create_key(extras, channels=["sms"]), create_key(extras, channels=["sms", "whatsapp"])
    block = "77" + "".join(random.choices("0123456789", k=5))
    numbers = [f"+44{block}{i:03d}" for i in range(4)]
    assert send(extras, a["key"], "sms", numbers[0]).status_code == 202
    assert send(extras, a["key"], "sms", numbers[1]).status_code == 202
    assert send(extras, b["key"], "whatsapp", numbers[2]).status_code == 202
    r = send(extras, b["key"], "sms", numbers[3])
    problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 3600
    twilio.expect(numbers[3], 0)
    # Another range goes on.
    assert send(extras, a["key"], "sms", uk_phone()).status_code == 202
    extras.after_answer()
    assert any(e["outcome"] == "prefix_limited" for e in events(extras, kind="code_sent"))
    refused = extras.admin_stats(headers=ADMIN).json()["sends_24h"]["refused"]
    assert refused.get("prefix_limited", 0) >= 1 and refused.get("country_not_allowed", 0) >= 0


# 3. Languages ------------------------------------------------------------------

@pytest.mark.parametrize("locale, words", [
    ("fr", "Voici votre code"), ("pt-BR", "Aqui está"), ("es-419", "Este es tu código"),
    ("de-AT", "Hier ist Ihr"), ("hi", "आपका"), ("zh-Hant", "Here is your"),
])
def test_app_codes_speak_the_locale_asked_for(app, mail, api_key, locale, words):
    email = unique_email("lang")
    assert send(app, api_key, "email", email, locale=locale).status_code == 202
    message = mail.wait_for(email)[0]
    code = code_in(message["text"])
    SECRETS_SEEN.append(code)
    assert message["json"]["subject"].startswith(code), message["json"]["subject"]
    assert words in message["text"] or words in message["json"]["html"], message["text"]


def test_a_malformed_locale_is_refused(app, api_key):
    for bad in ["english_US", "", "e", "x" * 40]:
        problem(send(app, api_key, "email", unique_email(), locale=bad), 400, "invalid_request")


def test_sms_speaks_the_locale_and_the_account_flows_follow_accept_language(app, mail, twilio, api_key):
    phone = uk_phone()
    assert send(app, api_key, "sms", phone, locale="de").status_code == 202
    body = twilio.wait_for(phone)[0]["form"]["Body"]
    SECRETS_SEEN.append(body.split(" ")[0])
    assert "Minuten" in body, body
    email = unique_email("accept-language")
    r = app.register(email, "correct horse battery", headers={"accept-language": "es-MX,es;q=0.9,en;q=0.5"})
    assert r.status_code == 202
    message = mail.wait_for(email)[0]
    SECRETS_SEEN.append(code_in(message["text"]))
    assert "minutos" in message["text"], message["text"]


def test_templates_override_per_language(mail):
    templates = {"default": {"subject": "{{code}} code", "locales": {"fr": {"subject": "{{code}} : votre code"}}}}
    w = Worker("templates-locales", mail=mail, toml_vars={"TEMPLATES": json.dumps(templates)},
               vars={"RESEND_COOLDOWN_SECONDS": "0"})
    try:
        key = create_key(w, channels=["email"])
        fr, en = unique_email("fr"), unique_email("en")
        assert send(w, key["key"], "email", fr, locale="fr-CA").status_code == 202
        assert send(w, key["key"], "email", en).status_code == 202
        for address, suffix in [(fr, " : votre code"), (en, " code")]:
            message = mail.wait_for(address)[0]
            code = code_in(message["text"])
            SECRETS_SEEN.append(code)
            assert message["json"]["subject"] == code + suffix
    finally:
        w.stop()


# 4. One-tap autofill -----------------------------------------------------------

def test_sms_codes_end_with_the_origin_bound_line(app, twilio):
    key = create_key(app, channels=["sms", "whatsapp"], sms_domain="Shop.Example.com",
                     android_app_hash="FA+9qCX9VSu")
    assert key["sms_domain"] == "shop.example.com" and key["android_app_hash"] == "FA+9qCX9VSu"
    phone = uk_phone()
    assert send(app, key["key"], "sms", phone).status_code == 202
    body = twilio.wait_for(phone)[0]["form"]["Body"]
    code = body.split(" ")[0]
    SECRETS_SEEN.append(code)
    assert body.splitlines()[-2:] == ["FA+9qCX9VSu", f"@shop.example.com #{code}"], body
    # WhatsApp carries no autofill lines.
    other = uk_phone()
    assert send(app, key["key"], "whatsapp", other).status_code == 202
    wa = twilio.wait_for(f"whatsapp:{other}")[0]["form"]["Body"]
    SECRETS_SEEN.append(wa.split(" ")[0])
    assert "@shop.example.com" not in wa and "FA+9qCX9VSu" not in wa


def test_autofill_options_are_checked_when_the_key_is_created(app):
    for extra in [{"sms_domain": "https://shop.example.com"}, {"sms_domain": "localhost"},
                  {"sms_domain": "shop.example.com #1"}, {"android_app_hash": "short"},
                  {"android_app_hash": "FA+9qCX9VS-"}, {"turnstile_required": "yes"}]:
        r = app.call("admin_create_key", {"name": "x", "channels": ["sms"], **extra}, headers=ADMIN)
        problem(r, 400, "invalid_request")


def test_app_code_mail_subjects_start_with_the_code(app, mail, api_key):
    email = unique_email("subject")
    assert send(app, api_key, "email", email).status_code == 202
    message = mail.wait_for(email)[0]
    code = code_in(message["text"])
    SECRETS_SEEN.append(code)
    assert message["json"]["subject"].startswith(f"{code} ")


# 5. Turnstile ------------------------------------------------------------------

def test_account_sends_need_a_turnstile_token_siteverify_accepts(extras, mail, siteverify):
    email = unique_email("turnstile")
    body = {"email": email, "password": "correct horse battery"}
    problem(extras.call("register", body), 403, "turnstile_failed")
    problem(extras.call("register", {**body, "turnstile_token": "forged"}), 403, "turnstile_failed")
    token = siteverify.token()
    r = extras.call("register", {**body, "turnstile_token": token}, ip="203.0.113.7")
    assert r.status_code == 202, r.text
    asked = siteverify.requests[-1]
    assert asked["secret"] == "turnstile-e2e-secret" and asked["response"] == token
    assert asked["remoteip"] == "203.0.113.7" and asked["idempotency_key"]
    # A token works once.
    problem(extras.call("resend", {"email": email, "purpose": "verify_email", "turnstile_token": token}),
            403, "turnstile_failed")
    for route, extra in [("resend", {"purpose": "verify_email"}), ("login_code", {}), ("password_reset", {}),
                         ("login", {"password": "correct horse battery"})]:
        problem(extras.call(route, {"email": email, **extra}), 403, "turnstile_failed")
    # A password sign-in to the unverified account mails a code: it asks too.
    r = extras.call("login", {**body, "turnstile_token": siteverify.token()})
    problem(r, 401, "invalid_credentials")
    mail.expect(email, 2)


def test_siteverify_down_is_503_and_nothing_is_sent(extras, mail, siteverify):
    email = unique_email("siteverify-down")
    siteverify.down = True
    try:
        r = extras.call("login_code", {"email": email, "turnstile_token": siteverify.token()})
        problem(r, 503, "unavailable")
    finally:
        siteverify.down = False
    mail.expect(email, 0)


def test_a_key_marked_turnstile_required_needs_a_token_on_otp_send(extras, app, mail, siteverify):
    key = create_key(extras, channels=["email"], turnstile_required=True)
    assert key["turnstile_required"] is True
    email = unique_email("key-turnstile")
    problem(send(extras, key["key"], "email", email), 403, "turnstile_failed")
    r = extras.call("otp_send", {"channel": "email", "to": email, "purpose": "sign_in",
                                 "turnstile_token": siteverify.token()}, headers=auth(key["key"]), ip="198.51.100.4")
    assert r.status_code == 202, r.text
    # The app's backend called: its address is not the person's.
    assert "remoteip" not in siteverify.requests[-1]
    mail.expect(email, 1)
    SECRETS_SEEN.append(mail.code(email))
    # Where Turnstile is not set up, such a key fails closed, naming the secret.
    strict = create_key(app, channels=["email"], turnstile_required=True)
    body = problem(send(app, strict["key"], "email", unique_email()), 503, "unavailable")
    assert "TURNSTILE_SECRET" in body["detail"]


def test_the_sign_up_page_asks_turnstile_too(extras, siteverify):
    """A page must not be a way around Turnstile; with a site key, the
    pages carry Cloudflare's widget and their policy lets it in."""
    from test_page_defences import Browser
    b = Browser(extras)
    page = b.get("/auth/sign-up")
    assert 'class="cf-turnstile" data-sitekey="0x4AAAAAAAe2e"' in page.text
    assert "https://challenges.cloudflare.com/turnstile/v0/api.js" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' https://challenges.cloudflare.com;" in csp
    assert "frame-src https://challenges.cloudflare.com;" in csp and "unsafe" not in csp
    email = unique_email("page")
    r = b.submit("/auth/sign-up", "sign-up", {"email": email, "password": "correct horse battery"})
    assert r.status_code == 403 and "Turnstile" in r.text, (r.status_code, r.text[-600:])
    r = b.submit("/auth/sign-up", "sign-up", {"email": email, "password": "correct horse battery",
                                               "cf-turnstile-response": siteverify.token()})
    assert r.status_code == 303, r.text[-600:]


def test_pages_without_the_widgets_site_key_say_so(mail, siteverify):
    w = Worker("turnstile-no-site-key", mail=mail, vars={"TURNSTILE_VERIFY_URL": siteverify.url},
               secrets={"TURNSTILE_SECRET": "turnstile-e2e-secret"})
    try:
        from test_page_defences import Browser
        r = Browser(w).submit("/auth/forgot", "forgot", {"email": unique_email("no-widget")})
        assert r.status_code == 503 and "TURNSTILE_SITE_KEY" in r.text, r.status_code
    finally:
        w.stop()


# 6. Delivery status ------------------------------------------------------------

def twilio_signature(url, form):
    payload = url + "".join(k + v for k, v in sorted(form.items()))
    return base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def post_callback(worker, callback, form, signature=None):
    parts = urlsplit(callback)
    return worker.post(f"{parts.path}?{parts.query}", data=form,
                       headers={"x-twilio-signature": signature or twilio_signature(callback, form)})


def test_twilio_reports_delivery_against_the_send(extras, twilio):
    key = create_key(extras, channels=["sms"])
    phone = uk_phone()
    sent = send(extras, key["key"], "sms", phone)
    assert sent.status_code == 202, sent.text
    send_id = sent.json()["id"]
    message = twilio.wait_for(phone)[0]["form"]
    SECRETS_SEEN.append(message["Body"].split(" ")[0])
    callback = message["StatusCallback"]
    assert callback == f"{PUBLIC_BASE_URL}/v1/hooks/twilio/status?send={send_id}"
    extras.after_answer()
    report = extras.otp_status(send_id, token=key["key"]).json()
    assert report["status"] == "pending" and report["attempts_left"] == 5
    assert report["delivery"]["status"] == "sent" and report["channel"] == "sms"

    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "undelivered", "ErrorCode": "30003",
            "AccountSid": "AC00000000000000000000000000e2e", "To": phone}
    problem(post_callback(extras, callback, form, signature="bm9wZQ=="), 403, "invalid_signature")
    forged = dict(form, MessageStatus="delivered")
    problem(post_callback(extras, callback, forged, signature=twilio_signature(callback, form)), 403,
            "invalid_signature")
    assert post_callback(extras, callback, {**form, "MessageStatus": "sent"}).status_code == 204
    assert post_callback(extras, callback, form).status_code == 204
    extras.after_answer()
    report = extras.otp_status(send_id, token=key["key"]).json()
    assert report["delivery"] == {"status": "undelivered", "error_code": "30003", "at": report["delivery"]["at"]}
    trail = [e for e in events(extras, kind="code_delivery") if e.get("send_id") == send_id]
    assert [(e["outcome"], e.get("detail")) for e in trail] == [("undelivered", "30003")]
    # Another key cannot read it; a wrong one is refused.
    other = create_key(extras, channels=["sms"])
    problem(extras.otp_status(send_id, token=other["key"]), 404, "not_found")
    problem(extras.otp_status(send_id, token="otpk_" + "x" * 43), 401, "unauthorized")


def test_without_public_base_url_no_callback_is_asked_for(app, twilio, api_key):
    phone = uk_phone()
    assert send(app, api_key, "sms", phone).status_code == 202
    form = twilio.wait_for(phone)[0]["form"]
    SECRETS_SEEN.append(form["Body"].split(" ")[0])
    assert "StatusCallback" not in form


def test_resend_webhooks_are_svix_signed(extras, mail):
    key = create_key(extras, channels=["email"])
    email = unique_email("webhook")
    sent = send(extras, key["key"], "email", email)
    assert sent.status_code == 202
    send_id = sent.json()["id"]
    captured = mail.wait_for(email)[0]
    SECRETS_SEEN.append(code_in(captured["text"]))
    assert {"name": "otp_send", "value": f"code-{send_id}"} in captured["json"]["tags"]
    event = {"type": "email.delivered", "created_at": "2026-11-26T12:00:00.000Z",
             "data": {"email_id": str(uuid.uuid4()), "to": [email], "tags": {"otp_send": f"code-{send_id}"}}}
    body = json.dumps(event).encode()
    msg_id, now = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    secret = base64.b64decode(WHSEC[len("whsec_"):])
    sig = base64.b64encode(hmac.new(secret, f"{msg_id}.{now}.".encode() + body, hashlib.sha256).digest()).decode()
    headers = {"svix-id": msg_id, "svix-timestamp": now, "content-type": "application/json"}
    bad = extras.post("/v1/hooks/resend", data=body, headers={**headers, "svix-signature": "v1,bm9wZQ=="})
    problem(bad, 403, "invalid_signature")
    old = str(int(time.time()) - 600)
    stale = base64.b64encode(hmac.new(secret, f"{msg_id}.{old}.".encode() + body, hashlib.sha256).digest()).decode()
    problem(extras.post("/v1/hooks/resend", data=body,
                        headers={**headers, "svix-timestamp": old, "svix-signature": f"v1,{stale}"}),
            403, "invalid_signature")
    ok = extras.post("/v1/hooks/resend", data=body, headers={**headers, "svix-signature": f"v1,{sig}"})
    assert ok.status_code == 204, ok.text
    extras.after_answer()
    report = extras.otp_status(send_id, token=key["key"]).json()
    assert report["delivery"]["status"] == "delivered" and report["channel"] == "email"


def test_the_resend_webhook_is_off_without_its_secret(app):
    r = app.post("/v1/hooks/resend", data=b"{}", headers={"content-type": "application/json"})
    body = problem(r, 503, "unavailable")
    assert "RESEND_WEBHOOK_SECRET" in body["detail"]


# 7. Channel fallback -----------------------------------------------------------

def test_a_whatsapp_refusal_falls_back_to_sms(app, twilio):
    key = create_key(app, channels=["whatsapp", "sms"])
    phone = uk_phone()
    twilio.set(f"whatsapp:{phone}", status=400, body={"code": 63016, "message": "outside the window"})
    r = send(app, key["key"], "whatsapp", phone, fallback=["sms"])
    assert r.status_code == 202 and r.json()["channel"] == "sms", r.text
    twilio.expect(f"whatsapp:{phone}", 1)
    twilio.expect(phone, 1)
    code = twilio.wait_for(phone)[0]["form"]["Body"].split(" ")[0]
    # Verified under the channel the app asked for.
    assert verify(app, key["key"], "whatsapp", phone, code).status_code == 200
    app.after_answer()
    trail = [(e["channel"], e["outcome"]) for e in events(app, kind="code_sent") if e.get("send_id") == r.json()["id"]]
    assert sorted(trail) == [("sms", "sent"), ("whatsapp", "whatsapp_delivery_failed")]


def test_without_fallback_a_whatsapp_refusal_is_the_answer(app, twilio):
    key = create_key(app, channels=["whatsapp", "sms"])
    phone = uk_phone()
    twilio.set(f"whatsapp:{phone}", status=400, body={"code": 63016})
    problem(send(app, key["key"], "whatsapp", phone), 502, "whatsapp_delivery_failed")
    twilio.expect(phone, 0)


def test_fallback_is_checked_on_input(app):
    whatsapp_only = create_key(app, channels=["whatsapp"])
    problem(send(app, whatsapp_only["key"], "whatsapp", uk_phone(), fallback=["sms"]), 403, "channel_not_allowed")
    both = create_key(app, channels=["whatsapp", "sms", "email"])
    for channel, to, fallback in [("sms", uk_phone(), ["sms"]), ("whatsapp", uk_phone(), ["email"]),
                                  ("whatsapp", uk_phone(), "sms"), ("email", unique_email(), ["sms"])]:
        problem(send(app, both["key"], channel, to, fallback=fallback), 400, "invalid_request")
