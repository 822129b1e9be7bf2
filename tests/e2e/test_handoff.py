"""The hand-off to a calling app, and the pages' defences, over plain HTTP:
`return_to` honoured only for a listed origin, the one-time code and its
exchange at POST /v1/auth/exchange, CSRF refusals, the CSP and the cookies,
and problem type URIs that are pages of the worker."""

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from conftest import SECRETS_SEEN, create_key
from harness import ADMIN_TOKEN, Worker, problem, unique_email

APP = "https://app.test"
OTHER = "https://other.test"  # listed too: a code issued for APP is still not for it
RETURN_TO = APP + "/cb"
PASSWORD = "correct horse battery"
SESSION, CSRF, EMAIL, ADMIN = "__Host-otp_session", "__Host-otp_csrf", "__Host-otp_email", "__Host-otp_admin"
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
REFUSAL = "This form could not be accepted"


@pytest.fixture(scope="module")
def handoff(mail):
    w = Worker("handoff", mail=mail, vars={"AUTH_RETURN_ORIGINS": f"{APP},{OTHER}", "ACCENT_COLOR": "#0B7A75", "RESEND_COOLDOWN_SECONDS": "0",
                                           "MAX_SENDS_PER_HOUR": "1000"})
    yield w
    w.stop()


@pytest.fixture(scope="module")
def key(handoff):
    """The calling app's API key."""
    return create_key(handoff, channels=["email"], name="hand-off app")["key"]


def auth(key):
    return {"authorization": f"Bearer {key}"}


# A browser, by hand ------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Html(HTMLParser):
    """The parts of a page the tests read: every element with its attributes
    and text, and every form with its fields."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.elements, self.forms, self.open, self.form = [], {}, [], None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        el = SimpleNamespace(tag=tag, attrs=dict(attrs), parts=[])
        self.elements.append(el)
        if tag == "form":
            self.form = SimpleNamespace(attrs=el.attrs, fields={}, buttons=[])
            self.forms[el.attrs.get("id")] = self.form
        elif self.form is not None and tag == "button":
            self.form.buttons.append(el)
        elif self.form is not None and tag == "input" and el.attrs.get("name"):
            kind = (el.attrs.get("type") or "text").lower()
            if kind not in ("submit", "button", "image", "reset") and (
                    kind not in ("checkbox", "radio") or "checked" in el.attrs):
                self.form.fields[el.attrs["name"]] = el.attrs.get("value") or ""
        if tag not in VOID:
            self.open.append(el)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self.open and self.open[-1].tag == tag:
            self.open.pop()

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                del self.open[i:]
                break

    def handle_data(self, data):
        for el in self.open:
            el.parts.append(data)

    def all(self, tag):
        return [el for el in self.elements if el.tag == tag]

    def by_id(self, id_):
        found = [el for el in self.elements if el.attrs.get("id") == id_]
        return found[0] if found else None

    @staticmethod
    def text(el):
        return " ".join("".join(el.parts).split())


class Browser:
    """Drives the pages as a browser does: keeps the cookies (set by hand in a
    `Cookie` header, since `requests` keeps `Secure` cookies off plain http),
    sends `Origin` and the form's `csrf` field with every POST, and follows
    the worker's own redirects."""

    def __init__(self, w):
        self.w = w
        self.jar = {}
        self.set_cookies = []  # every Set-Cookie header seen, as sent

    def absorb(self, r):
        for header in r.raw.headers.getlist("set-cookie"):
            self.set_cookies.append(header)
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            attrs = header.lower().replace(" ", "")
            if not value or ";max-age=0" in attrs or "expires=thu,01jan1970" in attrs:
                self.jar.pop(name, None)
            else:
                self.jar[name] = value
                if name in (SESSION, ADMIN):
                    SECRETS_SEEN.append(value)
        return r

    def headers(self, **extra):
        cookie = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        return {**({"cookie": cookie} if cookie else {}), **extra}

    def url(self, path):
        return path if path.startswith("http") else self.w.url + path

    def get(self, path, params=None):
        r = requests.get(self.url(path), params=params, headers=self.headers(), allow_redirects=False, timeout=30)
        return self.absorb(r)

    def post(self, path, data, origin=True):
        """`origin`: True for the worker's own, None for no header, or a string."""
        extra = {"origin": self.w.url} if origin is True else ({"origin": origin} if origin else {})
        r = requests.post(self.url(path), data=data, headers=self.headers(**extra), allow_redirects=False,
                          timeout=30)
        return self.absorb(r)

    def follow(self, r):
        """Follows the redirects that stay on the worker; stops at one that
        leaves it (the hand-off)."""
        for _ in range(10):
            if r.status_code not in (301, 302, 303, 307, 308):
                return r
            target = urljoin(r.url, r.headers["location"])
            if not target.startswith(self.w.url + "/"):
                return r
            r = self.get(target)
        raise AssertionError("too many redirects")

    def form(self, path, form_id, params=None):
        page = self.follow(self.get(path, params))
        assert page.status_code == 200, (page.status_code, page.text[:500])
        form = Html(page.text).forms.get(form_id)
        assert form is not None, f"no form#{form_id} on {page.url}"
        return urljoin(page.url, form.attrs.get("action") or page.url), form

    def submit(self, path, form_id, values, params=None, to=None, origin=True):
        """Opens `path`, fills form `form_id` and posts it (to its action, or
        to `to`); returns the answer to the POST, unfollowed."""
        action, form = self.form(path, form_id, params)
        return self.post(to or action, {**form.fields, **values}, origin=origin)

    def sign_in(self, email, password=PASSWORD, params=None, to=None):
        return self.submit("/auth/sign-in", "sign-in", {"email": email, "password": password, "via": "password"},
                           params=params, to=to)


def account(w, mail):
    """A fresh verified account (through the JSON API); returns its address."""
    email = unique_email("handoff")
    assert w.register(email, PASSWORD).status_code == 202
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    assert w.verify_email(email, code).status_code == 200
    return email


def pkce():
    verifier = secrets.token_urlsafe(48)  # 64 characters of A-Z a-z 0-9 - _
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hq(return_to=RETURN_TO, state=None, challenge=None):
    query = {"return_to": return_to, "state": state or secrets.token_urlsafe(12)}
    if challenge:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    return query


def query_of(url):
    q = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in q.values()), url
    return {k: v[0] for k, v in q.items()}


def place(url):
    """Origin and path, with scheme and host lowercased and the default port dropped."""
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, parts.hostname, port, parts.path


def handed_off(r, return_to=RETURN_TO, state=None):
    """The code of a 303 to `return_to` with `code` and the same `state`."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["location"]
    assert place(location) == place(return_to), location
    query = query_of(location)
    if state is not None:
        assert query["state"] == state, location
    assert query["code"], location
    SECRETS_SEEN.append(query["code"])
    return query["code"]


def on_account_page(w, r):
    """A 303 to /auth/account of the worker itself, and nowhere near evil."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["location"]
    target = urlsplit(urljoin(w.url + "/", location))
    assert f"{target.scheme}://{target.netloc}" == w.url and target.path == "/auth/account", location
    assert "evil" not in location.lower(), location


def hand_off(w, mail, challenge=True, return_to=RETURN_TO):
    """A fresh account signs in from a fresh browser with a hand-off query;
    returns what the app gets back and what it holds (the verifier)."""
    email = account(w, mail)
    verifier, code_challenge = pkce() if challenge else (None, None)
    query = hq(return_to, challenge=code_challenge)
    b = Browser(w)
    code = handed_off(b.sign_in(email, params=query), return_to, query["state"])
    return SimpleNamespace(browser=b, email=email, code=code, verifier=verifier, state=query["state"])


def exchange(w, key, code, return_to=RETURN_TO, verifier=None):
    kw = {} if verifier is None else {"code_verifier": verifier}
    return w.auth_exchange(code, return_to, headers=auth(key), **kw)


def refused(r):
    """The CSRF refusal: 403 and its page."""
    assert r.status_code == 403, (r.status_code, r.text[:500])
    assert r.headers["content-type"].startswith("text/html")
    page = Html(r.text)
    assert [Html.text(h) for h in page.all("h1")] == [REFUSAL]
    error = page.by_id("error")
    assert error is not None and error.attrs.get("role") == "alert" and Html.text(error)


# Where a sign-in lands ---------------------------------------------------------

REFUSED = [
    "https://evil.example/cb",
    "//evil.example",
    "https://evil.example@app.test",
    "javascript:alert(1)",
    "%2F%2Fevil.example",
    "https:%2F%2Fevil.example",
    "/\\evil.example",
    "https://app.test.evil.example",
    "http://app.test/cb",  # plain http off localhost
    "https://app.test:8443/cb",  # another port is another origin
    "https://user:pw@app.test/cb",  # userinfo
    "https://app.test:+443/cb",  # a port browsers refuse
    "https://app.test/cb?code=planted",  # a code the app could read before ours
    "https://app.test/cb?x=1&state=planted",
]
# The same, written into the query string as they are (not encoded again).
REFUSED_RAW = ["//evil.example", "%2F%2Fevil.example", "https:%2F%2Fevil.example", "/%5Cevil.example",
               "https://evil.example%40app.test", "https:/%2Fevil.example"]


def test_a_signed_in_browser_never_follows_a_return_to_off_the_list(handoff, mail):
    """Every open-redirect shape of the spec (encoded once, or written raw
    into the query): the sign-in page of a signed-in browser lands on
    /auth/account, never on the evil site."""
    email = account(handoff, mail)
    b = Browser(handoff)
    on_account_page(handoff, b.sign_in(email))
    for bad in REFUSED:
        on_account_page(handoff, b.get("/auth/sign-in", params={"return_to": bad, "state": "s1"}))
    for raw in REFUSED_RAW:
        on_account_page(handoff, b.get(f"/auth/sign-in?return_to={raw}&state=s1"))


def test_a_password_sign_in_never_follows_a_return_to_off_the_list(handoff, mail):
    """The same refusals at the POST: the sign-in succeeds and ends on /auth/account."""
    email = account(handoff, mail)
    for bad in REFUSED:
        to = "/auth/sign-in?" + urlencode({"return_to": bad, "state": "s1"})
        on_account_page(handoff, Browser(handoff).sign_in(email, to=to))
    for raw in REFUSED_RAW:
        on_account_page(handoff, Browser(handoff).sign_in(email, to=f"/auth/sign-in?return_to={raw}&state=s1"))


def test_an_allowed_return_to_gets_a_code_and_the_same_state(handoff, mail, key):
    """Listed origins are compared after lowercasing scheme and host and
    dropping the default port; the return_to's own query is kept."""
    email = account(handoff, mail)
    for return_to in (RETURN_TO, "HTTPS://APP.TEST/cb", "https://app.test:443/cb", APP + "/cb?next=%2Fdash"):
        b = Browser(handoff)
        query = hq(return_to)
        r = b.sign_in(email, params=query)
        code = handed_off(r, return_to, query["state"])
        if "next=" in return_to:
            assert query_of(r.headers["location"])["next"] == "/dash"
        # The app names the return_to of its link; case and default port aside, exactly.
        assert exchange(handoff, key, code, return_to).status_code == 200


def test_a_signed_in_browser_is_handed_off_at_once(handoff, mail, key):
    """Already signed in: GET /auth/sign-in with an allowed return_to 303s
    straight to the app with a fresh code."""
    email = account(handoff, mail)
    b = Browser(handoff)
    on_account_page(handoff, b.sign_in(email))
    query = hq()
    code = handed_off(b.get("/auth/sign-in", params=query), RETURN_TO, query["state"])
    assert exchange(handoff, key, code).json()["email"] == email


def test_an_apps_token_planted_as_the_cookie_is_no_session(handoff, mail, key):
    """App A holds a user's token (from its exchange, or from /v1/login on
    the user's behalf). Planted as the pages' session cookie it is no
    session: the sign-in page of app B's hand-off asks for a password and
    hands B no code; the account page and sign-out know nobody; the token
    still works as A's bearer. The browser's own session is no bearer
    token, and signing out of the pages leaves the apps' sessions be."""
    # App A: a person signs in through the pages and A trades its code.
    a = hand_off(handoff, mail)
    a_token = exchange(handoff, key, a.code, verifier=a.verifier).json()["token"]
    login = handoff.login(a.email, PASSWORD)
    assert login.status_code == 200, login.text
    api_token = login.json()["token"]
    SECRETS_SEEN.extend([a_token, api_token])
    b_return_to = OTHER + "/callback"  # app B's own callback, state and challenge
    _, b_challenge = pkce()
    for token in (a_token, api_token):
        attacker = Browser(handoff)
        attacker.jar[SESSION] = token
        query = hq(b_return_to, challenge=b_challenge)
        r = attacker.get("/auth/sign-in", params=query)
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        assert Html(r.text).forms.get("sign-in") is not None, "the sign-in form, not a hand-off"
        assert "code=" not in r.headers.get("location", "")
        # The account page sends it to sign in, and clears the cookie.
        r = attacker.get("/auth/account")
        assert r.status_code == 303 and r.headers["location"] == "/auth/sign-in", r.headers
        assert SESSION not in attacker.jar
        # Sign-out with it planted again ends nothing.
        attacker.jar[SESSION] = token
        assert attacker.submit("/auth/sign-in", "sign-in", {}, to="/auth/sign-out").status_code == 303
        assert handoff.me(token=token).status_code == 200, "still the app's bearer token"
    # The browser's own session: no bearer token; its sign-out leaves A's be.
    browser_session = a.browser.jar[SESSION]
    problem(handoff.me(token=browser_session), 401, "unauthorized")
    assert a.browser.submit("/auth/account", "sign-out", {}).status_code == 303
    for token in (a_token, api_token):
        assert handoff.me(token=token).status_code == 200


def test_the_hand_off_query_survives_sign_up_verify_and_sign_in(handoff, mail, key):
    """Every page keeps the hand-off query in its form actions and links, from
    the sign-up form to the hand-off."""
    verifier, challenge = pkce()
    query = hq(challenge=challenge)
    b = Browser(handoff)
    email = unique_email("survives")
    action, _ = b.form("/auth/sign-up", "sign-up", params=query)
    assert urlsplit(action).path == "/auth/sign-up" and query_of(action) == query
    r = b.submit("/auth/sign-up", "sign-up", {"email": email, "password": PASSWORD}, params=query)
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/verify", r.headers
    assert query_of(r.headers["location"]).items() >= query.items()
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    action, form = b.form(r.headers["location"], "verify")
    assert query_of(action).items() >= query.items()
    # The browser that signed up is signed in by its code, and goes on to
    # the app: no second password prompt in the middle of the journey.
    code = handed_off(b.post(action, {**form.fields, "email": email, "code": code}), RETURN_TO, query["state"])
    r = exchange(handoff, key, code, verifier=verifier)
    assert r.status_code == 200 and r.json()["email"] == email, r.text


def test_a_verification_in_another_browser_goes_on_to_sign_in(handoff, mail, key):
    """The code typed in a browser that did not sign up verifies the
    address and keeps the password, but signs nobody in: the sign-in page,
    with the hand-off query, and the password, then the hand-off."""
    verifier, challenge = pkce()
    query = hq(challenge=challenge)
    email = unique_email("elsewhere")
    r = Browser(handoff).submit("/auth/sign-up", "sign-up", {"email": email, "password": PASSWORD}, params=query)
    assert r.status_code == 303, r.text[:500]
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    b = Browser(handoff)
    action, form = b.form(r.headers["location"], "verify")
    r = b.post(action, {**form.fields, "email": email, "code": code})
    assert r.status_code == 303, r.text[:500]
    assert urlsplit(r.headers["location"]).path == "/auth/sign-in"
    assert query_of(r.headers["location"]) == {"notice": "verified", **query}
    assert "__Host-otp_session" not in b.jar
    page = Html(b.follow(b.get(r.headers["location"])).text)
    action = page.forms["sign-in"].attrs["action"]
    assert query_of(action).items() >= query.items()
    links = {urlsplit(a.attrs["href"]).path: a.attrs["href"] for a in page.all("a") if a.attrs.get("href")}
    for path in ("/auth/sign-up", "/auth/forgot"):
        assert query_of(links[path]).items() >= query.items(), links
    code = handed_off(b.sign_in(email, params=query), RETURN_TO, query["state"])
    r = exchange(handoff, key, code, verifier=verifier)
    assert r.status_code == 200 and r.json()["email"] == email, r.text


def test_a_code_sign_in_hands_off_too(handoff, mail, key):
    """Email me a code → /auth/code?HQ → the code → the hand-off."""
    email = account(handoff, mail)
    query = hq()
    b = Browser(handoff)
    r = b.submit("/auth/sign-in", "sign-in", {"email": email, "password": "", "via": "code"}, params=query)
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/code", r.headers
    assert query_of(r.headers["location"]).items() >= query.items()
    mail.wait_for(email, 2)
    code = mail.code(email)
    SECRETS_SEEN.append(code)
    action, form = b.form(r.headers["location"], "code-form")
    handed = handed_off(b.post(action, {**form.fields, "email": email, "code": code}), RETURN_TO, query["state"])
    assert exchange(handoff, key, handed).json()["email"] == email


# The exchange ------------------------------------------------------------------

def test_the_exchange_gives_the_app_the_address_and_a_session(handoff, mail, key):
    """200 with exactly {email, verified, token, token_type, expires_at}; the
    token works on /v1/me; the return_to may differ only in the case of its
    scheme and host."""
    h = hand_off(handoff, mail)
    r = exchange(handoff, key, h.code, "HTTPS://App.Test/cb", h.verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"email", "verified", "token", "token_type", "expires_at"}, body
    assert body["email"] == h.email and body["verified"] is True and body["token_type"] == "Bearer"
    assert body["expires_at"]
    SECRETS_SEEN.append(body["token"])
    assert body["token"] != h.browser.jar[SESSION]  # a new session, not the browser's
    me = handoff.me(token=body["token"])
    assert me.status_code == 200 and me.json()["email"] == h.email


def test_a_code_works_once(handoff, mail, key):
    h = hand_off(handoff, mail)
    assert exchange(handoff, key, h.code, verifier=h.verifier).status_code == 200
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


def test_a_made_up_code_is_invalid(handoff, key):
    problem(exchange(handoff, key, secrets.token_urlsafe(32)), 400, "invalid_code")


def test_a_hand_off_code_lives_sixty_seconds(handoff, mail):
    """The row the hand-off writes expires 60 s after it is created."""
    with handoff.db() as db:
        before = set(db.execute("SELECT * FROM handoffs").fetchall())
    hand_off(handoff, mail)
    with handoff.db() as db:
        cursor = db.execute("SELECT * FROM handoffs")
        columns = [c[0] for c in cursor.description]
        new = [row for row in cursor.fetchall() if row not in before]
    assert len(new) == 1, new
    row = dict(zip(columns, new[0]))
    assert row["expires_at"] - row["created_at"] == 60, row


def test_an_expired_code_is_refused(handoff, mail, key):
    h = hand_off(handoff, mail)
    handoff.sql(command="UPDATE handoffs SET expires_at = 0")
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "expired_code")


def test_a_wrong_key_does_not_consume_the_code(handoff, mail, key):
    """A wrong, missing or revoked key is 401, and the code still works with
    the right key afterwards."""
    h = hand_off(handoff, mail)
    revoked = create_key(handoff, channels=["email"], name="revoked app")
    assert handoff.admin_revoke_key(revoked["id"], headers=ADMIN_AUTH).status_code == 204
    for headers in (auth("otpk_" + "A" * 43), auth(revoked["key"]), {}, auth(ADMIN_TOKEN)):
        r = handoff.auth_exchange(h.code, RETURN_TO, code_verifier=h.verifier, headers=headers)
        problem(r, 401, "unauthorized")
    r = exchange(handoff, key, h.code, verifier=h.verifier)
    assert r.status_code == 200 and r.json()["email"] == h.email, r.text


def test_a_wrong_verifier_consumes_the_code(handoff, mail, key):
    h = hand_off(handoff, mail)
    wrong, _ = pkce()
    problem(exchange(handoff, key, h.code, verifier=wrong), 400, "invalid_code_verifier")
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


def test_a_missing_verifier_is_refused_when_a_challenge_was_given(handoff, mail, key):
    h = hand_off(handoff, mail)
    problem(exchange(handoff, key, h.code), 400, "invalid_code_verifier")
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


def test_an_unexpected_verifier_is_refused(handoff, mail, key):
    """No challenge was given: a verifier is one too many."""
    h = hand_off(handoff, mail, challenge=False)
    verifier, _ = pkce()
    problem(exchange(handoff, key, h.code, verifier=verifier), 400, "invalid_code_verifier")
    problem(exchange(handoff, key, h.code), 400, "invalid_code")


def test_a_code_is_bound_to_its_return_origin(handoff, mail, key):
    """Another origin, even a listed one, is a mismatch, and consumes the code."""
    h = hand_off(handoff, mail)
    problem(exchange(handoff, key, h.code, OTHER + "/cb", h.verifier), 400, "return_to_mismatch")
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


def test_a_code_is_bound_to_its_exact_return_to(handoff, mail, key):
    """As OAuth binds a code to its redirect_uri: a link that sends the code
    to another path of the app (one that might leak it) gives a code the
    app's real callback cannot trade."""
    h = hand_off(handoff, mail, return_to=APP + "/forum/thread?id=7")
    problem(exchange(handoff, key, h.code, RETURN_TO, h.verifier), 400, "return_to_mismatch")
    h = hand_off(handoff, mail, return_to=APP + "/forum/thread?id=7")
    assert exchange(handoff, key, h.code, APP + "/forum/thread?id=7", h.verifier).status_code == 200


def test_signing_out_before_the_exchange_voids_the_code(handoff, mail, key):
    h = hand_off(handoff, mail)
    r = h.browser.submit("/auth/account", "sign-out", {})
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/sign-in", r.headers
    assert SESSION not in h.browser.jar
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


def test_a_password_reset_before_the_exchange_voids_the_code(handoff, mail, key):
    h = hand_off(handoff, mail)
    assert handoff.password_reset(h.email).status_code == 202
    mail.wait_for(h.email, 2)
    code = mail.code(h.email)
    SECRETS_SEEN.extend([code, "a brand new passphrase"])
    assert handoff.password_reset_confirm(h.email, code, "a brand new passphrase").status_code == 200
    problem(exchange(handoff, key, h.code, verifier=h.verifier), 400, "invalid_code")


# CSRF --------------------------------------------------------------------------

def sign_up_post(w, mail, origin=True, fields=None, cookies=None):
    """A sign-up POST with the parts of its defence given; no mail may go out
    for a refused one."""
    email = unique_email("csrf")
    b = Browser(w)
    action, form = b.form("/auth/sign-up", "sign-up")
    data = {**form.fields, "email": email, "password": PASSWORD, **(fields or {})}
    data = {k: v for k, v in data.items() if v is not None}
    if cookies is not None:
        b.jar = cookies
    return email, b.post(action, data, origin=origin)


def test_a_post_without_origin_or_from_another_origin_is_refused(handoff, mail):
    """Nothing happens: no account, no mail."""
    for origin in (None, "https://evil.example", "null", "http://127.0.0.1:1", handoff.url.replace("http:", "https:")):
        email, r = sign_up_post(handoff, mail, origin=origin)
        refused(r)
        mail.expect(email, 0)
    email, r = sign_up_post(handoff, mail)
    assert r.status_code == 303, r.text[:500]  # the same POST with the right Origin goes through
    mail.wait_for(email)


def test_a_post_without_a_valid_csrf_field_is_refused(handoff, mail):
    other = Browser(handoff)
    _, other_form = other.form("/auth/sign-up", "sign-up")
    theirs = other_form.fields["csrf"]
    assert theirs
    for fields, cookies in (({"csrf": None}, None), ({"csrf": ""}, None), ({"csrf": "x" * 64}, None),
                            ({"csrf": theirs}, None),  # made for another browser's cookie
                            ({}, {})):  # the field without its cookie
        email, r = sign_up_post(handoff, mail, fields=fields, cookies=cookies)
        refused(r)
        mail.expect(email, 0)
    # The other browser's own pair is accepted.
    email = unique_email("csrf")
    r = other.submit("/auth/sign-up", "sign-up", {"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    mail.wait_for(email)


# Headers and cookies -----------------------------------------------------------

def csp_of(r):
    header = r.headers.get("content-security-policy")
    assert header, f"no CSP on {r.url}"
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


EXPECTED_CSP = {
    "default-src": {"'none'"}, "style-src": {"'self'"}, "script-src": {"'self'"}, "img-src": {"'self'"},
    "form-action": {"'self'", APP, OTHER}, "frame-ancestors": {"'none'"}, "base-uri": {"'none'"},
}


def well_formed_page(r):
    """text/html; charset=utf-8, the CSP of the spec, <html lang="en">, one
    <main> and one <h1>."""
    assert r.headers["content-type"].lower().replace(" ", "") == "text/html;charset=utf-8", (r.url, r.headers)
    csp = csp_of(r)
    assert csp["script-src"] == ["'self'"], (r.url, csp)
    assert not any("unsafe" in s for s in csp["script-src"]), (r.url, csp)
    for directive, sources in EXPECTED_CSP.items():
        if directive == "form-action" and "/problems/" in r.url:
            # A problem page has no form: its policy lets forms go nowhere else.
            assert csp[directive] == ["'self'"], (r.url, csp)
            continue
        assert set(csp.get(directive, [])) == sources, (r.url, directive, csp)
    page = Html(r.text)
    assert [h.attrs.get("lang") for h in page.all("html")] == ["en"], r.url
    assert len(page.all("main")) == 1 and len(page.all("h1")) == 1, r.url


def test_every_page_is_html_with_the_csp(handoff, mail):
    """All pages, signed out, signed in, as admin, and the error pages."""
    email = account(handoff, mail)
    b = Browser(handoff)
    pages = ["/auth/sign-in", "/auth/sign-up", "/auth/verify", "/auth/code", "/auth/forgot", "/auth/reset",
             "/auth/sign-in?" + urlencode(hq()), "/admin/sign-in", "/problems/invalid-code",
             "/problems/invalid-code-verifier"]
    for path in pages:
        r = b.get(path)
        assert r.status_code == 200, (path, r.status_code)
        well_formed_page(r)
    r = b.get("/problems/no-such-problem")
    assert r.status_code == 404
    well_formed_page(r)
    r = b.sign_in(email, "not the password")
    assert r.status_code == 401
    well_formed_page(r)
    assert "The email or password is wrong." in Html.text(Html(r.text).by_id("error"))
    assert b.sign_in(email).status_code == 303
    r = b.get("/auth/account")
    assert r.status_code == 200
    well_formed_page(r)
    assert Html.text(Html(r.text).by_id("account-email")) == email
    r = b.post("/auth/sign-out", {}, origin=None)
    assert r.status_code == 403
    well_formed_page(r)
    admin = Browser(handoff)
    assert admin.submit("/admin/sign-in", "admin-sign-in", {"token": ADMIN_TOKEN}).status_code == 303
    for path in ("/admin", "/admin/events", "/admin/keys", "/admin/clients"):
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code)
        well_formed_page(r)


def test_pages_that_need_a_session_send_the_browser_to_sign_in(handoff):
    b = Browser(handoff)
    for path, to in (("/auth", "/auth/sign-in"), ("/auth/account", "/auth/sign-in"), ("/admin", "/admin/sign-in"),
                     ("/admin/events", "/admin/sign-in"), ("/admin/keys", "/admin/sign-in"),
                     ("/admin/clients", "/admin/sign-in")):
        r = b.get(path)
        assert r.status_code == 303 and urlsplit(r.headers["location"]).path == to, (path, r.status_code, r.headers)
    r = b.submit("/admin/sign-in", "admin-sign-in", {"token": "not-the-admin-token"})
    assert r.status_code == 401 and Html(r.text).by_id("error") is not None
    assert ADMIN not in b.jar


def cookie_attributes(header):
    name, _, rest = header.partition("=")
    value, *attrs = rest.split(";")
    parsed = {}
    for attr in attrs:
        key, _, val = attr.strip().partition("=")
        parsed[key.lower()] = val
    return name.strip(), value, parsed


def test_cookies_are_host_only_secure_httponly_and_lax(handoff, mail):
    """Every cookie a flow sets or clears: `__Host-`, Secure, HttpOnly,
    SameSite=Lax, Path=/, no Domain; the session cookie is the session
    token, the admin cookie is not the admin token."""
    b = Browser(handoff)
    email = unique_email("cookies")
    r = b.submit("/auth/sign-up", "sign-up", {"email": email, "password": PASSWORD})
    assert r.status_code == 303
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    action, form = b.form(r.headers["location"], "verify")
    # The browser that signed up is signed in by its code.
    assert b.post(action, {**form.fields, "email": email, "code": code}).status_code == 303
    session = b.jar[SESSION]
    assert b.get("/auth/account").status_code == 200
    assert handoff.me(token=session).status_code == 401, "a browser's session is no bearer token"
    assert b.submit("/auth/account", "sign-out", {}).status_code == 303
    assert b.submit("/admin/sign-in", "admin-sign-in", {"token": ADMIN_TOKEN}).status_code == 303
    assert ADMIN_TOKEN not in b.jar[ADMIN]
    max_ages = {SESSION: "604800", ADMIN: "1800", EMAIL: "900"}
    seen = set()
    for header in b.set_cookies:
        name, value, attrs = cookie_attributes(header)
        seen.add(name)
        assert name.startswith("__Host-"), header
        assert "secure" in attrs and "httponly" in attrs, header
        assert attrs.get("samesite", "").lower() == "lax", header
        assert attrs.get("path") == "/" and "domain" not in attrs, header
        if value and name in max_ages and attrs.get("max-age") != "0":
            assert attrs.get("max-age") == max_ages[name], header
    assert {SESSION, CSRF, EMAIL, ADMIN} <= seen, seen
    cleared = [cookie_attributes(h) for h in b.set_cookies if h.startswith(SESSION + "=")][-1]
    assert not cleared[1] or cleared[2].get("max-age") == "0", cleared


# Problem types -----------------------------------------------------------------

def problem_page(w, body):
    """The problem's type URI is a page of the worker titled like the problem."""
    assert body["type"] == f"{w.url}/problems/{body['code'].replace('_', '-')}", body
    r = requests.get(body["type"], timeout=30)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (body["type"], r.status_code)
    assert [Html.text(h) for h in Html(r.text).all("h1")] == [body["title"]], (body, r.text[:500])


def test_problem_types_are_pages_of_the_worker(handoff, mail, key):
    bodies = [
        problem(handoff.login_code_verify(unique_email("ghost"), "123456"), 400, "invalid_code"),
        problem(handoff.login(unique_email("ghost"), "not the password"), 401, "invalid_credentials"),
        problem(handoff.me(), 401, "unauthorized"),
        problem(handoff.get("/v1/no-such-route"), 404, "not_found"),
        problem(handoff.call("login", {}), 400, "invalid_request"),
    ]
    h = hand_off(handoff, mail)
    bodies.append(problem(exchange(handoff, key, h.code, OTHER + "/cb", h.verifier), 400, "return_to_mismatch"))
    h = hand_off(handoff, mail)
    bodies.append(problem(exchange(handoff, key, h.code), 400, "invalid_code_verifier"))
    for body in bodies:
        problem_page(handoff, body)
    r = requests.get(handoff.url + "/problems/no-such-problem", timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert re.search(r"<h1", r.text)


def test_the_pages_wear_the_apps_name_and_accent(handoff):
    """APP_NAME in every page's header and title; ACCENT_COLOR at the top of
    the worker's stylesheet, the only one the pages load."""
    page = requests.get(handoff.url + "/auth/sign-in", timeout=30)
    assert '<span class="brand">Acme</span>' in page.text and "<title>Sign in · Acme</title>" in page.text
    css = requests.get(handoff.url + "/assets/style.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.text.startswith(":root { --accent: #0b7a75; }"), css.text[:80]
