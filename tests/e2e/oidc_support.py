"""What the OpenID Provider's end-to-end tests share: the app's redirect
URI (a local server), registering a client through the admin API, a
verified person, the hosted sign-in, and openid-client's steps."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from conftest import OIDC_KEYS, SECRETS_SEEN
from harness import ADMIN_TOKEN, ROOT, Worker, free_port, unique_email

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}


def start_provider(name, mail, vars):
    """A worker whose issuer is its own address, on `localhost` as a browser
    reaches it (WebAuthn and cookies want a name, not an IP). A port taken
    between choosing and starting moves the worker: start it again."""
    w = Worker(name, mail=mail, vars=vars, secrets={"OIDC_SIGNING_KEYS": OIDC_KEYS}, start=False)
    for _ in range(3):
        w.vars["PUBLIC_BASE_URL"] = f"http://localhost:{w.port}"
        w.start()
        if w.vars["PUBLIC_BASE_URL"] == f"http://localhost:{w.port}":
            break
        w.stop()
    w.issuer = w.vars["PUBLIC_BASE_URL"]
    return w


class Callback:
    """The app's redirect URI: a server on 127.0.0.1 that keeps every query
    the browser brings and answers a plain page."""

    def __init__(self):
        self.queries = []
        self.farewells = []  # the queries of /bye, the post-logout URI
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlsplit(self.path)
                if url.path == "/cb":  # (not the browser's /favicon.ico)
                    outer.queries.append(url.query)
                if url.path == "/bye":
                    outer.farewells.append(url.query)
                body = b"<!doctype html><html lang=en><title>app</title><main><h1>Back in the app</h1></main></html>"
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/cb"
        self.bye = self.uri.replace("/cb", "/bye")
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def last(self):
        deadline = time.time() + 10
        while not self.queries and time.time() < deadline:
            time.sleep(0.05)
        return {k: v[0] for k, v in parse_qs(self.queries[-1]).items()}

    def close(self):
        self.server.shutdown()



def register_client(provider, callback, kind="confidential", **extra):
    r = provider.call("admin_create_oidc_client", {"name": "Notes", "type": kind, "redirect_uris": [callback.uri],
                                                   **extra}, headers=ADMIN)
    assert r.status_code == 201, r.text
    client = r.json()
    if "client_secret" in client:
        SECRETS_SEEN.append(client["client_secret"])
    return client


def verified_person(provider, mail):
    email, password = unique_email("oidc"), "correct horse battery"
    assert provider.register(email, password).status_code == 202
    code = mail.code(email)
    SECRETS_SEEN.extend([code, password])
    assert provider.verify_email(email, code).status_code == 200
    return email, password


def sign_in_with_password(j, url, email, password, shot=None):
    j.page.goto(url)
    expect(j.page.locator("#continues-to")).to_contain_text("Notes")
    if shot:
        j.look(shot)
    j.page.fill("input[name=email]", email)
    j.page.fill("input[name=password]", password)
    j.page.click("button[value=password]")


def remember(token):
    SECRETS_SEEN.extend(v for k, v in token.items() if k in ("access_token", "refresh_token", "id_token"))


def node_client(step, **args):
    """One step of openid-client (tests/e2e/oidc_node_client.mjs)."""
    out = subprocess.run(["node", str(ROOT / "tests" / "e2e" / "oidc_node_client.mjs"), step, json.dumps(args)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
