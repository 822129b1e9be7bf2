"""The operator's OpenID Connect clients, through the admin API: a
confidential client's secret is shown once and kept only as SHA-256, a
public client has none, redirect URIs are taken only in the one form they
are compared in, a client names only a live API key, and every change is
audited."""

import hashlib
import re

from conftest import SECRETS_SEEN, create_key
from harness import ADMIN_TOKEN, problem

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
CALLBACK = "https://shop.example.com/auth/callback"


def test_a_confidential_client_gets_a_secret_once_kept_only_as_sha256(app):
    r = app.admin_create_oidc_client("Shop", "confidential", [CALLBACK],
                                     post_logout_redirect_uris=["https://shop.example.com/"], headers=ADMIN)
    assert r.status_code == 201, r.text
    client = r.json()
    secret = client.pop("client_secret")
    SECRETS_SEEN.append(secret)
    assert re.fullmatch(r"ocs_[A-Za-z0-9_-]{43}", secret)
    assert re.fullmatch(r"oc_[A-Za-z0-9_-]{22}", client["client_id"])
    assert client["type"] == "confidential" and client["redirect_uris"] == [CALLBACK]
    assert client["post_logout_redirect_uris"] == ["https://shop.example.com/"]
    listed = app.admin_list_oidc_clients(headers=ADMIN).json()["oidc_clients"]
    assert client in listed, "listed as created, without its secret"
    assert all("client_secret" not in c for c in listed)
    with app.db() as db:
        row = db.execute("SELECT secret_hash FROM oidc_clients WHERE id = ?", (client["client_id"],)).fetchone()
        assert row == (hashlib.sha256(secret.encode()).hexdigest(),)
        dump = "\n".join(str(r) for r in db.execute("SELECT * FROM oidc_clients"))
        assert secret not in dump


def test_a_public_client_has_no_secret(app):
    r = app.admin_create_oidc_client("Shop SPA", "public", ["http://localhost:5173/callback"], headers=ADMIN)
    assert r.status_code == 201, r.text
    assert "client_secret" not in r.json()
    with app.db() as db:
        row = db.execute("SELECT secret_hash FROM oidc_clients WHERE id = ?", (r.json()["client_id"],)).fetchone()
        assert row == (None,)


def test_redirect_uris_are_taken_only_in_the_form_they_are_compared_in(app):
    for bad in ["http://shop.example.com/cb", "https://shop.example.com/cb#x", "https://SHOP.example.com/cb",
                "https://shop.example.com:443/cb", "https://shop.example.com/cb?state=1", "shop://cb"]:
        problem(app.admin_create_oidc_client("Shop", "public", [bad], headers=ADMIN), 400, "invalid_request")
    problem(app.admin_create_oidc_client("Shop", "public", [], headers=ADMIN), 400, "invalid_request")
    problem(app.admin_create_oidc_client("Shop", "implicit", [CALLBACK], headers=ADMIN), 400, "invalid_request")
    r = app.admin_create_oidc_client("Shop", "public", [CALLBACK], post_logout_redirect_uris=None, headers=ADMIN)
    problem(r, 400, "invalid_request")
    assert "post_logout_redirect_uris" in r.json()["detail"]


def test_a_client_names_only_a_live_api_key(app):
    key = create_key(app, channels=["email"])
    r = app.admin_create_oidc_client("Shop", "public", [CALLBACK], api_key_id=key["id"], headers=ADMIN)
    assert r.status_code == 201 and r.json()["api_key_id"] == key["id"], r.text
    assert app.admin_revoke_key(key["id"], headers=ADMIN).status_code == 204
    r = app.admin_create_oidc_client("Shop", "public", [CALLBACK], api_key_id=key["id"], headers=ADMIN)
    problem(r, 400, "invalid_request")
    assert "api_key_id" in r.json()["detail"]


def test_only_the_operator_manages_clients_and_every_change_is_audited(app):
    problem(app.admin_create_oidc_client("Shop", "public", [CALLBACK]), 401, "unauthorized")
    problem(app.admin_list_oidc_clients(headers={"authorization": "Bearer nope"}), 401, "unauthorized")
    client = app.admin_create_oidc_client("Shop", "public", [CALLBACK], headers=ADMIN).json()
    problem(app.admin_delete_oidc_client(client["client_id"]), 401, "unauthorized")
    assert app.admin_delete_oidc_client(client["client_id"], headers=ADMIN).status_code == 204
    problem(app.admin_delete_oidc_client(client["client_id"], headers=ADMIN), 404, "not_found")
    problem(app.admin_delete_oidc_client("no-such-client", headers=ADMIN), 404, "not_found")
    listed = app.admin_list_oidc_clients(headers=ADMIN).json()["oidc_clients"]
    assert client["client_id"] not in {c["client_id"] for c in listed}
    scope = f"client:{client['client_id']}"
    events = app.admin_events(headers=ADMIN, params={"limit": 500}).json()["events"]
    mine = sorted(e["event"] for e in events if e["scope"] == scope)
    assert mine == ["oidc_client_created", "oidc_client_deleted"], mine
