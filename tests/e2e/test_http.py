"""What every answer carries: the request id (echoed and logged as one JSON
line per request), security headers, CORS for listed origins only, and the
contract at /openapi.json."""

import json
import re
import socket
import threading
import time
import uuid

import pytest
import requests
import yaml

from harness import ROOT, Worker, problem, unique_email

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def answers(w):
    """One answer of each kind: JSON, problem, empty, unmatched, preflight."""
    email = unique_email("headers")
    return {
        "200": w.healthz(),
        "202": w.password_reset(email),
        "400": w.call("register", {"email": "nope"}),
        "401": w.me(),
        "404": w.get("/nowhere"),
        "405": w.get("/v1/register"),
        "415": requests.post(w.url + "/v1/login", data="x"),
        "options": requests.options(w.url + "/v1/login"),
    }


def test_every_answer_carries_the_security_headers_and_a_request_id(app):
    ids = set()
    for kind, r in answers(app).items():
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (kind, name, r.headers)
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], kind
        assert re.fullmatch(r"[0-9a-f]{24}", r.headers["x-request-id"]), (kind, r.headers)
        ids.add(r.headers["x-request-id"])
        assert "access-control-allow-origin" not in r.headers, kind
    assert len(ids) == 8


def request_lines(w, request_id, timeout=5):
    """The log lines of one request; wrangler writes them a moment after the answer."""
    deadline = time.time() + timeout
    while True:
        lines = [json.loads(line) for line in w.logs().splitlines()
                 if line.startswith("{") and f'"request_id":"{request_id}"' in line]
        if lines or time.time() > deadline:
            return lines
        time.sleep(0.05)


def test_each_request_is_one_json_log_line_with_its_id(app):
    ray = f"{uuid.uuid4().hex[:16]}-AMS"
    r = app.login(unique_email(), "whatever pw", headers={"cf-ray": ray})
    assert r.headers["x-request-id"] == ray
    mine = request_lines(app, ray)
    assert len(mine) == 1
    assert set(mine[0]) == {"event", "request_id", "route", "method", "status", "duration_ms"}
    assert mine[0]["event"] == "request" and mine[0]["route"] == "login"
    assert mine[0]["status"] == 401 and mine[0]["method"] == "POST"
    odd = app.me(headers={"cf-ray": 'x" "forged": 1'})
    assert re.fullmatch(r"[0-9a-f]{24}", odd.headers["x-request-id"])
    assert len(request_lines(app, odd.headers["x-request-id"])) == 1
    assert "forged" not in app.logs()


def test_cors_is_off_by_default(app):
    r = requests.options(app.url + "/v1/login", headers={
        "origin": "https://app.example.com", "access-control-request-method": "POST"})
    problem(r, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers
    r = app.password_reset(unique_email(), headers={"origin": "https://app.example.com"})
    assert r.status_code == 202 and "access-control-allow-origin" not in r.headers


CORS_SETTINGS = {"cors": "https://app.example.com,http://localhost:5173", "miscors": "https://*.example.com"}


@pytest.fixture(scope="module")
def cors_workers(mail):
    workers = {name: Worker(name, mail=mail, vars={"CORS_ALLOWED_ORIGINS": origins})
               for name, origins in CORS_SETTINGS.items()}
    yield workers
    for w in workers.values():
        w.stop()


def test_listed_origins_get_preflight_and_readable_answers(cors_workers):
    browser = cors_workers["cors"]
    r = requests.options(browser.url + "/v1/login", headers={
        "origin": "http://localhost:5173", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert r.headers["access-control-allow-methods"] == "POST"
    assert "content-type" in r.headers["access-control-allow-headers"]
    assert "authorization" in r.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in r.headers
    assert r.headers["vary"].lower() == "origin"
    r = browser.password_reset(unique_email(), headers={"origin": "https://app.example.com"})
    assert r.status_code == 202
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "x-request-id" in r.headers["access-control-expose-headers"]
    for other in ("https://evil.example.com", "https://app.example.com.evil.com", "null"):
        r = requests.options(browser.url + "/v1/login", headers={
            "origin": other, "access-control-request-method": "POST"})
        problem(r, 403, "origin_not_allowed")
        r = browser.healthz(headers={"origin": other})
        assert "access-control-allow-origin" not in r.headers
    problem(requests.options(browser.url + "/v1/nowhere", headers={"origin": "https://app.example.com"}),
            404, "not_found")


def test_a_malformed_origin_list_fails_closed_but_health_and_contract_answer(cors_workers):
    w = cors_workers["miscors"]
    body = problem(w.password_reset(unique_email()), 503, "unavailable")
    assert "CORS_ALLOWED_ORIGINS" in body["detail"]
    r = requests.options(w.url + "/v1/login", headers={"origin": "https://app.example.com",
                                                       "access-control-request-method": "POST"})
    assert "CORS_ALLOWED_ORIGINS" in problem(r, 503, "unavailable")["detail"]
    # The health check and the contract answer, without CORS.
    for r in (w.healthz(headers={"origin": "https://app.example.com"}), w.openapi()):
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_every_documented_path_answers_every_other_method_with_405(app):
    """`GET /v1/otp/send` is no send id: every path of the contract answers
    a method it does not take with 405 and an Allow of its own methods."""
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    for path, item in spec["paths"].items():
        own = sorted(m.upper() for m in item)
        url = app.url + path.replace("{id}", "0123456789abcdef0123456789abcdef")
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            if method in own:
                continue
            r = requests.request(method, url, timeout=30)
            problem(r, 405, "method_not_allowed")
            assert sorted(r.headers["allow"].split(", ")) == own, (method, path, r.headers["allow"])


def test_a_code_lifetime_under_a_minute_is_refused_at_load(mail):
    """App codes live a minute at least, and OTP_TTL_SECONDS is their default."""
    w = Worker("short-ttl", mail=mail, vars={"OTP_TTL_SECONDS": "59"})
    try:
        body = problem(w.password_reset(unique_email()), 503, "unavailable")
        assert "OTP_TTL_SECONDS" in body["detail"] and "60" in body["detail"]
        assert w.healthz().status_code == 200
    finally:
        w.stop()


def test_the_contract_is_served_as_json(app):
    r = app.openapi()
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert r.json()["openapi"].startswith("3.1")


@pytest.fixture
def bodies(mail):
    """A worker for this test alone: under `wrangler dev`, an answer given
    before the body was read leaves a broken connection in the dev proxy's
    pool, and what comes next through it gets the proxy's own error
    ("worker restarted mid-request"). Cloudflare's edge has no such proxy."""
    w = Worker("bodies", mail=mail)
    yield w
    w.stop()


def test_a_1_mib_chunked_body_is_refused_at_16_kib_without_waiting_for_the_rest(bodies):
    """No Content-Length: 32 KiB, a 10 s pause, then the rest of 1 MiB. The
    worker must stop reading at the limit and answer at once, never hold
    the whole body (or wait for an endless one)."""
    with socket.create_connection(("127.0.0.1", bodies.port), timeout=20) as s:
        s.sendall(b"POST /v1/register HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n"
                  b"transfer-encoding: chunked\r\n\r\n")

        def send():
            chunk = b"%x\r\n%s\r\n" % (4096, b" " * 4096)
            try:
                s.sendall(chunk * 8)
                time.sleep(10)
                s.sendall(chunk * 248 + b"0\r\n\r\n")
            except OSError:
                pass  # the worker answered and closed: the point of the test

        threading.Thread(target=send, daemon=True).start()
        started, answer = time.perf_counter(), b""
        while b"payload_too_large" not in answer:
            got = s.recv(65536)
            if not got:
                break
            answer += got
        elapsed = time.perf_counter() - started
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer
    assert elapsed < 5, f"the answer waited for the body: {elapsed:.1f} s"
