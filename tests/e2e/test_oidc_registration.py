"""Dynamic client registration (RFC 7591), driven by openid-client's own
`dynamicClientRegistration`: an app (an MCP client, say) registers itself
as a public client, signs a person in on the hosted pages after they agree
on the consent page, and validates an ES256 ID token it asked for. What a
stranger may register is bounded: public clients only, redirect URIs we
would send a browser to, hourly caps, every registration audited, and no
code before the person says yes."""

import base64
import json
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from browser import journey
from conftest import SECRETS_SEEN
from harness import problem
from oidc_support import ADMIN, Callback, node_client, start_provider, verified_person


@pytest.fixture(scope="module")
def provider(mail):
    """A worker with registration on, its issuer its own `localhost` address."""
    w = start_provider("oidc-registration", mail, {"OIDC_DYNAMIC_REGISTRATION": "true", "OIDC_REGISTRATIONS_PER_HOUR": "40"})
    yield w
    w.stop()


@pytest.fixture(scope="module")
def callback():
    c = Callback()
    yield c
    c.close()


def register(provider, body, ip, content_type="application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(provider.url + "/oauth/register", data=data,
                         headers={"content-type": content_type, "cf-connecting-ip": ip}, timeout=30)


def header_of(jwt):
    part = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def sign_in(j, url, email, password):
    j.page.goto(url)
    expect(j.page.locator("#continues-to")).to_contain_text("Inspector")
    j.page.fill("input[name=email]", email)
    j.page.fill("input[name=password]", password)
    j.page.click("button[value=password]")


def test_registration_is_off_unless_turned_on(app):
    r = app.call("oauth_register", {"redirect_uris": ["https://app.example.com/cb"]})
    problem(r, 404, "not_found")


def test_discovery_announces_registration_and_es256(provider):
    meta = provider.call("oidc_discovery").json()
    assert meta["registration_endpoint"] == provider.issuer + "/oauth/register"
    assert meta["id_token_signing_alg_values_supported"] == ["RS256", "ES256"]


def test_openid_client_registers_itself_and_signs_in_only_after_consent(provider, callback, mail, browser):
    metadata = {"client_name": "Inspector", "redirect_uris": [callback.uri], "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                "id_token_signed_response_alg": "ES256", "logo_uri": "https://evil.example/logo.png"}
    client = node_client("register", issuer=provider.issuer, metadata=metadata)
    assert client["client_id"].startswith("oc_") and "client_secret" not in client
    assert client["token_endpoint_auth_method"] == "none"
    assert client["id_token_signed_response_alg"] == "ES256"
    assert "logo_uri" not in client, "what is not used is not kept"
    listed = provider.call("admin_list_oidc_clients", headers=ADMIN).json()["oidc_clients"]
    mine = next(c for c in listed if c["client_id"] == client["client_id"])
    assert mine["self_registered"] is True and mine["type"] == "public"

    email, password = verified_person(provider, mail)
    begun = node_client("begin", issuer=provider.issuer, client_id=client["client_id"], redirect_uri=callback.uri)
    seen = len(callback.queries)
    with journey(browser) as j:
        sign_in(j, begun["url"], email, password)
        # No code yet: the person is asked, and told what is known.
        expect(j.page.locator("h1")).to_have_text("Allow Inspector?")
        expect(j.page.locator("#consent-app")).to_contain_text(email)
        expect(j.page.locator("#consent-app")).to_contain_text("no one here has checked")
        expect(j.page.locator("#consent-host")).to_contain_text("127.0.0.1")
        assert len(callback.queries) == seen, "nothing went to the app before the answer"
        assert provider.db().execute("SELECT count(*) FROM oauth_codes WHERE client_id = ?",
                                     (client["client_id"],)).fetchone() == (0,)
        j.look("oidc-consent")
        j.page.click("button[value=allow]")
        j.page.wait_for_url(callback.uri + "?**")
        back = callback.uri + "?" + callback.queries[-1]
        done = node_client("finish", issuer=provider.issuer, client_id=client["client_id"], callback=back,
                           verifier=begun["verifier"], nonce=begun["nonce"], state=begun["state"],
                           id_token_alg="ES256")
        SECRETS_SEEN.extend([*done["secrets"], done["id_token"]])
        assert header_of(done["id_token"])["alg"] == "ES256", "the algorithm the client registered"
        assert done["claims"]["email"] == email and done["claims"]["aud"] == client["client_id"]
        assert done["userinfo"]["sub"] == done["claims"]["sub"]
        assert done["reuse"] == "invalid_grant"

        # Every authorization asks again; "Cancel" is access_denied.
        again = node_client("begin", issuer=provider.issuer, client_id=client["client_id"], redirect_uri=callback.uri)
        j.page.goto(again["url"])
        expect(j.page.locator("h1")).to_have_text("Allow Inspector?")
        j.page.click("button[value=deny]")
        j.page.wait_for_url(callback.uri + "?**")
        denied = {k: v[0] for k, v in parse_qs(callback.queries[-1]).items()}
        assert denied["error"] == "access_denied" and denied["state"] == again["state"]
        assert denied["iss"] == provider.issuer and "code" not in denied

        # prompt=none cannot ask: consent_required, even while signed in;
        # and the browser goes back to a self-registered app only by a click.
        silent = urlsplit(again["url"])
        params = {k: v[0] for k, v in parse_qs(silent.query).items()} | {"prompt": "none", "state": "quiet"}
        j.page.goto(provider.issuer + "/oauth/authorize?" + urlencode(params))
        expect(j.page.locator("#leaving-link")).to_have_text("Continue to 127.0.0.1")
        j.look("oidc-leaving")
        j.page.click("#leaving-link")
        j.page.wait_for_url(callback.uri + "?**")
        quiet = {k: v[0] for k, v in parse_qs(callback.queries[-1]).items()}
        assert quiet["error"] == "consent_required" and quiet["state"] == "quiet"


def test_a_consent_form_from_elsewhere_is_refused(provider):
    r = requests.post(provider.url + "/oauth/authorize?oauth=x.y", data={"decision": "allow"},
                      headers={"origin": "https://evil.example"}, allow_redirects=False, timeout=30)
    assert r.status_code == 403 and "location" not in r.headers


def test_refusals_answer_as_rfc_7591_says(provider):
    ip = "198.51.100.21"
    cases = [
        ({"redirect_uris": ["https://app.example.com/cb"], "token_endpoint_auth_method": "client_secret_basic"},
         "invalid_client_metadata"),
        ({"redirect_uris": ["https://app.example.com/cb"], "grant_types": ["client_credentials"]},
         "invalid_client_metadata"),
        ({"redirect_uris": ["https://app.example.com/cb"], "id_token_signed_response_alg": "none"},
         "invalid_client_metadata"),
        ({"redirect_uris": ["http://app.example.com/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://app.example.com/cb#frag"]}, "invalid_redirect_uri"),
        ({"client_name": "no uris"}, "invalid_redirect_uri"),
    ]
    for body, code in cases:
        r = register(provider, body, ip)
        assert r.status_code == 400 and r.json()["error"] == code, (body, r.text)
        assert r.headers["content-type"].startswith("application/json")
    r = register(provider, "redirect_uris=x", ip, content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"
    names = {c["name"] for c in provider.call("admin_list_oidc_clients", headers=ADMIN).json()["oidc_clients"]}
    assert "no uris" not in names, "a refusal registers nothing"


def test_registrations_are_capped_per_network_client_and_audited(provider):
    ip = "203.0.113.77"
    made = []
    for i in range(10):
        r = register(provider, {"client_name": f"Bot {i}", "redirect_uris": [f"https://bot{i}.example.com/cb"]}, ip)
        assert r.status_code == 201, r.text
        made.append(r.json()["client_id"])
    body = problem(register(provider, {"redirect_uris": ["https://bot.example.com/cb"]}, ip), 429, "rate_limited")
    assert body["detail"]
    assert register(provider, {"redirect_uris": ["https://other.example.com/cb"]}, "203.0.113.78").status_code == 201
    events = provider.call("admin_events", headers=ADMIN, params={"limit": 500}).json()["events"]
    registered = [e for e in events if e["event"] == "oidc_client_registered"]
    assert {f"client:{c}" for c in made} <= {e["scope"] for e in registered}
    assert any(e["outcome"] == "rate_limited" for e in registered)
    # Only a keyed pseudonym of the network client is kept.
    rows = provider.db().execute("SELECT registered_from FROM oidc_clients WHERE id = ?", (made[0],)).fetchall()
    assert rows and ip not in rows[0][0]


def test_a_self_registered_clients_errors_and_sign_outs_wait_for_a_click(provider):
    """RFC 9700 §4.11.2: anyone can register a redirect URI, so nothing
    sends a browser there without the person's say: no open redirect."""
    land, bye = "https://phish.example/land", "https://phish.example/bye"
    r = register(provider, {"client_name": "Bouncer", "redirect_uris": [land], "post_logout_redirect_uris": [bye]},
                 "198.51.100.44")
    client_id = r.json()["client_id"]
    for extra in ({}, {"response_type": "code", "scope": "openid", "prompt": "none"}):
        params = {"client_id": client_id, "redirect_uri": land, "state": "s", **extra}
        r = requests.get(provider.url + "/oauth/authorize?" + urlencode(params), allow_redirects=False, timeout=30)
        assert r.status_code == 400 and "location" not in r.headers, (extra, r.headers)
        assert f'id="leaving-link" href="{land}?error=' in r.text, r.text
    r = requests.get(provider.url + "/oauth/logout?" + urlencode(
        {"client_id": client_id, "post_logout_redirect_uri": bye, "state": "x"}), allow_redirects=False, timeout=30)
    assert r.status_code == 200 and "location" not in r.headers, r.headers
    assert f'id="leaving-link" href="{bye}?state=x"' in r.text, r.text


def test_the_cron_deletes_self_registered_clients_no_one_uses(provider, mail):
    ip = "198.51.100.55"
    old, used, young = (register(provider, {"client_name": name, "redirect_uris": [f"https://{name}.example.com/cb"]},
                                 ip).json()["client_id"] for name in ("old", "used", "young"))
    email, _ = verified_person(provider, mail)
    user_id = provider.db().execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()[0]
    month = 31 * 86_400
    provider.sql(command=f"UPDATE oidc_clients SET created_at = created_at - {month} WHERE id IN ('{old}', '{used}')")
    provider.sql(command="INSERT INTO oauth_grants (id, client_id, user_id, scope, auth_time, amr, created_at, expires_at)"
                         f" VALUES ('grant-of-used', '{used}', '{user_id}', 'openid', 1, 'pwd', 1, 99999999999)")
    provider.scheduled()
    line = provider.log_line('"event":"cleanup"', timeout=10)
    assert line and json.loads(line[line.index("{"):])["deleted"]["oidc_clients"] == 1, line
    ids = {c["client_id"] for c in provider.call("admin_list_oidc_clients", headers=ADMIN).json()["oidc_clients"]}
    assert old not in ids, "unused for its first 30 days: deleted"
    assert used in ids and young in ids
