"""schemathesis, a tool nobody here wrote, generates requests for every
operation in the served contract and checks each answer against it: no 5xx,
only documented status codes and content types, and bodies that match
their schemas."""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import OIDC_KEYS, create_key, login, twilio_vars
from harness import ADMIN_TOKEN, ROOT, TWILIO_TOKEN, Worker, unique_email

# Every check schemathesis has, but these:
EXCLUDED = {
    # A body valid by the schema can still be refused by a business rule:
    # a wrong code, an unknown key id, a Turnstile token siteverify refuses.
    "positive_data_acceptance": "business rules refuse schema-valid bodies",
    # The one resource deleted at a path that also lists: DELETE
    # /v1/admin/api-keys/{id}/test-recipients?channel=&to= removes one
    # recipient, and GET of the same path rightly lists the others (200),
    # which the check reads as the deleted resource. The other deletions
    # (a key, a client) have no GET of their own to check.
    "use_after_free": "a DELETE by query at a path whose GET lists the rest",
}
CHECKS = "all"
MIN_REQUESTS = 1_000


@pytest.fixture(scope="module")
def contract(mail, twilio):
    # Every optional feature on, so that each operation answers as
    # configured (the providers' hooks need their settings and secrets).
    w = Worker("contract", mail=mail, vars={**twilio_vars(twilio), "PUBLIC_BASE_URL": "https://otp.example.com",
                                                 "OIDC_DYNAMIC_REGISTRATION": "true"},
               secrets={"TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
                        "RESEND_WEBHOOK_SECRET": "whsec_ZTJlLWNvbnRyYWN0LXdlYmhvb2stc2VjcmV0",
                        "OIDC_SIGNING_KEYS": OIDC_KEYS})
    yield w
    w.stop()


def request_lines(w):
    return w.logs().count('"event":"request"')


def test_schemathesis_finds_no_failure_in_at_least_1000_requests(contract, mail, secrets_seen, capsys):
    w = contract
    email, password = unique_email("fuzzed"), "correct horse battery"
    assert w.register(email, password).status_code == 202
    assert w.verify_email(email, mail.code(email)).status_code == 200
    session = login(w, email, password, secrets_seen)
    # Logout gets a session of its own, so /v1/me keeps a live one.
    doomed = login(w, email, password, secrets_seen)
    api_key = create_key(w)["key"]
    work = Path(tempfile.mkdtemp(prefix="otp-schemathesis-"))
    # Each security scheme of openapi.yaml gets its own credential.
    (work / "schemathesis.toml").write_text(
        f'[auth.openapi.SessionToken]\nbearer = "{session}"\n'
        f'[auth.openapi.ApiKey]\nbearer = "{api_key}"\n'
        f'[auth.openapi.AdminToken]\nbearer = "{ADMIN_TOKEN}"\n'
        f'[[operations]]\ninclude-path = "/v1/logout"\nheaders = {{ Authorization = "Bearer {doomed}" }}\n'
    )
    before = request_lines(w)
    cli = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(cli), "--no-color", "--config-file", str(work / "schemathesis.toml"), "run", f"{w.url}/openapi.json",
         # The regex selects /openapi.json too, which schemathesis skips by default.
         "--include-path-regex", "^/", "--checks", CHECKS, "--exclude-checks", ",".join(EXCLUDED), "--max-examples", "50", "--seed", "20261124", "--workers", "2",
         "--request-timeout", "30", "--suppress-health-check", "all", "--generation-database", "none",
         "--report", "junit", "--report-dir", str(work)],
        cwd=work, capture_output=True, text=True, timeout=1200)
    summary = run.stdout[-30000:]
    assert run.returncode == 0, summary + run.stderr[-3000:]
    operations = sum(len(item) for item in yaml.safe_load((ROOT / "openapi.yaml").read_text())["paths"].values())
    assert f"Tested: {operations}\n" in summary and f"Selected: {operations}/{operations}" in summary, summary
    generated, passed = map(int, re.search(r"(\d+) generated, (\d+) passed", summary).groups())
    assert generated == passed >= MIN_REQUESTS, summary
    received = request_lines(w) - before
    assert received >= MIN_REQUESTS, f"the worker logged only {received} requests"
    with capsys.disabled():
        print(f"\nschemathesis: {operations} operations, {generated} test cases, "
              f"{received} requests received by the worker, 0 failures")
