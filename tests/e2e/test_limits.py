"""Send limits per address and purpose, the hourly caps, and the per-client
cap of the Rate Limiting binding, on a worker with the production cooldown
(60 s)."""

import re

import pytest
import requests

from conftest import create_key
from harness import ROOT, Worker, problem, unique_email


@pytest.fixture(scope="module")
def limited(mail):
    w = Worker("limits", mail=mail, vars={"MAX_SENDS_PER_HOUR": "3"}, limits={"IP_LIMITER": (5, 60)})
    yield w
    w.stop()


_ip = iter(range(1, 250))


def ip():
    """Each test speaks from its own address, so the IP cap stays out of its way."""
    return f"198.51.100.{next(_ip)}"


def test_resend_within_the_cooldown_is_429_with_retry_after_known_or_not(limited, mail):
    known, unknown, addr = unique_email("cool"), unique_email("ghost"), ip()
    limited.register(known, "correct horse", ip=addr)
    mail.wait_for(known)
    answers = []
    for email in (known, unknown):
        if email == unknown:
            assert limited.resend(email, "verify_email", ip=addr).status_code == 202
        limited.after_answer()  # the cooldown starts just after the answer
        r = limited.resend(email, "verify_email", ip=addr)
        body = problem(r, 429, "rate_limited")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # The seconds left count from each address's own send.
        answers.append((r.status_code, {**body, "detail": re.sub(r"\d+", "N", body["detail"])}))
    assert answers[0] == answers[1]
    mail.expect(known, 1)


def test_register_and_reset_in_the_cooldown_answer_normally_and_send_nothing(limited, mail):
    email, addr = unique_email("quiet"), ip()
    limited.register(email, "correct horse", ip=addr)
    code = mail.code(email)
    limited.after_answer()
    assert limited.register(email, "correct horse", ip=addr).status_code == 202
    assert len(mail.to(email)) == 1
    # The pending code stayed valid.
    assert limited.verify_email(email, code, ip=addr).status_code == 200
    assert limited.password_reset(email, ip=addr).status_code == 202
    mail.wait_for(email, 2)
    limited.after_answer()
    assert limited.password_reset(email, ip=ip()).status_code == 202
    mail.expect(email, 2)


def test_hourly_cap_per_address(uncooled, mail):
    email = unique_email("hourly")
    uncooled.register(email, "correct horse")
    for _ in range(2):
        assert uncooled.resend(email, "verify_email").status_code == 202
    r = uncooled.resend(email, "verify_email")
    problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) <= 3600
    # The cap covers every purpose of the address.
    problem(uncooled.resend(email, "reset_password"), 429, "rate_limited")
    mail.expect(email, 3)


def test_the_per_client_cap_counts_every_method(limited):
    addr = ip()
    headers = {"cf-connecting-ip": addr}
    bad_admin = {**headers, "authorization": "Bearer not-the-admin-token"}
    assert limited.password_reset(unique_email(), ip=addr).status_code == 202
    assert limited.healthz(headers=headers).status_code == 200
    problem(limited.me(headers={**headers, "authorization": "Bearer nope"}), 401, "unauthorized")
    problem(limited.admin_stats(headers=bad_admin), 401, "unauthorized")
    problem(limited.admin_revoke_key('0' * 32, headers=bad_admin), 401, "unauthorized")
    for r in (limited.admin_stats(headers=bad_admin), limited.call("login", {}, ip=addr),
              limited.healthz(headers=headers)):
        # Counted before the token is checked or the body read.
        problem(r, 429, "rate_limited")
        assert r.headers["retry-after"] == "60"
    # Other clients are unaffected, and the contract costs nothing.
    assert limited.password_reset(unique_email(), ip=ip()).status_code == 202
    assert limited.openapi(headers=headers).status_code == 200


def test_preflights_wrong_methods_and_unknown_paths_count_too(limited):
    """Every request counts against the cap, whatever its answer: a CORS
    preflight, a method the path does not take, a path that does not exist."""
    addr = ip()
    headers = {"cf-connecting-ip": addr}
    answers = [
        requests.options(limited.url + "/v1/login", headers={**headers, "access-control-request-method": "POST"}),
        requests.get(limited.url + "/v1/login", headers=headers),
        requests.put(limited.url + "/v1/me", headers=headers),
        requests.get(limited.url + "/v1/no-such-route", headers=headers),
        requests.delete(limited.url + "/v1/register", headers=headers),
    ]
    assert [r.status_code for r in answers] == [204, 405, 405, 404, 405], [r.text for r in answers]
    for r in (requests.get(limited.url + "/v1/no-such-route", headers=headers),
              requests.options(limited.url + "/v1/login", headers=headers),
              limited.password_reset(unique_email(), ip=addr)):
        problem(r, 429, "rate_limited")


def test_service_binding_callers_are_counted_by_their_own_name(mail):
    """A Worker of the account calls through a service binding: its
    requests come without CF-Connecting-IP (Cloudflare sets it on every
    request from the internet). Each caller that names itself in
    X-OTP-Client gets a bucket of its own; the unnamed share one."""
    service = Worker("bound", mail=mail, limits={"IP_LIMITER": (3, 60)})
    caller = Worker("caller", d1=False, kv=False, schema=False, limits={"IP_LIMITER": None, "API_LIMITER": None},
                    main=ROOT / "tests" / "e2e" / "workers" / "caller.mjs", services={"OTP": service})
    try:
        def reset(name=None):
            query = f"?as={name}" if name else ""
            return requests.post(caller.url + "/v1/password-reset" + query, json={"email": unique_email()},
                                 timeout=30)
        for _ in range(3):
            assert reset("billing").status_code == 202
        problem(reset("billing"), 429, "rate_limited")
        assert reset("shop").status_code == 202, "another binding has a bucket of its own"
        answers = [reset().status_code for _ in range(4)]
        assert 429 in answers and answers[0] == 202, answers  # the unnamed share one
        assert reset("shop").status_code == 202
    finally:
        caller.stop()
        service.stop()


def test_an_ipv6_client_is_capped_by_its_slash_64(limited):
    for host in range(1, 6):
        r = limited.password_reset(unique_email(), ip=f"2001:db8:abcd:12::{host:x}")
        assert r.status_code == 202
    problem(limited.password_reset(unique_email(), ip="2001:db8:abcd:12:ffff::1"),
            429, "rate_limited")
    assert limited.password_reset(unique_email(), ip="2001:db8:abcd:13::1").status_code == 202


def test_aliases_of_one_mailbox_share_its_cooldown(limited, mail):
    tag = unique_email("alias").split("@")[0].replace("-", "")
    addr = ip()
    assert limited.resend(f"{tag}+1@gmail.com", "reset_password", ip=addr).status_code == 202
    limited.after_answer()
    for alias in (f"{tag}+2@gmail.com", f"{tag[:3]}.{tag[3:]}@googlemail.com"):
        r = limited.resend(alias, "reset_password", ip=addr)
        problem(r, 429, "rate_limited")


def test_the_core_flows_cannot_use_up_an_apps_sends(uncooled, mail):
    victim = unique_email("lockout")
    # Anyone can ask for resets of any address: they use the core's share...
    for _ in range(4):
        assert uncooled.password_reset(victim).status_code == 202
    problem(uncooled.resend(victim, "reset_password"), 429, "rate_limited")
    # ...and leave the apps theirs.
    key = create_key(uncooled, channels=["email"])["key"]
    r = uncooled.otp_send("email", victim, "login", headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 202, r.text
    assert len(mail.wait_for(victim)) == 1
