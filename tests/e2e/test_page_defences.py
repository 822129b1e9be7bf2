"""The pages' defences, over plain HTTP, as a browser meets them: the only
place a sign-in leaves the worker for is an OpenID Connect client's
registered redirect URI, carried by a sealed request (a `return_to`, or a
forged or changed request, is ignored); the request survives every page
of the journey; an app's token planted as the cookie is no session; CSRF
refusals, the CSP and the cookies; problem type URIs that are pages of the
worker."""

import base64
import hashlib
import re
import secrets
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from conftest import OIDC_KEYS, SECRETS_SEEN
from harness import ADMIN_TOKEN, Worker, problem, unique_email

APP = "https://app.test"
OTHER = "https://other.test"  # another client's
REDIRECT_URI = APP + "/cb"
PASSWORD = "correct horse battery"
SESSION, CSRF, EMAIL, ADMIN = "__Host-otp_session", "__Host-otp_csrf", "__Host-otp_email", "__Host-otp_admin"
ADMIN_AUTH = {"authorization": f"Bearer {ADMIN_TOKEN}"}
REFUSAL = "This form could not be accepted"


@pytest.fixture(scope="module")
def pages(mail):
    """A worker with the OpenID Provider on; its issuer is its own address."""
    w = Worker("defences", mail=mail, vars={"ACCENT_COLOR": "#0B7A75", "RESEND_COOLDOWN_SECONDS": "0",
                                            "MAX_SENDS_PER_HOUR": "1000"},
               secrets={"OIDC_SIGNING_KEYS": OIDC_KEYS}, start=False)
    for _ in range(3):
        w.vars["PUBLIC_BASE_URL"] = w.url
        w.start()
        if w.vars["PUBLIC_BASE_URL"] == w.url:
            break
        w.stop()
    yield w
    w.stop()


def register_client(w, redirect_uri):
    r = w.call("admin_create_oidc_client", {"name": "Notes", "type": "confidential", "redirect_uris": [redirect_uri]},
               headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 201, r.text
    SECRETS_SEEN.append(r.json()["client_secret"])
    return r.json()


@pytest.fixture(scope="module")
def client(pages):
    """The app: a confidential client whose redirect URI is REDIRECT_URI."""
    return register_client(pages, REDIRECT_URI)


@pytest.fixture(scope="module")
def other_client(pages):
    return register_client(pages, OTHER + "/callback")


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
        leaves it (to a client)."""
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
    email = unique_email("pages")
    assert w.register(email, PASSWORD).status_code == 202
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    assert w.verify_email(email, code).status_code == 200
    return email


def pkce():
    verifier = secrets.token_urlsafe(48)  # 64 characters of A-Z a-z 0-9 - _
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(client, state=None, challenge=None):
    params = {"client_id": client["client_id"], "redirect_uri": client["redirect_uris"][0], "response_type": "code",
              "scope": "openid email", "state": state or secrets.token_urlsafe(12)}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    return params


def query_of(url):
    q = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in q.values()), url
    return {k: v[0] for k, v in q.items()}


def sign_in_link(b, client, state=None, challenge=None):
    """Where /oauth/authorize sends a browser that is not signed in: the
    sign-in page with the sealed request (`oauth=`)."""
    r = b.get("/oauth/authorize", params=authorize_params(client, state, challenge))
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["location"]
    assert urlsplit(location).path == "/auth/sign-in" and set(query_of(location)) == {"oauth"}, location
    return location


def back_at_client(r, client, state):
    """The code of a 303 to the client's redirect URI with `code`, the same
    `state` and our `iss`."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["location"]
    assert location.startswith(client["redirect_uris"][0] + "?"), location
    query = query_of(location)
    assert query["state"] == state and query["iss"], location
    SECRETS_SEEN.append(query["code"])
    return query["code"]


def on_account_page(w, r):
    """A 303 to /auth/account of the worker itself, and nowhere near evil."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    location = r.headers["location"]
    target = urlsplit(urljoin(w.url + "/", location))
    assert f"{target.scheme}://{target.netloc}" == w.url and target.path == "/auth/account", location
    assert "evil" not in location.lower(), location


def signed_in_code(w, mail, client):
    """A fresh account signs in from a fresh browser for the client."""
    email = account(w, mail)
    b = Browser(w)
    state = secrets.token_urlsafe(12)
    code = back_at_client(b.sign_in(email, to=sign_in_link(b, client, state)), client, state)
    return SimpleNamespace(browser=b, email=email, code=code)


def token(w, client, code):
    return requests.post(w.url + "/oauth/token", auth=(client["client_id"], client["client_secret"]), timeout=30,
                         data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": client["redirect_uris"][0]})


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
    "https://app.test/cb",  # even the client's own redirect URI: only a sealed request sends anywhere
]
# The same, written into the query string as they are (not encoded again).
REFUSED_RAW = ["//evil.example", "%2F%2Fevil.example", "https:%2F%2Fevil.example", "/%5Cevil.example",
               "https://evil.example%40app.test", "https:/%2Fevil.example"]


def forged_requests(b, client):
    """`oauth` values that are not a request the worker sealed: made up, or
    a real one with its body or seal changed."""
    real = query_of(sign_in_link(b, client))["oauth"]
    body, seal = real.split(".")
    other = base64.urlsafe_b64encode(
        base64.urlsafe_b64decode(body + "==").replace(b"app.test", b"evil.example")).rstrip(b"=").decode()
    return ["x.y", "", real[:-2] + ("AA" if not real.endswith("AA") else "BB"), f"{other}.{seal}", body]


def test_a_signed_in_browser_never_follows_a_return_to_or_a_forged_request(pages, mail, client):
    """Every open-redirect shape (encoded once, or written raw into the
    query) as `return_to`, and every forged request: the sign-in page of a
    signed-in browser lands on /auth/account, never anywhere else."""
    email = account(pages, mail)
    b = Browser(pages)
    on_account_page(pages, b.sign_in(email))
    for bad in REFUSED:
        on_account_page(pages, b.get("/auth/sign-in", params={"return_to": bad, "state": "s1"}))
    for raw in REFUSED_RAW:
        on_account_page(pages, b.get(f"/auth/sign-in?return_to={raw}&state=s1"))
    for forged in forged_requests(Browser(pages), client):
        on_account_page(pages, b.get("/auth/sign-in", params={"oauth": forged}))


def test_a_password_sign_in_never_follows_a_return_to_or_a_forged_request(pages, mail, client):
    """The same refusals at the POST: the sign-in succeeds and ends on /auth/account."""
    email = account(pages, mail)
    for bad in REFUSED:
        to = "/auth/sign-in?" + urlencode({"return_to": bad, "state": "s1"})
        on_account_page(pages, Browser(pages).sign_in(email, to=to))
    for raw in REFUSED_RAW:
        on_account_page(pages, Browser(pages).sign_in(email, to=f"/auth/sign-in?return_to={raw}&state=s1"))
    for forged in forged_requests(Browser(pages), client):
        on_account_page(pages, Browser(pages).sign_in(email, to="/auth/sign-in?" + urlencode({"oauth": forged})))


def test_an_apps_token_planted_as_the_cookie_is_no_session(pages, mail, client, other_client):
    """A client holds a person's tokens, an app holds their /v1/login token.
    Planted as the pages' session cookie, none is a session: another
    client's request asks for a password and gets no code; the account
    page and sign-out know nobody; the app's token still works as its
    bearer. The browser's own session is no bearer token, and signing out
    of the pages leaves the app's session be."""
    a = signed_in_code(pages, mail, client)
    tokens = token(pages, client, a.code).json()
    login = pages.login(a.email, PASSWORD)
    assert login.status_code == 200, login.text
    api_token = login.json()["token"]
    SECRETS_SEEN.extend([tokens["access_token"], tokens["id_token"], api_token])
    for planted in (api_token, tokens["access_token"], tokens["id_token"]):
        attacker = Browser(pages)
        attacker.jar[SESSION] = planted
        r = attacker.get("/oauth/authorize", params=authorize_params(other_client))
        assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/sign-in", r.headers
        r = attacker.get(r.headers["location"])
        assert r.status_code == 200, (r.status_code, r.headers.get("location"))
        assert Html(r.text).forms.get("sign-in") is not None, "the sign-in form, not a code"
        # The account page sends it to sign in, and clears the cookie.
        r = attacker.get("/auth/account")
        assert r.status_code == 303 and r.headers["location"] == "/auth/sign-in", r.headers
        assert SESSION not in attacker.jar
        # Sign-out with it planted again ends nothing.
        attacker.jar[SESSION] = planted
        assert attacker.submit("/auth/sign-in", "sign-in", {}, to="/auth/sign-out").status_code == 303
    assert pages.me(token=api_token).status_code == 200, "still the app's bearer token"
    # The browser's own session: no bearer token; its sign-out leaves the app's be.
    problem(pages.me(token=a.browser.jar[SESSION]), 401, "unauthorized")
    assert a.browser.submit("/auth/account", "sign-out", {}).status_code == 303
    assert pages.me(token=api_token).status_code == 200


def test_the_request_survives_sign_up_verify_and_sign_in(pages, mail, client):
    """Every page keeps the sealed request in its form actions and links,
    from the sign-up form to the client's redirect URI."""
    b = Browser(pages)
    state = secrets.token_urlsafe(12)
    link = sign_in_link(b, client, state)
    carried = query_of(link)
    page = Html(b.get(link).text)
    signup = next(a.attrs["href"] for a in page.all("a") if urlsplit(a.attrs.get("href", "")).path == "/auth/sign-up")
    assert query_of(signup) == carried
    email = unique_email("survives")
    action, _ = b.form(signup, "sign-up")
    assert urlsplit(action).path == "/auth/sign-up" and query_of(action) == carried
    r = b.submit(signup, "sign-up", {"email": email, "password": PASSWORD})
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/verify", r.headers
    assert query_of(r.headers["location"]).items() >= carried.items()
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    action, form = b.form(r.headers["location"], "verify")
    assert query_of(action).items() >= carried.items()
    # The browser that signed up is signed in by its code, and goes on to
    # the client: no second password prompt in the middle of the journey.
    code = back_at_client(b.post(action, {**form.fields, "email": email, "code": code}), client, state)
    r = token(pages, client, code)
    assert r.status_code == 200, r.text
    SECRETS_SEEN.extend([r.json()["access_token"], r.json()["id_token"]])


def test_a_verification_in_another_browser_goes_on_to_sign_in(pages, mail, client):
    """The code typed in a browser that did not sign up verifies the
    address and keeps the password, but signs nobody in: the sign-in page,
    with the request, and the password, then the client."""
    first = Browser(pages)
    state = secrets.token_urlsafe(12)
    carried = query_of(sign_in_link(first, client, state))
    email = unique_email("elsewhere")
    r = first.submit("/auth/sign-up?" + urlencode(carried), "sign-up", {"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    code = mail.code(email)
    SECRETS_SEEN.extend([code, PASSWORD])
    b = Browser(pages)
    action, form = b.form(r.headers["location"], "verify")
    r = b.post(action, {**form.fields, "email": email, "code": code})
    assert r.status_code == 303, r.text[:500]
    assert urlsplit(r.headers["location"]).path == "/auth/sign-in"
    assert query_of(r.headers["location"]) == {"notice": "verified", **carried}
    assert SESSION not in b.jar
    page = Html(b.follow(b.get(r.headers["location"])).text)
    assert query_of(page.forms["sign-in"].attrs["action"]).items() >= carried.items()
    links = {urlsplit(a.attrs["href"]).path: a.attrs["href"] for a in page.all("a") if a.attrs.get("href")}
    for path in ("/auth/sign-up", "/auth/forgot"):
        assert query_of(links[path]).items() >= carried.items(), links
    back_at_client(b.sign_in(email, to="/auth/sign-in?" + urlencode(carried)), client, state)


def test_a_code_sign_in_goes_back_to_the_client_too(pages, mail, client):
    """Email me a code → /auth/code?oauth=… → the code → the client."""
    email = account(pages, mail)
    b = Browser(pages)
    state = secrets.token_urlsafe(12)
    link = sign_in_link(b, client, state)
    r = b.submit(link, "sign-in", {"email": email, "password": "", "via": "code"})
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/code", r.headers
    assert query_of(r.headers["location"]).items() >= query_of(link).items()
    mail.wait_for(email, 2)
    code = mail.code(email)
    SECRETS_SEEN.append(code)
    action, form = b.form(r.headers["location"], "code-form")
    back_at_client(b.post(action, {**form.fields, "email": email, "code": code}), client, state)


# The code's life ----------------------------------------------------------------

def test_signing_out_before_the_token_request_voids_the_code(pages, mail, client):
    h = signed_in_code(pages, mail, client)
    r = h.browser.submit("/auth/account", "sign-out", {})
    assert r.status_code == 303 and urlsplit(r.headers["location"]).path == "/auth/sign-in", r.headers
    assert SESSION not in h.browser.jar
    r = token(pages, client, h.code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_a_password_reset_before_the_token_request_voids_the_code(pages, mail, client):
    h = signed_in_code(pages, mail, client)
    assert pages.password_reset(h.email).status_code == 202
    mail.wait_for(h.email, 2)
    code = mail.code(h.email)
    SECRETS_SEEN.extend([code, "a brand new passphrase"])
    assert pages.password_reset_confirm(h.email, code, "a brand new passphrase").status_code == 200
    r = token(pages, client, h.code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


def test_a_code_lives_sixty_seconds(pages, mail, client):
    """The row the sign-in writes expires 60 s after it is created, and a
    code past it is refused."""
    h = signed_in_code(pages, mail, client)
    with pages.db() as db:
        life = db.execute("SELECT expires_at - created_at FROM oauth_codes ORDER BY created_at DESC LIMIT 1").fetchone()
    assert life == (60,)
    pages.sql(command="UPDATE oauth_codes SET expires_at = 0 WHERE used_at IS NULL")
    r = token(pages, client, h.code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


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


def test_a_post_without_origin_or_from_another_origin_is_refused(pages, mail):
    """Nothing happens: no account, no mail."""
    for origin in (None, "https://evil.example", "null", "http://127.0.0.1:1", pages.url.replace("http:", "https:")):
        email, r = sign_up_post(pages, mail, origin=origin)
        refused(r)
        mail.expect(email, 0)
    email, r = sign_up_post(pages, mail)
    assert r.status_code == 303, r.text[:500]  # the same POST with the right Origin goes through
    mail.wait_for(email)


def test_a_post_without_a_valid_csrf_field_is_refused(pages, mail):
    other = Browser(pages)
    _, other_form = other.form("/auth/sign-up", "sign-up")
    theirs = other_form.fields["csrf"]
    assert theirs
    for fields, cookies in (({"csrf": None}, None), ({"csrf": ""}, None), ({"csrf": "x" * 64}, None),
                            ({"csrf": theirs}, None),  # made for another browser's cookie
                            ({}, {})):  # the field without its cookie
        email, r = sign_up_post(pages, mail, fields=fields, cookies=cookies)
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
    "form-action": {"'self'"}, "frame-ancestors": {"'none'"}, "base-uri": {"'none'"},
}


def well_formed_page(r, form_action=("'self'",)):
    """text/html; charset=utf-8, the CSP of the spec (a page that signs in
    for a client may also post on to its redirect URI's origin), <html
    lang="en">, one <main> and one <h1>."""
    assert r.headers["content-type"].lower().replace(" ", "") == "text/html;charset=utf-8", (r.url, r.headers)
    csp = csp_of(r)
    assert csp["script-src"] == ["'self'"], (r.url, csp)
    assert not any("unsafe" in s for s in csp["script-src"]), (r.url, csp)
    for directive, sources in EXPECTED_CSP.items():
        if directive == "form-action" and "/problems/" in r.url:
            # A problem page has no form: its policy lets forms go nowhere else.
            assert csp[directive] == ["'self'"], (r.url, csp)
            continue
        expected = set(form_action) if directive == "form-action" else sources
        assert set(csp.get(directive, [])) == expected, (r.url, directive, csp)
    page = Html(r.text)
    assert [h.attrs.get("lang") for h in page.all("html")] == ["en"], r.url
    assert len(page.all("main")) == 1 and len(page.all("h1")) == 1, r.url


def test_every_page_is_html_with_the_csp(pages, mail, client):
    """All pages, signed out, signed in, as admin, and the error pages."""
    email = account(pages, mail)
    b = Browser(pages)
    paths = ["/auth/sign-in", "/auth/sign-up", "/auth/verify", "/auth/code", "/auth/forgot", "/auth/reset",
             "/admin/sign-in", "/problems/invalid-code", "/problems/csrf-failed"]
    for path in paths:
        r = b.get(path)
        assert r.status_code == 200, (path, r.status_code)
        well_formed_page(r)
    r = b.get(sign_in_link(b, client))
    assert r.status_code == 200
    well_formed_page(r, form_action=("'self'", APP))
    r = b.get("/oauth/authorize", params={**authorize_params(client), "redirect_uri": "https://evil.example/cb"})
    assert r.status_code == 400
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
    admin = Browser(pages)
    assert admin.submit("/admin/sign-in", "admin-sign-in", {"token": ADMIN_TOKEN}).status_code == 303
    for path in ("/admin", "/admin/events", "/admin/keys", "/admin/clients"):
        r = admin.get(path)
        assert r.status_code == 200, (path, r.status_code)
        well_formed_page(r)


def test_pages_that_need_a_session_send_the_browser_to_sign_in(pages):
    b = Browser(pages)
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


def test_cookies_are_host_only_secure_httponly_and_lax(pages, mail):
    """Every cookie a flow sets or clears: `__Host-`, Secure, HttpOnly,
    SameSite=Lax, Path=/, no Domain; the session cookie is the session
    token, the admin cookie is not the admin token."""
    b = Browser(pages)
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
    assert pages.me(token=session).status_code == 401, "a browser's session is no bearer token"
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


def test_problem_types_are_pages_of_the_worker(pages):
    bodies = [
        problem(pages.login_code_verify(unique_email("ghost"), "123456"), 400, "invalid_code"),
        problem(pages.login(unique_email("ghost"), "not the password"), 401, "invalid_credentials"),
        problem(pages.me(), 401, "unauthorized"),
        problem(pages.get("/v1/no-such-route"), 404, "not_found"),
        problem(pages.call("login", {}), 400, "invalid_request"),
    ]
    for body in bodies:
        problem_page(pages, body)
    r = requests.get(pages.url + "/problems/no-such-problem", timeout=30)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert re.search(r"<h1", r.text)


def test_the_pages_wear_the_apps_name_and_accent(pages):
    """APP_NAME in every page's header and title; ACCENT_COLOR at the top of
    the worker's stylesheet, the only one the pages load."""
    page = requests.get(pages.url + "/auth/sign-in", timeout=30)
    assert '<span class="brand">Acme</span>' in page.text and "<title>Sign in · Acme</title>" in page.text
    css = requests.get(pages.url + "/assets/style.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.text.startswith(":root { --accent: #0b7a75; }"), css.text[:80]


def test_only_an_address_in_login_hint_fills_in_the_form(pages, client):
    """`login_hint` comes from another site: an address fills in the
    sign-in form, any other text is dropped."""
    for hint, filled in (("ann@example.com", "ann@example.com"),
                         ("We sent a code to support. Call +1 555 0100", "")):
        b = Browser(pages)
        r = b.get("/oauth/authorize", params={**authorize_params(client), "login_hint": hint})
        assert r.status_code == 303, r.text[:300]
        page = Html(b.get(r.headers["location"]).text)
        assert page.forms["sign-in"].fields["email"] == filled, hint
