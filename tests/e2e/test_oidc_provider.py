"""The OpenID Provider, driven by a client nobody here wrote: Python's
authlib (its framework-free OpenID Connect app, as Flask's and Starlette's
integrations use it) does discovery, builds the authorization URL with
PKCE and a nonce, trades the code, validates the ID token against the
published keys, reads userinfo, refreshes and revokes. The person's part
runs in Chromium on the hosted pages, with a password and with an emailed
code. The negative cases answer as RFC 6749, RFC 7636, RFC 9207 and OpenID
Connect Core say."""

import base64
import json
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuth2Mixin, OAuthError, OpenIDMixin
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from playwright.sync_api import expect

from browser import journey
from conftest import SECRETS_SEEN
from harness import Worker, oidc_signing_keys, problem
from oidc_support import (Callback, node_client, register_client, remember, sign_in_with_password, start_provider,
                          verified_person)

MCP = "https://mcp.example.com/mcp"  # a resource server (RFC 8707) the provider issues tokens for


@pytest.fixture(scope="module")
def provider(mail):
    """A worker whose issuer is its own address, on `localhost` as a browser
    reaches it."""
    w = start_provider("oidc", mail, {"RESEND_COOLDOWN_SECONDS": "0", "MAX_SENDS_PER_HOUR": "1000",
                                      "OIDC_RESOURCES": MCP})
    yield w
    w.stop()


@pytest.fixture(scope="module")
def callback():
    c = Callback()
    yield c
    c.close()


class Framework(FrameworkIntegration):
    """Where a framework would store a refreshed token: the test keeps it."""

    def update_token(self, token, refresh_token=None, access_token=None):
        self.updated = token


class App(OAuth2Mixin, OpenIDMixin, BaseApp):
    """authlib's OpenID Connect client without a web framework: what its
    Flask and Starlette integrations are made of."""
    client_cls = OAuth2Session


def authlib_app(provider, client, auth_method="client_secret_basic", scope="openid email offline_access"):
    return App(Framework("otp"), name="otp", client_id=client["client_id"],
               client_secret=client.get("client_secret"),
               server_metadata_url=provider.issuer + "/.well-known/openid-configuration",
               client_kwargs={"scope": scope, "code_challenge_method": "S256",
                              "token_endpoint_auth_method": auth_method})


def session_of(app):
    """An authlib session bound to the client and the provider's metadata."""
    return app._get_oauth_client(**app.load_server_metadata())


def test_discovery_names_the_endpoints_under_the_issuer(provider):
    for route in ("oidc_discovery", "oauth_metadata"):
        r = provider.call(route)
        assert r.status_code == 200, r.text
        meta = r.json()
        assert meta["issuer"] == provider.issuer
        assert meta["authorization_endpoint"] == provider.issuer + "/oauth/authorize"
        assert meta["jwks_uri"] == provider.issuer + "/.well-known/jwks.json"
        assert meta["code_challenge_methods_supported"] == ["S256"]
        assert "RS256" in meta["id_token_signing_alg_values_supported"]
        assert meta["authorization_response_iss_parameter_supported"] is True
        assert "registration_endpoint" not in meta, "announced only when OIDC_DYNAMIC_REGISTRATION is on"


def test_without_public_base_url_discovery_is_503_naming_it(app):
    r = app.call("oidc_discovery")
    problem(r, 503, "unavailable")
    assert "PUBLIC_BASE_URL" in r.json()["detail"]


def test_authlib_signs_in_with_a_password_and_refreshes_and_revokes(provider, callback, mail, browser):
    client = register_client(provider, callback)
    email, password = verified_person(provider, mail)
    app = authlib_app(provider, client)
    rv = app.create_authorization_url(redirect_uri=callback.uri)
    with journey(browser) as j:
        sign_in_with_password(j, rv["url"], email, password, shot="oidc-sign-in")
        j.page.wait_for_url(callback.uri + "?**")
    back = callback.last()
    assert back["state"] == rv["state"]
    assert back["iss"] == provider.issuer, "RFC 9207: the answer names its issuer"
    token = app.fetch_access_token(redirect_uri=callback.uri, code=back["code"], code_verifier=rv["code_verifier"])
    remember(token)
    claims = app.parse_id_token(token, nonce=rv["nonce"])
    assert claims["email"] == email and claims["email_verified"] is True
    assert claims["amr"] == ["pwd"] and claims["aud"] == client["client_id"]
    assert "@" not in claims["sub"], "sub is an opaque id, never the address"
    info = app.userinfo(token=token)
    assert info == {"sub": claims["sub"], "email": email, "email_verified": True}
    # The access token is a JWT an app checks with the published keys alone.
    header, payload = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                       for part in token["access_token"].split(".")[:2])
    assert header["typ"] == "at+jwt"
    # With offline_access the grant lives as long as its refresh token, not
    # ten minutes like the access token it came with.
    life = provider.db().execute("SELECT expires_at - created_at FROM oauth_grants WHERE id = ?",
                                 (payload["sid"],)).fetchone()
    assert life == (30 * 86_400,)

    session = session_of(app)
    meta = app.load_server_metadata()
    first = token["refresh_token"]
    second = session.refresh_token(meta["token_endpoint"], refresh_token=first)
    remember(second)
    assert second["refresh_token"] != first
    # The rotated token again: refused, and the whole family is revoked.
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(meta["token_endpoint"], refresh_token=first)
    assert refused.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as family:
        session.refresh_token(meta["token_endpoint"], refresh_token=second["refresh_token"])
    assert family.value.error == "invalid_grant"
    r = provider.get("/oauth/userinfo", token=second["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_a_public_client_signs_in_with_an_emailed_code_and_revokes(provider, callback, mail, browser):
    client = register_client(provider, callback, kind="public")
    email, _ = verified_person(provider, mail)
    app = authlib_app(provider, client, auth_method="none")
    rv = app.create_authorization_url(redirect_uri=callback.uri)
    assert "code_challenge=" in rv["url"]
    with journey(browser) as j:
        j.page.goto(rv["url"])
        j.page.fill("input[name=email]", email)
        j.page.click("button[value=code]")
        code = mail.code(email)
        SECRETS_SEEN.append(code)
        j.page.fill("input[name=code]", code)
        j.look("oidc-code")
        j.page.click("form#code-form button[type=submit]")
        j.page.wait_for_url(callback.uri + "?**")
    back = callback.last()
    token = app.fetch_access_token(redirect_uri=callback.uri, code=back["code"], code_verifier=rv["code_verifier"])
    remember(token)
    claims = app.parse_id_token(token, nonce=rv["nonce"])
    assert claims["amr"] == ["otp"] and claims["email"] == email
    session = session_of(app)
    session.revoke_token(app.load_server_metadata()["revocation_endpoint"], token=token["refresh_token"],
                         token_type_hint="refresh_token")
    with pytest.raises(OAuthError):
        session.refresh_token(app.load_server_metadata()["token_endpoint"], refresh_token=token["refresh_token"])
    assert provider.get("/oauth/userinfo", token=token["access_token"]).status_code == 401


def test_a_signed_in_browser_goes_straight_back_and_prompt_login_asks_again(provider, callback, mail, browser):
    client = register_client(provider, callback)
    email, password = verified_person(provider, mail)
    app = authlib_app(provider, client)
    with journey(browser) as j:
        sign_in_with_password(j, app.create_authorization_url(redirect_uri=callback.uri)["url"], email, password)
        j.page.wait_for_url(callback.uri + "?**")
        # Signed in: the next request is answered without a page.
        rv = app.create_authorization_url(redirect_uri=callback.uri)
        j.page.goto(rv["url"])
        j.page.wait_for_url(callback.uri + "?**")
        assert callback.last()["state"] == rv["state"]
        # prompt=login: the sign-in page again, even signed in.
        rv = app.create_authorization_url(redirect_uri=callback.uri, prompt="login")
        j.page.goto(rv["url"])
        expect(j.page.locator("#continues-to")).to_be_visible()
        j.page.fill("input[name=password]", password)
        j.page.click("button[value=password]")
        j.page.wait_for_url(callback.uri + "?**")
        token = app.fetch_access_token(redirect_uri=callback.uri, code=callback.last()["code"],
                                       code_verifier=rv["code_verifier"])
        remember(token)
        claims = app.parse_id_token(token, nonce=rv["nonce"])
        assert claims["auth_time"] >= int(time.time()) - 60


def authorize_url(provider, **params):
    return provider.url + "/oauth/authorize?" + urlencode(params)


def test_an_unregistered_or_near_miss_redirect_uri_gets_a_page_never_a_redirect(provider, callback):
    client = register_client(provider, callback)
    base = {"client_id": client["client_id"], "response_type": "code", "scope": "openid", "state": "s"}
    for redirect_uri in ("https://evil.example/cb", callback.uri + "/", callback.uri.upper(),
                         callback.uri.replace("/cb", "/cb?x=1"), None):
        params = {**base, **({"redirect_uri": redirect_uri} if redirect_uri else {})}
        r = requests.get(authorize_url(provider, **params), allow_redirects=False)
        assert r.status_code == 400 and "location" not in r.headers, redirect_uri
        assert "not valid" in r.text
    r = requests.get(authorize_url(provider, **{**base, "client_id": "oc_" + "x" * 22, "redirect_uri": callback.uri}),
                     allow_redirects=False)
    assert r.status_code == 400 and "location" not in r.headers


def errors_back(provider, params):
    r = requests.get(authorize_url(provider, **params), allow_redirects=False)
    assert r.status_code in (302, 303), r.text
    return {k: v[0] for k, v in parse_qs(urlsplit(r.headers["location"]).query).items()}


def test_errors_go_back_to_a_registered_redirect_uri_with_state_and_iss(provider, callback):
    public = register_client(provider, callback, kind="public")
    base = {"client_id": public["client_id"], "redirect_uri": callback.uri, "response_type": "code",
            "scope": "openid", "state": "xyz"}
    back = errors_back(provider, base)
    assert (back["error"], back["state"], back["iss"]) == ("invalid_request", "xyz", provider.issuer)
    assert "PKCE" in back["error_description"]
    challenge = {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    back = errors_back(provider, {**base, **challenge, "prompt": "none"})
    assert back["error"] == "login_required"
    assert errors_back(provider, {**base, **challenge, "response_type": "token"})["error"] == "unsupported_response_type"
    assert errors_back(provider, {**base, **challenge, "scope": "profile"})["error"] == "invalid_scope"


def token_call(provider, data, auth=None):
    return requests.post(provider.url + "/oauth/token", data=data, auth=auth)


def signed_in_code(provider, callback, mail, browser, client, email=None, password=None, challenge=None):
    """A code for `client`, earned by a person signing in in Chromium."""
    email, password = (email, password) if email else verified_person(provider, mail)
    params = {"client_id": client["client_id"], "redirect_uri": callback.uri, "response_type": "code",
              "scope": "openid email offline_access", "state": "s1", "nonce": "n1", **(challenge or {})}
    with journey(browser) as j:
        sign_in_with_password(j, authorize_url(provider, **params).replace(provider.url, provider.issuer),
                              email, password)
        j.page.wait_for_url(callback.uri + "?**")
    return callback.last()["code"]


def test_a_wrong_secret_is_invalid_client_with_www_authenticate(provider, callback, mail, browser):
    client = register_client(provider, callback)
    code = signed_in_code(provider, callback, mail, browser, client)
    r = token_call(provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri},
                   auth=(client["client_id"], "ocs_wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert r.headers["www-authenticate"].startswith("Basic")
    # client_secret_post, the same secret wrong: 401, no Basic challenge needed.
    r = token_call(provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri,
                              "client_id": client["client_id"], "client_secret": "ocs_wrong"})
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    # A refused client spent nothing: the right secret still trades the code.
    r = token_call(provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri,
                              "client_id": client["client_id"], "client_secret": client["client_secret"]})
    assert r.status_code == 200, r.text
    remember(r.json())


def test_a_replayed_code_is_refused_and_revokes_its_tokens(provider, callback, mail, browser):
    client = register_client(provider, callback)
    code = signed_in_code(provider, callback, mail, browser, client)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri}
    auth = (client["client_id"], client["client_secret"])
    first = token_call(provider, data, auth)
    assert first.status_code == 200, first.text
    remember(first.json())
    again = token_call(provider, data, auth)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert provider.get("/oauth/userinfo", token=first.json()["access_token"]).status_code == 401
    r = token_call(provider, {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}, auth)
    assert r.json()["error"] == "invalid_grant"


def test_pkce_binds_the_code_to_its_verifier(provider, callback, mail, browser):
    client = register_client(provider, callback, kind="public")
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    challenge = {"code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}
    code = signed_in_code(provider, callback, mail, browser, client, challenge=challenge)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri,
            "client_id": client["client_id"]}
    r = token_call(provider, {**data, "code_verifier": "x" * 43})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token_call(provider, {**data, "code_verifier": verifier})
    assert r.json()["error"] == "invalid_grant", "a wrong verifier spent the code"


def test_a_refresh_token_of_client_a_is_refused_to_client_b(provider, callback, mail, browser):
    a = register_client(provider, callback)
    b = register_client(provider, callback)
    code = signed_in_code(provider, callback, mail, browser, a)
    r = token_call(provider, {"grant_type": "authorization_code", "code": code, "redirect_uri": callback.uri},
                   (a["client_id"], a["client_secret"]))
    remember(r.json())
    refresh = r.json()["refresh_token"]
    r = token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh},
                   (b["client_id"], b["client_secret"]))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    r = token_call(provider, {"grant_type": "refresh_token", "refresh_token": refresh},
                   (a["client_id"], a["client_secret"]))
    assert r.status_code == 200, r.text
    remember(r.json())


def test_malformed_token_requests_get_oauth_errors(provider, callback):
    client = register_client(provider, callback)
    auth = (client["client_id"], client["client_secret"])
    r = token_call(provider, {"grant_type": "password", "username": "a", "password": "b"}, auth)
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")
    r = requests.post(provider.url + "/oauth/token", json={"grant_type": "refresh_token"}, auth=auth)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    r = token_call(provider, {"grant_type": "refresh_token", "refresh_token": "nope"}, auth)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")
    assert r.headers["cache-control"] == "no-store"


def test_rp_initiated_logout_ends_the_session_and_returns_to_a_registered_uri(provider, callback, mail, browser):
    client = register_client(provider, callback, post_logout_redirect_uris=[callback.bye])
    email, password = verified_person(provider, mail)
    app = authlib_app(provider, client)
    assert app.load_server_metadata()["end_session_endpoint"] == provider.issuer + "/oauth/logout"
    with journey(browser) as j:
        rv = app.create_authorization_url(redirect_uri=callback.uri)
        sign_in_with_password(j, rv["url"], email, password)
        j.page.wait_for_url(callback.uri + "?**")
        token = app.fetch_access_token(redirect_uri=callback.uri, code=callback.last()["code"],
                                       code_verifier=rv["code_verifier"])
        remember(token)
        # With the app's ID token as the hint: signed out at once, and back.
        logout = app.create_logout_url(post_logout_redirect_uri=callback.bye, id_token_hint=token["id_token"])
        j.page.goto(logout["url"])
        j.page.wait_for_url(callback.bye + "?**")
        assert parse_qs(callback.farewells[-1]) == {"state": [logout["state"]]}
        # The browser's session is gone: the app's next request asks again.
        j.page.goto(app.create_authorization_url(redirect_uri=callback.uri)["url"])
        expect(j.page.locator("#continues-to")).to_be_visible()

        # Without a hint the person is asked first.
        sign_in_with_password(j, app.create_authorization_url(redirect_uri=callback.uri)["url"], email, password)
        j.page.wait_for_url(callback.uri + "?**")
        j.page.goto(provider.issuer + "/oauth/logout?" + urlencode(
            {"client_id": client["client_id"], "post_logout_redirect_uri": callback.bye, "state": "s2"}))
        expect(j.page.locator("h1")).to_have_text("Sign out?")
        j.look("oidc-sign-out")
        j.page.click("form#sign-out button")
        j.page.wait_for_url(callback.bye + "?state=s2")
        j.page.goto(app.create_authorization_url(redirect_uri=callback.uri)["url"])
        expect(j.page.locator("#continues-to")).to_be_visible()


def test_a_logout_to_an_unregistered_uri_is_refused_without_a_redirect(provider, callback):
    client = register_client(provider, callback, post_logout_redirect_uris=[callback.bye])
    for params in ({"client_id": client["client_id"], "post_logout_redirect_uri": "https://evil.example/bye"},
                   {"client_id": client["client_id"], "post_logout_redirect_uri": callback.uri},
                   {"post_logout_redirect_uri": callback.bye}):
        r = requests.get(provider.url + "/oauth/logout?" + urlencode(params), allow_redirects=False)
        assert r.status_code == 400 and "location" not in r.headers, params
        # The unchecked URI widens nothing: this page's forms post only here.
        assert "form-action 'self';" in r.headers["content-security-policy"], r.headers


def test_a_rotated_out_key_verifies_while_published_and_not_after(mail, callback, browser):
    """Rotation as docs/oidc.md says it: the new key first (it signs), the
    old one still published; then the old one removed. The libraries take
    a token of the old key while it is published, and refuse it after."""
    old, new = json.loads(oidc_signing_keys()), json.loads(oidc_signing_keys())
    for k in old["keys"] + new["keys"]:
        SECRETS_SEEN.append(k["d"])
    w = Worker("oidc-rotation", mail=mail, vars={"RESEND_COOLDOWN_SECONDS": "0"},
               secrets={"OIDC_SIGNING_KEYS": json.dumps(old)}, start=False)

    def restart(keys):
        w.stop()
        (w.dir / "secrets.env").write_text((w.dir / "secrets.env").read_text().replace(
            w.current, json.dumps(keys)))
        w.current = json.dumps(keys)
        w.start()
        assert w.vars["PUBLIC_BASE_URL"] == f"http://localhost:{w.port}", "the issuer moved"

    w.current = json.dumps(old)
    w.vars["PUBLIC_BASE_URL"] = f"http://localhost:{w.port}"
    w.start()
    w.issuer = w.vars["PUBLIC_BASE_URL"]
    try:
        client = register_client(w, callback)
        email, password = verified_person(w, mail)
        app = authlib_app(w, client)
        rv = app.create_authorization_url(redirect_uri=callback.uri)
        with journey(browser) as j:
            sign_in_with_password(j, rv["url"], email, password)
            j.page.wait_for_url(callback.uri + "?**")
        token = app.fetch_access_token(redirect_uri=callback.uri, code=callback.last()["code"],
                                       code_verifier=rv["code_verifier"])
        remember(token)
        old_kid = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))["kid"]
        assert old_kid == old["keys"][0]["kid"]

        restart({"keys": new["keys"] + old["keys"]})
        app = authlib_app(w, client)
        assert app.parse_id_token(token, nonce=rv["nonce"])["email"] == email
        assert w.get("/oauth/userinfo", token=token["access_token"]).status_code == 200
        refreshed = session_of(app).refresh_token(app.load_server_metadata()["token_endpoint"],
                                                  refresh_token=token["refresh_token"])
        remember(refreshed)
        new_kid = json.loads(base64.urlsafe_b64decode(refreshed["id_token"].split(".")[0] + "=="))["kid"]
        assert new_kid == new["keys"][0]["kid"], "the new key signs"

        restart(new)
        app = authlib_app(w, client)
        with pytest.raises(InvalidKeyIdError):
            app.parse_id_token(token, nonce=rv["nonce"])
        assert w.get("/oauth/userinfo", token=token["access_token"]).status_code == 401
        assert w.get("/oauth/userinfo", token=refreshed["access_token"]).status_code == 200
    finally:
        w.stop()


def test_openid_client_as_a_public_client_signs_in_refreshes_and_logs_out(provider, callback, mail, browser):
    client = register_client(provider, callback, kind="public", post_logout_redirect_uris=[callback.bye])
    email, password = verified_person(provider, mail)
    begun = node_client("begin", issuer=provider.issuer, client_id=client["client_id"], redirect_uri=callback.uri)
    with journey(browser) as j:
        sign_in_with_password(j, begun["url"], email, password)
        j.page.wait_for_url(callback.uri + "?**")
        back = callback.uri + "?" + callback.queries[-1]
        done = node_client("finish", issuer=provider.issuer, client_id=client["client_id"], callback=back,
                           verifier=begun["verifier"], nonce=begun["nonce"], state=begun["state"])
        SECRETS_SEEN.extend([*done["secrets"], done["id_token"]])
        assert done["claims"]["email"] == email and done["claims"]["aud"] == client["client_id"]
        assert done["userinfo"] == {"sub": done["claims"]["sub"], "email": email, "email_verified": True}
        assert done["refreshed"]["sub"] == done["claims"]["sub"]
        assert done["reuse"] == "invalid_grant" and done["after_reuse"] == "invalid_grant"
        assert done["revoked_userinfo"] is not None, "the revoked grant's access token is refused"
        out = node_client("logout", issuer=provider.issuer, client_id=client["client_id"], id_token=done["id_token"],
                          post_logout_redirect_uri=callback.bye)
        j.page.goto(out["url"])
        j.page.wait_for_url(callback.bye + "?**")
        assert parse_qs(callback.farewells[-1]) == {"state": [out["state"]]}


def test_a_token_for_a_resource_server_names_it_and_only_it(provider, callback, mail, browser):
    """RFC 8707, as an MCP server relies on it: the token's `aud` is the
    resource, which a resource server checks with the published keys
    (joserfc here); userinfo, which is not that server, refuses it."""
    client = register_client(provider, callback)
    email, password = verified_person(provider, mail)
    app = authlib_app(provider, client)
    back = errors_back(provider, {"client_id": client["client_id"], "redirect_uri": callback.uri,
                                  "response_type": "code", "scope": "openid", "state": "s",
                                  "resource": "https://evil.example/mcp"})
    assert back["error"] == "invalid_target"
    rv = app.create_authorization_url(redirect_uri=callback.uri, resource=MCP)
    with journey(browser) as j:
        sign_in_with_password(j, rv["url"], email, password)
        j.page.wait_for_url(callback.uri + "?**")
    token = app.fetch_access_token(redirect_uri=callback.uri, code=callback.last()["code"],
                                   code_verifier=rv["code_verifier"], resource=MCP)
    remember(token)
    keys = KeySet.import_key_set(provider.oidc_jwks().json())
    claims = jwt.decode(token["access_token"], keys).claims
    JWTClaimsRegistry(iss={"essential": True, "value": provider.issuer},
                      aud={"essential": True, "value": MCP}).validate(claims)
    assert claims["client_id"] == client["client_id"] and claims["exp"] > time.time()
    r = provider.get("/oauth/userinfo", token=token["access_token"])
    assert r.status_code == 401 and r.json()["error"] == "invalid_token"
    # The ID token is the app's, as always.
    assert app.parse_id_token(token, nonce=rv["nonce"])["aud"] == client["client_id"]
