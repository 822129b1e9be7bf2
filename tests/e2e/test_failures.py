"""Misconfiguration: missing secrets, bindings or schema, and invalid
settings, which must fail closed with 503 and a clear detail."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import create_key, unique_phone
from harness import ADMIN_TOKEN, Worker, problem, unique_email

MISCONFIGURED = {
    "nosecrets": dict(secrets={"OTP_PEPPER": None, "ADMIN_TOKEN": None, "MAIL_API_KEY": None}),
    "shortpepper": dict(secrets={"OTP_PEPPER": "too-short"}),
    "nomailkey": dict(secrets={"MAIL_API_KEY": None}),
    "logprod": dict(vars={"ENVIRONMENT": "production", "MAIL_PROVIDER": "log"}),
    "badvar": dict(vars={"OTP_MAX_ATTEMPTS": "lots"}),
    "noschema": dict(schema=False),
    # Another app's tables in the same database: right names, wrong columns.
    "wrongschema": dict(schema="CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
                               "CREATE TABLE codes (id INTEGER PRIMARY KEY);"),
    "nodb": dict(d1=False, schema=False),
    "nokv": dict(kv=False),
    "nobinding": dict(vars={"MAIL_PROVIDER": "cloudflare"}),
    "notwiliotoken": dict(vars={"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_FROM": "+15005550006"}),
    "badtemplates": dict(toml_vars={"TEMPLATES": '{"login": {"text": "no code here"}}'}),
    "shortadmin": dict(secrets={"ADMIN_TOKEN": "only-twenty-chars-xx"}),
    "placeholder": dict(vars={"ENVIRONMENT": "production"},
                        secrets={"OTP_PEPPER": "replace-with-output-of-openssl-rand-hex-32"}),
    "weakcodes": dict(vars={"OTP_LENGTH": "4", "OTP_MAX_ATTEMPTS": "100"}),
    "nolimiter": dict(limits={"IP_LIMITER": None}),
}


@pytest.fixture(scope="module")
def broken(mail):
    with ThreadPoolExecutor(4) as pool:
        workers = dict(zip(MISCONFIGURED, pool.map(lambda kv: Worker(kv[0], mail=mail, **kv[1]), MISCONFIGURED.items())))
    yield workers
    for w in workers.values():
        w.stop()


def register(w, email=None):
    return w.register(email or unique_email("cfg"), "correct horse")


def unavailable(r, mentions):
    body = problem(r, 503, "unavailable")
    assert mentions in body["detail"], body
    return body


def test_missing_pepper_fails_closed(broken):
    w = broken["nosecrets"]
    for route, body in [("register", {"email": unique_email(), "password": "correct horse"}),
                       ("verify_email", {"email": unique_email(), "code": "123456"}),
                       ("login", {"email": unique_email(), "password": "correct horse"}),
                       ("password_reset", {"email": unique_email()})]:
        unavailable(w.call(route, body), "OTP_PEPPER")
    unavailable(register(broken["shortpepper"]), "OTP_PEPPER")


def test_missing_admin_token_fails_closed(broken):
    unavailable(broken["nosecrets"].admin_stats(token=ADMIN_TOKEN), "ADMIN_TOKEN")


def test_a_short_admin_token_fails_closed(broken):
    w = broken["shortadmin"]
    body = unavailable(w.admin_stats(token="only-twenty-chars-xx"), "ADMIN_TOKEN")
    assert "32" in body["detail"] and "only-twenty" not in body["detail"]
    unavailable(w.admin_list_keys(token="only-twenty-chars-xx"), "ADMIN_TOKEN")


def test_unsafe_settings_are_refused(broken):
    body = unavailable(register(broken["placeholder"]), "OTP_PEPPER")
    assert "placeholder" in body["detail"]
    unavailable(register(broken["weakcodes"]), "OTP_MAX_ATTEMPTS")


def test_a_missing_rate_limiter_fails_closed(broken):
    unavailable(register(broken["nolimiter"]), "`IP_LIMITER`")
    unavailable(broken["nolimiter"].healthz(), "`IP_LIMITER`")


def test_missing_mail_key_fails_closed_before_writing_anything(broken):
    w = broken["nomailkey"]
    email = unique_email("nokey")
    unavailable(register(w, email), "MAIL_API_KEY")
    unavailable(w.password_reset(email), "MAIL_API_KEY")
    with w.db() as db:
        assert db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM codes").fetchone()[0] == 0


def test_log_mailer_is_refused_in_production(broken):
    unavailable(register(broken["logprod"]), "production")


def test_invalid_var_is_refused_not_defaulted(broken):
    unavailable(register(broken["badvar"]), "OTP_MAX_ATTEMPTS")


def test_missing_schema_is_503(broken):
    w = broken["noschema"]
    unavailable(w.healthz(), "migrations apply")
    unavailable(register(w), "migrations apply")


def test_wrong_schema_is_503_naming_what_is_missing(broken):
    w = broken["wrongschema"]
    body = unavailable(w.healthz(), "migrations apply")
    assert "sessions" in body["detail"] and "auth_events" in body["detail"]
    unavailable(register(w), "migrations apply")
    unavailable(w.login(unique_email(), "correct horse"), "migrations apply")


def test_missing_bindings_are_503(broken):
    unavailable(broken["nodb"].healthz(), "`DB`")
    unavailable(register(broken["nodb"]), "`DB`")
    unavailable(register(broken["nokv"]), "`RATE_LIMIT`")


def test_problem_bodies_hold_only_the_documented_members(broken):
    for name, w in broken.items():
        if name in ("notwiliotoken", "shortadmin"):
            continue  # their mail works: only SMS and WhatsApp, or the admin routes, are broken
        body = register(w).json()
        assert set(body) == {"type", "title", "status", "detail", "code"}
        assert "D1_ERROR" not in body["detail"] and "no such table" not in body["detail"]


def test_missing_send_email_binding_fails_closed(broken):
    unavailable(register(broken["nobinding"]), "send_email binding named `EMAIL`")


def test_invalid_templates_are_refused(broken):
    body = unavailable(register(broken["badtemplates"]), "TEMPLATES")
    assert "login.text: must contain {{code}}" in body["detail"]


def test_missing_twilio_settings_fail_closed_before_writing_anything(broken):
    w = broken["nomailkey"]
    key = {"authorization": f"Bearer {create_key(w)['key']}"}
    send = {"to": unique_phone(), "purpose": "login"}
    unavailable(w.call("otp_send", {"channel": "sms", **send}, headers=key), "TWILIO_ACCOUNT_SID")
    unavailable(w.call("otp_send", {"channel": "email", **send, "to": unique_email()}, headers=key), "MAIL_API_KEY")
    w = broken["notwiliotoken"]
    key = {"authorization": f"Bearer {create_key(w)['key']}"}
    unavailable(w.call("otp_send", {"channel": "sms", **send}, headers=key), "TWILIO_AUTH_TOKEN")
    unavailable(w.call("otp_send", {"channel": "whatsapp", **send}, headers=key), "TWILIO_AUTH_TOKEN")
    for w in (broken["nomailkey"], broken["notwiliotoken"]):
        with w.db() as db:
            assert db.execute("SELECT COUNT(*) FROM codes WHERE scope LIKE 'key:%'").fetchone()[0] == 0
