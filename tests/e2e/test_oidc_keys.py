"""The OpenID Provider's signing keys: `GET /.well-known/jwks.json`
publishes the public half of every key of `OIDC_SIGNING_KEYS` and nothing
private, and a maintained JOSE library (joserfc) verifies, against the
published set, tokens signed with each private key. Without the secret,
the route answers 503 naming it while the rest of the service works."""

import json

from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, import_key

from conftest import OIDC_KEYS
from harness import oidc_signing_keys, problem

PRIVATE = {"d", "p", "q", "dp", "dq", "qi"}


def test_the_jwks_publishes_every_key_public_half_only(app):
    r = app.oidc_jwks()
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    published = r.json()["keys"]
    ours = json.loads(OIDC_KEYS)["keys"]
    assert [k["kid"] for k in published] == [k["kid"] for k in ours]
    for pub, priv in zip(published, ours):
        assert not PRIVATE & set(pub), pub
        assert pub["use"] == "sig" and pub["alg"] == priv["alg"] and pub["kty"] == priv["kty"]
        for member in ("n", "e", "crv", "x", "y"):
            assert pub.get(member) == priv.get(member)
    assert not any(priv["d"] in r.text for priv in ours)


def test_a_library_verifies_tokens_of_each_key_against_the_published_set(app):
    published = KeySet.import_key_set(app.oidc_jwks().json())
    for priv in json.loads(OIDC_KEYS)["keys"]:
        token = jwt.encode({"alg": priv["alg"], "kid": priv["kid"]}, {"sub": "check"}, import_key(priv))
        assert jwt.decode(token, published).claims == {"sub": "check"}
    # A key that is not published does not verify.
    stranger = json.loads(oidc_signing_keys())["keys"][0]
    forged = jwt.encode({"alg": "RS256", "kid": json.loads(OIDC_KEYS)["keys"][0]["kid"]}, {"sub": "x"},
                        import_key(stranger))
    try:
        jwt.decode(forged, published)
        raise AssertionError("a token of an unpublished key verified")
    except BadSignatureError:
        pass


def test_without_the_secret_the_keys_are_503_and_the_rest_works(uncooled):
    r = uncooled.oidc_jwks()
    problem(r, 503, "unavailable")
    assert "OIDC_SIGNING_KEYS" in r.json()["detail"]
    assert uncooled.healthz().status_code == 200
    assert uncooled.openapi().status_code == 200
