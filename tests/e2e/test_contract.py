"""The HTTP contract's edges: routing, media types, sizes, validation, headers."""

import requests

from harness import API_KEYS_PATH, ROUTES, problem, unique_email


def test_healthz_reports_ok_when_d1_and_schema_are_there(app):
    r = app.healthz()
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_unknown_route_is_a_problem_404(app):
    problem(app.get("/v1/nope"), 404, "not_found")
    problem(app.post("/v1/register/extra", {}), 404, "not_found")


def test_wrong_method_is_405_with_allow(app):
    r = app.get("/v1/register")
    problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"
    r = requests.delete(app.url + "/v1/me")
    problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET"


def test_body_must_be_json(app):
    r = requests.post(app.url + "/v1/register", data="email=a@b.co", headers={"content-type": "application/x-www-form-urlencoded"})
    problem(r, 415, "unsupported_media_type")
    r = requests.post(app.url + "/v1/login", data='{"email":"a@b.co"}')
    problem(r, 415, "unsupported_media_type")
    ok = requests.post(app.url + "/v1/password-reset", data='{"email":"a@example.com"}',
                       headers={"content-type": "application/json; charset=utf-8"})
    assert ok.status_code == 202


def test_body_over_16_kib_is_413(app):
    big = {"email": unique_email(), "password": "x" * (16 * 1024)}
    problem(app.call("register", big), 413, "payload_too_large")
    # A body without a declared length is measured too: see
    # test_http.py::test_a_1_mib_chunked_body_is_refused_at_16_kib_without_waiting_for_the_rest,
    # on a worker of its own (an early answer upsets the dev proxy).


def test_malformed_json_and_wrong_shapes_are_invalid_request(app):
    r = requests.post(app.url + "/v1/register", data="{not json", headers={"content-type": "application/json"})
    problem(r, 400, "invalid_request")
    problem(app.call("register", ["a@example.com"]), 400, "invalid_request")


def test_the_typed_client_knows_every_route_the_contract_lists(app):
    spec = app.openapi().json()
    listed = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    known = {*ROUTES.values(), ("DELETE", API_KEYS_PATH + "/{id}")}
    assert listed == known


def test_credentials_are_checked_before_the_body_is_read(app, api_key):
    """Without the admin token or a valid API key, nothing about the body
    matters: no media type, size or field error tells a caller anything.
    A bearer shaped like a key is looked up together with the flow's first
    work, so its body is read, but a body error is told only to a valid key."""
    junk = "x" * 20_000  # past the size limit, and not JSON
    forged = "otpk_" + "A" * 43  # shaped like a key, and no key
    for auth in ({}, {"authorization": "Bearer otpk_guess"}, {"authorization": f"Bearer {forged}"}):
        headers = {"content-type": "text/plain", **auth}
        problem(app.call("admin_create_key", data=junk, headers=headers), 401, "unauthorized")
        for route in ("otp_send", "otp_verify"):
            problem(app.call(route, data=junk, headers=headers), 401, "unauthorized")
    for route, body in (("otp_send", {"channel": "email"}), ("otp_verify", {"to": "x"})):
        problem(app.call(route, body, headers={"authorization": f"Bearer {forged}"}), 401, "unauthorized")
        problem(app.call(route, body, headers={"authorization": f"Bearer {api_key}"}), 400, "invalid_request")
    r = app.call("otp_send", data=junk, headers={"content-type": "text/plain", "authorization": f"Bearer {api_key}"})
    assert r.status_code in (413, 415), r.text


def test_detail_names_the_bad_field(app):
    cases = [
        ("register", {"password": "correct horse"}, "email"),
        ("register", {"email": "not-an-email", "password": "correct horse"}, "email"),
        ("register", {"email": "ann\u200b@example.com", "password": "correct horse"}, "email"),
        ("register", {"email": unique_email(), "password": "short"}, "password"),
        ("register", {"email": unique_email(), "password": "x" * 257}, "password"),
        ("register", {"email": unique_email(), "password": 12345678}, "password"),
        ("verify_email", {"email": unique_email(), "code": "12ab56"}, "code"),
        ("verify_email", {"email": unique_email()}, "code"),
        ("resend", {"email": unique_email(), "purpose": "login"}, "purpose"),
        ("password_reset_confirm", {"email": unique_email(), "code": "123456", "new_password": "short"}, "new_password"),
    ]
    for route, body, field in cases:
        detail = problem(app.call(route, body), 400, "invalid_request")["detail"]
        assert f"`{field}`" in detail, (route, body, detail)


def test_me_and_logout_need_a_valid_bearer(app):
    problem(app.me(), 401, "unauthorized")
    problem(app.me(token="not-a-real-token"), 401, "unauthorized")
    problem(app.me(headers={"authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")
    problem(app.logout(headers={"authorization": "Bearer nope"}), 401, "unauthorized")


def test_admin_stats_needs_the_admin_token(app, verified_user):
    from harness import ADMIN_TOKEN

    problem(app.admin_stats(), 401, "unauthorized")
    problem(app.admin_stats(token="wrong"), 401, "unauthorized")
    problem(app.admin_stats(token=ADMIN_TOKEN + "x"), 401, "unauthorized")
    r = app.admin_stats(token=ADMIN_TOKEN)
    assert r.status_code == 200
    s = r.json()
    assert set(s) == {"active_codes", "expired_codes", "by_purpose", "users", "active_sessions", "app_codes", "api_keys",
                      "test_codes", "sends_24h", "sign_ins_24h"}
    assert set(s["users"]) == {"total", "verified", "with_totp"}
    assert set(s["sends_24h"]) == {"sent", "test", "refused"}
    assert set(s["by_purpose"]) == {"verify_email", "reset_password", "login"}
    assert s["users"]["total"] >= s["users"]["verified"] >= 1
