"""scripts/deploy against a stand-in for Cloudflare's side of wrangler
(fake_wrangler.py): the first run creates the database and the namespace,
writes their ids into the config, applies the migrations, deploys, sets
every secret and smoke-tests /healthz; a second run creates nothing and
keeps every secret."""

import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from harness import ROOT


class Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        self.send_response(Health.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def account():
    """A temporary config, an empty account, and the deployed worker's URL."""
    work = Path(tempfile.mkdtemp(prefix="otp-deploy-"))
    shutil.copy(ROOT / "wrangler.toml", work / "wrangler.toml")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Health.status = 200
    yield work, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def deploy(work, url, **env):
    run_env = {k: v for k, v in os.environ.items() if k not in ("MAIL_API_KEY", "TWILIO_AUTH_TOKEN")}
    run_env.update(WRANGLER=f"{sys.executable} {ROOT / 'tests' / 'e2e' / 'fake_wrangler.py'}",
                   OTP_EDGE_CONFIG=str(work / "wrangler.toml"), FAKE_CF_STATE=str(work / "account.json"),
                   FAKE_URL=url, OTP_EDGE_SMOKE_TRIES="1", **env)
    return subprocess.run(["bash", str(ROOT / "scripts" / "deploy")], env=run_env, capture_output=True,
                          text=True, timeout=120)


def state(work):
    return json.loads((work / "account.json").read_text())


def test_a_first_deploy_sets_everything_up_and_a_second_changes_nothing(account):
    work, url = account
    first = deploy(work, url, MAIL_API_KEY="re_live_key")
    assert first.returncode == 0, first.stdout + first.stderr
    s = state(work)
    assert [d["name"] for d in s["d1"]] == ["otp-edge"] and [k["title"] for k in s["kv"]] == ["otp-edge-RATE_LIMIT"]
    config = (work / "wrangler.toml").read_text()
    assert f'database_id = "{s["d1"][0]["uuid"]}"' in config and f'id = "{s["kv"][0]["id"]}"' in config
    assert set(s["secrets"]) == {"OTP_PEPPER", "ADMIN_TOKEN", "MAIL_API_KEY", "OIDC_SIGNING_KEYS", "MFA_ENCRYPTION_KEY"}
    # Its own random value, never shown.
    mfa_key = s["secrets"]["MFA_ENCRYPTION_KEY"]
    assert len(mfa_key) == 64 and mfa_key != s["secrets"]["OTP_PEPPER"] and mfa_key not in first.stdout
    keys = json.loads(s["secrets"]["OIDC_SIGNING_KEYS"])["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "RS256"]
    assert s["secrets"]["OIDC_SIGNING_KEYS"] not in first.stdout
    assert s["secrets"]["MAIL_API_KEY"] == "re_live_key"
    assert len(s["secrets"]["OTP_PEPPER"]) == 64 and s["secrets"]["OTP_PEPPER"] != s["secrets"]["ADMIN_TOKEN"]
    assert s["deployed"] == 1 and s["migrations_applied"] == 1
    assert f"ok: {url} is up" in first.stdout
    # The generated admin token is shown once, to be kept; the pepper never.
    assert s["secrets"]["ADMIN_TOKEN"] in first.stdout and s["secrets"]["OTP_PEPPER"] not in first.stdout

    second = deploy(work, url)
    assert second.returncode == 0, second.stdout + second.stderr
    again = state(work)
    assert (again["d1"], again["kv"], again["secrets"]) == (s["d1"], s["kv"], s["secrets"])
    assert (work / "wrangler.toml").read_text() == config
    assert again["deployed"] == 2 and again["migrations_applied"] == 2
    created = [c for c in again["calls"][len(s["calls"]):] if c[1:2] in (["create"], ["bulk"]) or c[2:3] == ["create"]]
    assert created == [], f"a second run created or set {created}"
    assert "ADMIN_TOKEN: set" in second.stdout


def test_a_missing_provider_key_stops_the_deploy_naming_it(account):
    work, url = account
    r = deploy(work, url)
    assert r.returncode != 0
    assert "MAIL_API_KEY is not set on the worker" in r.stderr
    # Nothing was half-set: run again with the key and it completes.
    assert state(work)["secrets"] == {}
    r = deploy(work, url, MAIL_API_KEY="re_live_key")
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_worker_that_does_not_answer_healthz_fails_the_deploy(account):
    work, url = account
    Health.status = 503
    r = deploy(work, url, MAIL_API_KEY="re_live_key")
    assert r.returncode != 0 and "did not answer 200" in r.stderr
