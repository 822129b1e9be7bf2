"""Starts the real worker under `wrangler dev` on fresh local D1/KV state, and
a local HTTP server standing in for the Resend mail API."""

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from glob import glob
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import requests

ROOT = Path(__file__).resolve().parents[2]
WRANGLER = ROOT / "node_modules" / ".bin" / "wrangler"
PEPPER = "e2e-pepper-0123456789abcdef0123456789abcdef"


def oidc_signing_keys():
    """A fresh OIDC_SIGNING_KEYS, made as scripts/dev makes it (Node's
    crypto): a JWK set of an RS256 and an ES256 private key."""
    return subprocess.check_output(["node", str(ROOT / "scripts" / "oidc-keys.mjs")], text=True).strip()
ADMIN_TOKEN = "e2e-admin-token-abcdefghijklmnopqrstuvwxyz"
MFA_ENCRYPTION_KEY = "e2e-mfa-encryption-key-0123456789abcdef"
MAIL_API_KEY = "re_e2e_test_key_123"
TWILIO_SID = "AC00000000000000000000000000e2e"
TWILIO_TOKEN = "e2e-twilio-auth-token-0123456789"
# A code stands on its own line in a mail, and leads an SMS.
CODE_RES = [re.compile(r"^\s{4}([0-9A-Z]{4,10})$", re.M), re.compile(r"^([0-9A-Z]{4,10}) is your ")]


API_KEYS_PATH = "/v1/admin/api-keys"
# Every route by the name the worker logs it under (`routes::TABLE`).
ROUTES = {
    "healthz": ("GET", "/healthz"),
    "openapi": ("GET", "/openapi.json"),
    "oidc_jwks": ("GET", "/.well-known/jwks.json"),
    "oidc_discovery": ("GET", "/.well-known/openid-configuration"),
    "oauth_metadata": ("GET", "/.well-known/oauth-authorization-server"),
    "oauth_token": ("POST", "/oauth/token"),
    "oauth_userinfo": ("GET", "/oauth/userinfo"),
    "oauth_userinfo_post": ("POST", "/oauth/userinfo"),
    "oauth_revoke": ("POST", "/oauth/revoke"),
    "oauth_register": ("POST", "/oauth/register"),
    "register": ("POST", "/v1/register"),
    "verify_email": ("POST", "/v1/verify-email"),
    "resend": ("POST", "/v1/resend"),
    "login": ("POST", "/v1/login"),
    "login_code": ("POST", "/v1/login/code"),
    "login_code_verify": ("POST", "/v1/login/code/verify"),
    "login_mfa": ("POST", "/v1/login/mfa"),
    "me": ("GET", "/v1/me"),
    "logout": ("POST", "/v1/logout"),
    "totp_begin": ("POST", "/v1/me/totp"),
    "totp_remove": ("DELETE", "/v1/me/totp"),
    "totp_confirm": ("POST", "/v1/me/totp/confirm"),
    "totp_recovery_codes": ("POST", "/v1/me/totp/recovery-codes"),
    "password_reset": ("POST", "/v1/password-reset"),
    "password_reset_confirm": ("POST", "/v1/password-reset/confirm"),
    "otp_send": ("POST", "/v1/otp/send"),
    "otp_verify": ("POST", "/v1/otp/verify"),
    "admin_stats": ("GET", "/v1/admin/stats"),
    "admin_list_keys": ("GET", API_KEYS_PATH),
    "admin_create_key": ("POST", API_KEYS_PATH),
    "admin_events": ("GET", "/v1/admin/events"),
    "admin_list_oidc_clients": ("GET", "/v1/admin/oidc-clients"),
    "admin_create_oidc_client": ("POST", "/v1/admin/oidc-clients"),
    "admin_delete_oidc_client": ("DELETE", "/v1/admin/oidc-clients/{id}"),
    "otp_status": ("GET", "/v1/otp/{id}"),
    "admin_list_test_recipients": ("GET", API_KEYS_PATH + "/{id}/test-recipients"),
    "admin_add_test_recipient": ("POST", API_KEYS_PATH + "/{id}/test-recipients"),
    "admin_remove_test_recipient": ("DELETE", API_KEYS_PATH + "/{id}/test-recipients"),
    "twilio_status": ("POST", "/v1/hooks/twilio/status"),
    "resend_webhook": ("POST", "/v1/hooks/resend"),
}
OMIT = object()  # a body field left out


def proxied(method, url, **kw):
    """One request to a worker under `wrangler dev`. Its proxy, not the
    worker, sometimes answers 503 "Your worker restarted mid-request" to a
    request the worker never logged, or leaves a GET unanswered: that
    exact answer, and a GET's read timeout, are tried once more and logged.
    A worker's own 503 is never retried."""
    try:
        r = requests.request(method, url, **kw)
    except requests.exceptions.ReadTimeout:
        if method != "GET":
            raise
        print(f"harness: retrying {method} {url} once after wrangler's proxy did not answer", file=sys.stderr)
        return requests.request(method, url, **kw)
    if r.status_code == 503 and "restarted mid-request" in r.text:
        print(f"harness: retrying {method} {url} once after wrangler's proxy answered for the worker",
              file=sys.stderr)
        return requests.request(method, url, **kw)
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recipient_and_text(body, form):
    """Where a captured request was going and what it said, for every API
    the worker speaks: Resend, Postmark, SendGrid (JSON) and Twilio (form)."""
    if form:
        return form.get("To"), form.get("Body")
    body = body if isinstance(body, dict) else {}
    if isinstance(body.get("to"), list):  # Resend
        return body["to"][0], body.get("text")
    if "To" in body:  # Postmark
        return body["To"], body.get("TextBody")
    if "personalizations" in body:  # SendGrid
        return body["personalizations"][0]["to"][0]["email"], body["content"][0]["value"]
    return None, None


class StandIn:
    """A local HTTP server standing in for a third-party API. It captures
    every request exactly as the worker sent it. Per-recipient behaviour
    lets one test break delivery for its own address without touching the
    others: `set` fixes one answer, `script` a sequence of answers (the last
    one repeats). A step may hold `status`, `delay` (seconds), `body` (JSON),
    `raw` (bytes sent as they are), `headers`, or `close` (drop the
    connection without answering)."""

    instances = []  # every stand-in, for the expectations checked at each test's teardown

    def __init__(self, ok_status=200, ok_body=None, keep_alive=False):
        StandIn.instances.append(self)
        self.expectations = []
        self.requests = []
        self.by_recipient = {}  # the same requests by recipient: a benchmark's stand-in holds thousands
        self.behaviour = {}
        self.ok_status = ok_status
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1 keeps connections open between requests; without Nagle,
            # the body does not wait for the ACK of the headers.
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"
            disable_nagle_algorithm = keep_alive

            def log_message(self, *args):
                pass

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                body, form = None, None
                if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                    form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
                else:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        pass
                to, text = recipient_and_text(body, form)
                entry = {"path": self.path, "headers": headers, "raw": raw, "json": body, "form": form,
                         "to": to, "text": text}
                with server.lock:
                    steps = server.behaviour.get(to) or [{}]
                    step = steps.pop(0) if len(steps) > 1 else steps[0]
                if step.get("delay"):
                    time.sleep(step["delay"])
                with server.lock:
                    server.requests.append(entry)
                    server.by_recipient.setdefault(to, []).append(entry)
                if step.get("close"):
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = step.get("status", ok_status)
                answer = step.get("body")
                if answer is None:
                    answer = (ok_body or {"id": str(uuid.uuid4())}) if status < 300 else {"message": "boom"}
                payload = step["raw"] if "raw" in step else json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    for k, v in step.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the worker gave up waiting (timeout test)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # the default 5 drops connections under load

            def handle_error(self, request, client_address):
                # A worker shutting down drops its kept-alive connections.
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def set(self, to, status=None, delay=0, body=None):
        self.script(to, {"status": status or self.ok_status, "delay": delay, "body": body})

    def script(self, to, *steps):
        with self.lock:
            self.behaviour[to] = list(steps)

    def to(self, address):
        with self.lock:
            return list(self.by_recipient.get(address, []))

    def wait_for(self, address, count=1, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.to(address)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address))}")

    def code(self, address, index=-1, timeout=10):
        """The code in the last (or `index`th) message to `address`."""
        sent = self.wait_for(address, count=1 if index < 0 else index + 1, timeout=timeout)
        return code_in(sent[index]["text"])

    def expect(self, address, count):
        """Exactly `count` messages go to `address` in this test: checked at
        its teardown, after the sends deferred past an answer had time to
        arrive."""
        with self.lock:
            self.expectations.append((address, count))

    def verify(self, timeout=10, settle=0.5):
        """Checks and clears the expectations (the teardown calls this)."""
        with self.lock:
            expectations, self.expectations = self.expectations, []
        if not expectations:
            return
        deadline = time.time() + timeout
        while time.time() < deadline and any(len(self.to(a)) < n for a, n in expectations):
            time.sleep(0.05)
        time.sleep(settle)  # a message beyond the count would arrive by now
        wrong = [f"{a}: expected {n} message(s), got {len(self.to(a))}" for a, n in expectations
                 if len(self.to(a)) != n]
        assert not wrong, "; ".join(wrong)

    def verify_quietly(self):
        """`verify`, returning its failure instead of raising it, so that
        every stand-in's expectations are checked and cleared."""
        try:
            self.verify()
        except AssertionError as e:
            return e
        return None

    def close(self):
        self.httpd.shutdown()


def code_in(text):
    for pattern in CODE_RES:
        m = pattern.search(text or "")
        if m:
            return m.group(1)
    raise AssertionError("the message has no code")


class Worker:
    """One `wrangler dev` process with its own config, secrets and state."""

    log_paths = []  # every worker's output, for the log scan

    # The per-client caps of the Rate Limiting bindings: (limit, period).
    # Tests speak from few addresses, so the defaults are out of their way;
    # a test that checks a cap gives its own, and None leaves a binding out.
    LIMITS = {"IP_LIMITER": (100_000, 60), "API_LIMITER": (100_000, 60)}

    def __init__(self, name, mail=None, vars=None, secrets=None, d1=True, kv=True, schema=True, state_dir=None,
                 toml_vars=None, send_email=None, main=None, limits=None, migrations=None, start=True,
                 services=None):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"otp-e2e-{name}-"))
        self.state = Path(state_dir) if state_dir else self.dir / "state"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.dir / "wrangler.log"
        Worker.log_paths.append(self.log_path)
        config = [
            f'name = "otp-edge-{name}"',
            f'main = "{main or ROOT / "build" / "worker" / "shim.mjs"}"',
            'compatibility_date = "2026-04-01"',
        ]
        if d1:
            config += ['[[d1_databases]]', 'binding = "DB"', 'database_name = "otp-edge"',
                       'database_id = "00000000-0000-0000-0000-000000000000"',
                       f'migrations_dir = "{migrations or ROOT / "migrations"}"']
        if kv:
            config += ['[[kv_namespaces]]', 'binding = "RATE_LIMIT"', 'id = "00000000000000000000000000000000"']
        for i, (binding, cap) in enumerate({**Worker.LIMITS, **(limits or {})}.items()):
            if cap:
                config += ['[[ratelimits]]', f'name = "{binding}"', f'namespace_id = "{1001 + i}"',
                           f'simple = {{ limit = {cap[0]}, period = {cap[1]} }}']
        if send_email:
            config += ['[[send_email]]', f'name = "{send_email}"']
        for binding, worker in (services or {}).items():
            # Another worker of this run, found through wrangler's dev registry.
            config += ['[[services]]', f'binding = "{binding}"', f'service = "otp-edge-{worker.name}"']
        if toml_vars:
            # Values --var cannot carry (JSON with colons and quotes) go in the file.
            config += ['[vars]'] + [f"{k} = {json.dumps(v)}" for k, v in toml_vars.items()]
        (self.dir / "wrangler.toml").write_text("\n".join(config) + "\n")
        base = {"ENVIRONMENT": "development", "MAIL_PROVIDER": "resend",
                "MAIL_FROM": "Acme <no-reply@acme.test>", "APP_NAME": "Acme"}
        if mail:
            base["MAIL_API_URL"] = mail.url
        base.update(vars or {})
        env = {"OTP_PEPPER": PEPPER, "ADMIN_TOKEN": ADMIN_TOKEN, "MAIL_API_KEY": MAIL_API_KEY,
               "MFA_ENCRYPTION_KEY": MFA_ENCRYPTION_KEY}
        env.update(secrets or {})
        # Secrets go in an env file (as .dev.vars would hold them), vars on the command line.
        # Single quotes keep a JSON value (OIDC_SIGNING_KEYS) as it is.
        quoted = {k: f"'{v}'" if v.startswith("{") else v for k, v in env.items() if v is not None}
        (self.dir / "secrets.env").write_text("".join(f"{k}={v}\n" for k, v in quoted.items()))
        self.vars = base
        if schema is True:
            self.migrate()
        elif isinstance(schema, Path):
            self.sql(file=schema)
        elif schema:
            self.sql(command=schema)
        self.proc = None
        if start:
            self.start()

    def wrangler(self, *args, **kw):
        return subprocess.run([str(WRANGLER), *args, "-c", str(self.dir / "wrangler.toml")],
                              cwd=self.dir, capture_output=True, text=True, **kw)

    def migrate(self):
        """Applies the migrations not yet applied, as a deploy does."""
        r = self.wrangler("d1", "migrations", "apply", "DB", "--local", "--persist-to", str(self.state),
                          timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    def sql(self, file=None, command=None):
        args = ["d1", "execute", "DB", "--local", "--persist-to", str(self.state)]
        args += ["--file", str(file)] if file else ["--command", command]
        r = self.wrangler(*args, timeout=120)
        assert r.returncode == 0, r.stderr

    def expire_codes(self, address):
        """Lets the codes of `address` run out, and their attempt windows
        close, as if their lifetime (60 s at least) had passed."""
        assert "'" not in address
        self.sql(command=f"UPDATE codes SET expires_at = 1, window_ends_at = 1 WHERE address = '{address}'")

    def db(self):
        """A read-only look at the SQLite file behind the local D1."""
        files = [f for f in glob(str(self.state / "v3" / "d1" / "**" / "*.sqlite"), recursive=True)
                 if not f.endswith("metadata.sqlite")]
        assert files, "no local D1 database"
        return sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True)

    def start(self):
        # A port picked free can be taken by a worker starting beside this
        # one before wrangler binds it: then start again on another port.
        for _ in range(3):
            if self.launch():
                return
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
        raise RuntimeError(f"wrangler dev found no free port:\n{self.log_path.read_text()[-3000:]}")

    def launch(self):
        start = self.log_path.stat().st_size if self.log_path.exists() else 0
        args = [str(WRANGLER), "dev", "-c", str(self.dir / "wrangler.toml"), "--ip", "127.0.0.1",
                "--port", str(self.port), "--persist-to", str(self.state), "--env-file", str(self.dir / "secrets.env"),
                "--test-scheduled", "--show-interactive-dev-session=false", "--inspector-port", str(free_port())]
        for k, v in self.vars.items():
            args += ["--var", f"{k}:{v}"]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     env={**os.environ, "NO_COLOR": "1", "WRANGLER_SEND_METRICS": "false"})
        deadline = time.time() + 90
        while time.time() < deadline:
            log = self.log_path.read_text(errors="replace")[start:]
            if self.proc.poll() is not None:
                self.log.close()
                if "Address already in use" in log:
                    return False
                raise RuntimeError(f"wrangler dev exited:\n{log[-3000:]}")
            # The probe must reach this worker, not one that took the port.
            if f"Ready on {self.url}" in log:
                try:
                    requests.get(self.url + "/__probe", timeout=10)
                    return True
                except (requests.ConnectionError, requests.Timeout):
                    pass
            time.sleep(0.2)
        raise RuntimeError(f"wrangler dev did not start:\n{self.log_path.read_text()[-3000:]}")

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()

    def logs(self):
        return self.log_path.read_text(errors="replace")

    def after_answer(self, seconds=0.3):
        """Waits for what the worker does just after an answer (`wait_until`:
        the cooldown a send starts, the audit events), which lands within
        milliseconds under wrangler dev."""
        time.sleep(seconds)

    def log_line(self, *needles, timeout=5):
        """The first log line holding every needle; wrangler writes lines a
        moment after the answer, so this waits for one."""
        deadline = time.time() + timeout
        while True:
            found = [line for line in self.logs().splitlines() if all(n in line for n in needles)]
            if found or time.time() > deadline:
                return found[0] if found else None
            time.sleep(0.05)

    # HTTP helpers -----------------------------------------------------------

    def post(self, path, body=None, ip=None, token=None, **kw):
        headers = kw.pop("headers", {})
        if ip:
            headers["cf-connecting-ip"] = ip
        if token:
            headers["authorization"] = f"Bearer {token}"
        return proxied("POST", self.url + path, json=body, headers=headers, timeout=30, **kw)

    def get(self, path, token=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        return proxied("GET", self.url + path, headers=headers, timeout=30, **kw)

    def session_delete(self, path, body=None, token=None, **kw):
        headers = kw.pop("headers", {})
        if token:
            headers["authorization"] = f"Bearer {token}"
        if body is not None:
            kw["json"] = body
        return proxied("DELETE", self.url + path, headers=headers, timeout=30, **kw)

    def scheduled(self):
        r = requests.get(self.url + "/__scheduled?cron=*/10+*+*+*+*", timeout=30)
        assert r.status_code == 200, r.text
        return r

    # The typed client: one method per route of `routes::TABLE`, named as
    # the route is logged. Each returns the raw response, for the test to
    # assert on. Keyword arguments (`ip`, `headers`, `token`, `params`) go
    # to the request; `call` sends any body, well-formed or not.

    def call(self, route, body=None, id=None, **kw):
        method, path = ROUTES[route]
        if "{id}" in path:
            path = path.replace("{id}", id)
        assert body is None or method in ("POST", "DELETE"), f"{route} takes no body"
        if method == "GET":
            return self.get(path, **kw)
        if method == "DELETE":
            return self.session_delete(path, body, **kw)
        return self.post(path, body, **kw)

    def healthz(self, **kw):
        return self.call("healthz", **kw)

    def openapi(self, **kw):
        return self.call("openapi", **kw)

    def oidc_jwks(self, **kw):
        return self.call("oidc_jwks", **kw)

    def register(self, email, password, **kw):
        return self.call("register", {"email": email, "password": password}, **kw)

    def verify_email(self, email, code, **kw):
        return self.call("verify_email", {"email": email, "code": code}, **kw)

    def resend(self, email, purpose, **kw):
        return self.call("resend", {"email": email, "purpose": purpose}, **kw)

    def login(self, email, password, **kw):
        return self.call("login", {"email": email, "password": password}, **kw)

    def login_code(self, email, **kw):
        return self.call("login_code", {"email": email}, **kw)

    def login_code_verify(self, email, code, **kw):
        return self.call("login_code_verify", {"email": email, "code": code}, **kw)

    def login_mfa(self, mfa_token, code, **kw):
        return self.call("login_mfa", {"mfa_token": mfa_token, "code": code}, **kw)

    def me(self, **kw):
        return self.call("me", **kw)

    def totp_begin(self, token, **kw):
        return self.call("totp_begin", token=token, **kw)

    def totp_confirm(self, token, code, **kw):
        return self.call("totp_confirm", {"code": code}, token=token, **kw)

    def totp_recovery_codes(self, token, code, **kw):
        return self.call("totp_recovery_codes", {"code": code}, token=token, **kw)

    def totp_remove(self, token, code, **kw):
        return self.call("totp_remove", {"code": code}, token=token, **kw)

    def logout(self, **kw):
        return self.call("logout", **kw)

    def password_reset(self, email, **kw):
        return self.call("password_reset", {"email": email}, **kw)

    def password_reset_confirm(self, email, code, new_password, **kw):
        return self.call("password_reset_confirm", {"email": email, "code": code, "new_password": new_password},
                         **kw)

    def otp_send(self, channel, to, purpose, *, length=OMIT, alphabet=OMIT, ttl_seconds=OMIT, **kw):
        body = {"channel": channel, "to": to, "purpose": purpose, "length": length, "alphabet": alphabet,
                "ttl_seconds": ttl_seconds}
        return self.call("otp_send", {k: v for k, v in body.items() if v is not OMIT}, **kw)

    def otp_verify(self, channel, to, purpose, code, **kw):
        return self.call("otp_verify", {"channel": channel, "to": to, "purpose": purpose, "code": code}, **kw)

    def admin_stats(self, **kw):
        return self.call("admin_stats", **kw)

    def admin_list_keys(self, **kw):
        return self.call("admin_list_keys", **kw)

    def admin_create_key(self, name, channels, *, app_name=OMIT, **kw):
        body = {"name": name, "channels": channels, "app_name": app_name}
        return self.call("admin_create_key", {k: v for k, v in body.items() if v is not OMIT}, **kw)

    def admin_revoke_key(self, key_id, **kw):
        return self.session_delete(f"{API_KEYS_PATH}/{key_id}", **kw)

    def admin_events(self, **kw):
        return self.call("admin_events", **kw)

    def admin_list_oidc_clients(self, **kw):
        return self.call("admin_list_oidc_clients", **kw)

    def admin_create_oidc_client(self, name, type, redirect_uris, **extra):
        kw = {k: extra.pop(k) for k in ("ip", "headers", "token", "params") if k in extra}
        body = {"name": name, "type": type, "redirect_uris": redirect_uris, **extra}
        return self.call("admin_create_oidc_client", body, **kw)

    def admin_delete_oidc_client(self, client_id, **kw):
        return self.call("admin_delete_oidc_client", id=client_id, **kw)

    def otp_status(self, send_id, **kw):
        return self.call("otp_status", id=send_id, **kw)

    def admin_list_test_recipients(self, key_id, **kw):
        return self.call("admin_list_test_recipients", id=key_id, **kw)

    def admin_add_test_recipient(self, key_id, channel, to, code, **kw):
        return self.call("admin_add_test_recipient", {"channel": channel, "to": to, "code": code}, id=key_id, **kw)

    def admin_remove_test_recipient(self, key_id, channel, to, **kw):
        return self.call("admin_remove_test_recipient", id=key_id, params={"channel": channel, "to": to}, **kw)


def unique_email(tag="user"):
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def problem(r, status, code):
    """Asserts an RFC 9457 problem answer with our stable code, and returns it."""
    assert r.status_code == status, f"{r.status_code} {r.text}"
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert "/problems/" in body["type"] and body["title"] and body["detail"]
    return body
