"""The README's "Sign in with otp-edge" examples, run as written: the
FastAPI app (authlib) and the Express app (openid-client) are copied out
of README.md, started on 127.0.0.1 with the environment the README names,
and a person signs in to each in Chromium through the hosted pages."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect

from browser import journey
from conftest import SECRETS_SEEN
from harness import ROOT, free_port
from oidc_support import ADMIN, start_provider, verified_person

EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```\w+\n(.*?)```", re.S)


def readme_examples():
    return dict(EXAMPLE.findall((ROOT / "README.md").read_text()))


@pytest.fixture(scope="module")
def provider(mail):
    w = start_provider("readme-examples", mail, {})
    yield w
    w.stop()


def test_the_readme_holds_both_examples():
    assert set(readme_examples()) == {"app.py", "app.mjs"}


def serve(command, cwd, env, port):
    """Starts an example app and waits until it answers."""
    log = open(cwd / "app.log", "w")
    proc = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the example exited: {(cwd / 'app.log').read_text()}")
        try:
            requests.get(f"http://127.0.0.1:{port}/login", allow_redirects=False, timeout=5)
            return proc
        except requests.ConnectionError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the example did not start: {(cwd / 'app.log').read_text()}")


@pytest.mark.parametrize("example", ["app.py", "app.mjs"])
def test_a_person_signs_in_to_the_readme_example(provider, mail, browser, example):
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    r = provider.call("admin_create_oidc_client", {"name": "Shop", "type": "confidential",
                                                   "redirect_uris": [f"{app_url}/auth/callback"]}, headers=ADMIN)
    assert r.status_code == 201, r.text
    client = r.json()
    SECRETS_SEEN.append(client["client_secret"])
    # Under target/ (ignored by git), inside the repository: Node resolves
    # the example's imports from the repository's node_modules.
    work = ROOT / "target" / "readme-examples" / example.replace(".", "-")
    work.mkdir(parents=True, exist_ok=True)
    (work / example).write_text(readme_examples()[example])
    env = {"OTP_ISSUER": provider.issuer, "OTP_CLIENT_ID": client["client_id"],
           "OTP_CLIENT_SECRET": client["client_secret"], "SESSION_SECRET": "a-session-secret-for-the-example",
           "APP_URL": app_url, "PORT": str(port)}
    command = {"app.py": [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
               "app.mjs": ["node", "app.mjs"]}[example]
    app = serve(command, work, env, port)
    try:
        email, password = verified_person(provider, mail)
        with journey(browser) as j:
            j.page.goto(f"{app_url}/")
            expect(j.page.locator("#continues-to")).to_contain_text("Shop")
            j.page.fill("input[name=email]", email)
            j.page.fill("input[name=password]", password)
            j.page.click("button[value=password]")
            j.page.wait_for_url(f"{app_url}/")
            expect(j.page.locator("body")).to_contain_text(f'"signed_in_as":"{email}"')
    finally:
        app.kill()
        app.wait()
