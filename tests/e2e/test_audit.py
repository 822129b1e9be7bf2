"""The audit trail in D1: every security event, with a keyed hash in place
of the address, paged by `GET /v1/admin/events`, and trimmed by the cron."""

import re
import time

import pytest

from conftest import create_key, login, unique_phone
from harness import ADMIN_TOKEN, ROOT, Worker, problem, unique_email

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def events(w, **query):
    r = w.admin_events(params=query, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def events_of(w, address, count, timeout=5):
    """The newest events of `address`, oldest first, once `count` are stored
    (they are written just after the answer)."""
    deadline = time.time() + timeout
    while True:
        got = events(w, address=address)["events"]
        if len(got) >= count or time.time() > deadline:
            return list(reversed(got))
        time.sleep(0.1)


def test_an_account_life_is_recorded_event_by_event(app, mail, secrets_seen):
    email, password = unique_email("audited"), "correct horse battery"
    ip = "198.51.100.23"
    app.register(email, password, ip=ip)
    code = mail.code(email)
    secrets_seen.append(code)
    wrong = "000000" if code != "000000" else "111111"
    app.verify_email(email, wrong, ip=ip)
    assert app.verify_email(email, code, ip=ip).status_code == 200
    app.login(email, "wrong password", ip=ip)
    token = login(app, email, password, secrets_seen)
    assert app.logout(headers={"authorization": f"Bearer {token}"}).status_code == 204
    assert app.password_reset(email, ip=ip).status_code == 202
    reset = mail.code(email, index=1)
    secrets_seen.append(reset)
    r = app.password_reset_confirm(email, reset, "a new passphrase", ip=ip)
    assert r.status_code == 200
    got = events_of(app, email, 9)
    assert [(e["event"], e["outcome"]) for e in got] == [
        ("code_sent", "sent"),
        ("code_failed", "invalid_code"),
        ("code_verified", "ok"),
        ("login_failed", "invalid_credentials"),
        ("login_ok", "ok"),
        ("logout", "ok"),
        ("code_sent", "queued"),
        ("code_verified", "ok"),
        ("password_reset", "ok"),
    ]
    first = got[0]
    assert first["purpose"] == "verify_email" and first["channel"] == "email" and first["scope"] == "core"
    assert first["ip"] == ip and got[3]["ip"] == ip
    assert len({e["address_hash"] for e in got}) == 1
    assert all(e["id"] > 0 and e["at"].endswith("Z") for e in got)


def test_burned_codes_and_app_codes_are_recorded(app, twilio, api_key):
    phone = unique_phone()
    auth = {"authorization": f"Bearer {api_key}"}
    body = {"channel": "sms", "to": phone, "purpose": "pay"}
    assert app.call("otp_send", body, headers=auth).status_code == 202
    for _ in range(5):
        app.call("otp_verify", {**body, "code": "0000"}, headers=auth)
    got = events_of(app, phone, 6)
    assert [(e["event"], e["outcome"]) for e in got] == [("code_sent", "sent")] + [("code_failed", "invalid_code")] * 4 + [("code_burned", "too_many_attempts")]
    assert got[0]["channel"] == "sms" and got[0]["purpose"] == "pay" and got[0]["scope"].startswith("key:")


def test_api_keys_created_and_revoked_are_recorded(app):
    key = create_key(app, name="audited key")
    assert app.admin_revoke_key(key['id'], headers=ADMIN).status_code == 204
    deadline = time.time() + 5
    while time.time() < deadline:
        mine = [e for e in events(app, limit=500)["events"] if e["scope"] == f"key:{key['id']}"]
        if len(mine) == 2:
            break
        time.sleep(0.1)
    assert [(e["event"], e["outcome"]) for e in reversed(mine)] == [("api_key_created", "ok"), ("api_key_revoked", "ok")]


def test_the_table_holds_no_address_code_or_token(app, mail, verified_user, secrets_seen):
    email, password = verified_user
    login(app, email, password, secrets_seen)
    events_of(app, email, 3)
    with app.db() as db:
        rows = db.execute("SELECT * FROM auth_events").fetchall()
    dump = repr(rows)
    assert rows
    assert email not in dump and email.split("@")[0] not in dump
    assert not [s for s in secrets_seen if s in dump]


def test_pages_walk_back_with_before_and_bad_queries_are_400(app, mail):
    for _ in range(3):
        app.password_reset(unique_email("paged"))
    time.sleep(0.5)
    first = events(app, limit=2)
    assert len(first["events"]) == 2 and first["next_before"] == first["events"][-1]["id"]
    second = events(app, limit=2, before=first["next_before"])
    assert all(e["id"] < first["next_before"] for e in second["events"])
    ids = [e["id"] for e in first["events"] + second["events"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    for bad in ({"limit": 0}, {"limit": 501}, {"limit": "x"}, {"before": -1}, {"address": "not an address"}):
        problem(app.admin_events(params=bad, headers=ADMIN), 400, "invalid_request")
    problem(app.admin_events(), 401, "unauthorized")
    problem(app.admin_events(token="not-the-admin-token"), 401, "unauthorized")


@pytest.fixture(scope="module")
def retention(mail):
    w = Worker("retention", mail=mail, vars={"AUDIT_RETENTION_DAYS": "30"})
    yield w
    w.stop()


def test_the_cron_deletes_events_past_retention(retention, mail):
    w = retention
    email = unique_email("retained")
    assert w.password_reset(email).status_code == 202
    events_of(w, email, 1)
    day = 86_400
    now = int(time.time())
    w.sql(command="INSERT INTO auth_events (at, event, outcome) VALUES "
                  f"({now - 31 * day}, 'logout', 'old'), ({now - 29 * day}, 'logout', 'recent')")
    w.scheduled()
    time.sleep(0.5)
    with w.db() as db:
        outcomes = sorted(r[0] for r in db.execute("SELECT outcome FROM auth_events"))
    assert "old" not in outcomes and "recent" in outcomes and "no_account" in outcomes
    assert w.log_line('"event":"cleanup"', '"audit_events":1')


def test_failed_admin_and_api_key_attempts_are_recorded(app):
    ip = "198.51.100.77"
    problem(app.admin_stats(headers={"authorization": "Bearer wrong", "cf-connecting-ip": ip}),
            401, "unauthorized")
    problem(app.call("otp_send", {}, headers={"authorization": "Bearer otpk_guess"}, ip=ip), 401, "unauthorized")
    deadline = time.time() + 5
    while True:
        mine = [(e["event"], e["outcome"]) for e in events(app, limit=200)["events"] if e["ip"] == ip]
        if len(mine) >= 2 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert sorted(mine) == [("admin_auth_failed", "unauthorized"), ("api_key_auth_failed", "unauthorized")]


def test_each_filter_of_the_trail_has_a_statement_that_uses_its_index(app):
    """The statements the worker runs, read from its source, planned by
    SQLite on the worker's own database: an address filter must walk the
    (address_hash, id) index, not scan the retention window."""
    source = (ROOT / "src" / "edge" / "d1" / "audit.rs").read_text()
    consts = dict(re.findall(r'const (EVENT_COLUMNS|EVENTS_\w+): &str =\s*"([^"]+)"', source))
    assert set(consts) == {"EVENT_COLUMNS", "EVENTS_NEWEST", "EVENTS_BEFORE", "EVENTS_OF_ADDRESS",
                           "EVENTS_OF_ADDRESS_BEFORE", "EVENTS_OF_KIND", "EVENTS_OF_KIND_BEFORE",
                           "EVENTS_OF_ADDRESS_KIND", "EVENTS_OF_ADDRESS_KIND_BEFORE"}, consts
    address, kind = "ab" * 16, "login_ok"
    args = {"EVENTS_NEWEST": (50,), "EVENTS_BEFORE": (50, 10), "EVENTS_OF_ADDRESS": (50, address),
            "EVENTS_OF_ADDRESS_BEFORE": (50, address, 10), "EVENTS_OF_KIND": (50, kind),
            "EVENTS_OF_KIND_BEFORE": (50, kind, 10), "EVENTS_OF_ADDRESS_KIND": (50, address, kind),
            "EVENTS_OF_ADDRESS_KIND_BEFORE": (50, address, kind, 10)}
    with app.db() as db:
        for name, values in args.items():
            plan = " | ".join(row[-1] for row in db.execute(
                f"EXPLAIN QUERY PLAN {consts['EVENT_COLUMNS']} {consts[name]}", values))
            if "ADDRESS" in name:
                assert "INDEX auth_events_address" in plan, (name, plan)
            elif "KIND" in name:
                assert "INDEX auth_events_event" in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
