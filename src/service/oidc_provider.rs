//! The OpenID Provider's rules, over the testkit: a code is single use and
//! bound to its client, redirect URI, PKCE verifier and browser session; a
//! replay revokes what the code gave; a refresh token rotates and its
//! reuse revokes the family; tokens name whom they were issued to; a
//! password reset ends every grant. The signatures here are the testkit's
//! stand-in: the end-to-end tests check RS256 with a JOSE library.

use super::testkit::{World, ADMIN};
use super::{ClientCredentials, Consent, GrantRequest, Tokens};
use crate::domain::email::Email;
use crate::domain::jwk::tests::sample_set;
use crate::domain::jwt::Unverified;
use crate::domain::oauth::{AuthorizeQuery, REFRESH_TOKEN_TTL_SECS};
use crate::domain::oidc_client::{Client, NewClient};
use crate::domain::password::Password;
use crate::domain::pkce::CodeVerifier;
use crate::domain::registrant::PasswordProof;
use crate::error::ApiError;
use crate::ports::signer::Signer as _;
use pollster::block_on;

pub(super) const ISSUER: &str = "https://id.example";
pub(super) const CB: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

pub(super) fn ann() -> Email {
    Email::parse("ann@example.com").unwrap()
}

pub(super) fn pw() -> Password {
    Password::parse("correct horse", 8, "password").unwrap()
}

/// A world with the provider on, ann verified and signed in on the pages;
/// her browser's session token.
pub(super) fn world() -> (World, String) {
    world_with(&[])
}

/// `world`, with `extra` vars.
pub(super) fn world_with(extra: &[(&str, &str)]) -> (World, String) {
    let keys = sample_set();
    let mut vars = vec![
        ("OIDC_SIGNING_KEYS", keys.as_str()),
        ("PUBLIC_BASE_URL", ISSUER),
    ];
    vars.extend_from_slice(extra);
    let w = World::new(&vars);
    block_on(async {
        w.svc().register(&ann(), &pw()).await.unwrap();
        w.svc()
            .verify_email(&ann(), &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let token = w.browser_token(&ann(), &pw());
    (w, token)
}

/// Registers a client; its secret, for a confidential one.
fn client(w: &World, kind: &str) -> (Client, Option<String>) {
    let new = NewClient::parse("Notes", kind, &[CB], &[], None).unwrap();
    let (c, secret) = block_on(w.svc().create_oidc_client(ADMIN, &new)).unwrap();
    (c, secret.map(|s| s.expose().to_owned()))
}

pub(super) fn creds(c: &Client, secret: &Option<String>) -> ClientCredentials {
    ClientCredentials {
        client_id: c.id.clone(),
        secret: secret.clone(),
        basic: secret.is_some(),
    }
}

/// The code ann's browser earns for `c` with the authorize query `extra`.
pub(super) fn code(w: &World, browser: &str, c: &Client, extra: &str) -> Option<String> {
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid+email+offline_access&state=st&nonce=n-1{extra}",
        c.id
    ));
    let request = q
        .validate(c, &w.cfg.oidc_resources, w.clock.0.get())
        .unwrap();
    let to = block_on(
        w.svc()
            .authorization_code(Some(browser), &request, Consent::NotAsked),
    )
    .unwrap()
    .redirect()?;
    assert!(to.starts_with(&format!("{CB}?code=")), "{to}");
    assert!(
        to.ends_with(&format!("&state=st&iss={}", "https%3A%2F%2Fid.example")),
        "{to}"
    );
    Some(to.split("code=").nth(1)?.split('&').next()?.to_owned())
}

pub(super) fn redeem(code: &str, verifier: Option<&str>) -> GrantRequest {
    GrantRequest::AuthorizationCode {
        code: code.into(),
        redirect_uri: CB.into(),
        verifier: verifier.map(|v| CodeVerifier::parse(v).unwrap()),
        resource: None,
    }
}

fn refresh(token: &str) -> GrantRequest {
    GrantRequest::RefreshToken {
        refresh_token: token.into(),
        resource: None,
    }
}

fn oauth_code(e: ApiError) -> &'static str {
    match e {
        ApiError::OAuth(e) => e.code.as_str(),
        other => panic!("not an OAuth error: {other:?}"),
    }
}

pub(super) fn tokens(
    w: &World,
    creds: &ClientCredentials,
    grant: &GrantRequest,
) -> Result<Tokens, &'static str> {
    block_on(w.svc().token(creds, grant)).map_err(oauth_code)
}

/// A confidential client's full round: code, tokens, userinfo.
fn signed_in_client(w: &World, browser: &str) -> (Client, ClientCredentials, Tokens) {
    let (c, secret) = client(w, "confidential");
    let creds = creds(&c, &secret);
    let code = code(w, browser, &c, "").unwrap();
    let t = tokens(w, &creds, &redeem(&code, None)).unwrap();
    (c, creds, t)
}

#[test]
fn a_code_gives_an_id_token_an_access_token_and_a_refresh_token() {
    let (w, browser) = world();
    let (c, _, t) = signed_in_client(&w, &browser);
    let id = Unverified::parse(t.id_token.as_deref().unwrap()).unwrap();
    let user_id = w.store.users.borrow()["ann@example.com"].id.clone();
    assert_eq!(id.typ, None, "an ID token is no access token");
    assert_eq!(id.claim_str("iss"), Some(ISSUER));
    assert_eq!(id.claim_str("sub"), Some(user_id.as_str()));
    assert_eq!(id.claim_str("aud"), Some(c.id.as_str()));
    assert_eq!(id.claim_str("nonce"), Some("n-1"));
    assert_eq!(id.claim_str("email"), Some("ann@example.com"));
    assert_eq!(id.claims["email_verified"], true);
    assert_eq!(id.claims["amr"], serde_json::json!(["pwd"]));
    assert!(id.claim_u64("auth_time").is_some());
    let at = Unverified::parse(&t.access_token).unwrap();
    assert_eq!(at.typ.as_deref(), Some("at+jwt"));
    assert_eq!(at.claim_str("client_id"), Some(c.id.as_str()));
    assert_eq!(at.claim_str("scope"), Some("openid email offline_access"));
    assert!(t.refresh_token.is_some());
    let info = block_on(w.svc().userinfo(Some(&t.access_token))).unwrap();
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "ann@example.com");
}

#[test]
fn a_code_is_single_use_and_its_replay_revokes_what_it_gave() {
    let (w, browser) = world();
    let (c, secret) = client(&w, "confidential");
    let creds = creds(&c, &secret);
    let code = code(&w, &browser, &c, "").unwrap();
    let t = tokens(&w, &creds, &redeem(&code, None)).unwrap();
    assert_eq!(
        tokens(&w, &creds, &redeem(&code, None)).unwrap_err(),
        "invalid_grant"
    );
    // The refresh token and the access token issued from it are dead.
    let rt = t.refresh_token.unwrap();
    assert_eq!(
        tokens(&w, &creds, &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
    assert_eq!(
        oauth_code(block_on(w.svc().userinfo(Some(&t.access_token))).unwrap_err()),
        "invalid_token"
    );
}

#[test]
fn a_code_binds_its_client_redirect_uri_verifier_and_time() {
    let (w, browser) = world();
    let (public, _) = client(&w, "public");
    let (other, other_secret) = client(&w, "confidential");
    let pkce = format!("&code_challenge={CHALLENGE}&code_challenge_method=S256");
    let as_public = creds(&public, &None);
    // Another client, another redirect URI, no or a wrong verifier, too late:
    // each is refused, and spends the code.
    let attempts: Vec<(ClientCredentials, GrantRequest, u64)> = vec![
        (creds(&other, &other_secret), redeem("", Some(VERIFIER)), 0),
        (
            as_public.clone(),
            GrantRequest::AuthorizationCode {
                code: String::new(),
                redirect_uri: format!("{CB}/"),
                verifier: Some(CodeVerifier::parse(VERIFIER).unwrap()),
                resource: None,
            },
            0,
        ),
        (as_public.clone(), redeem("", None), 0),
        (as_public.clone(), redeem("", Some(&"a".repeat(43))), 0),
        (as_public.clone(), redeem("", Some(VERIFIER)), 60),
    ];
    for (who, attempt, wait) in attempts {
        let code = code(&w, &browser, &public, &pkce).unwrap();
        let attempt = match attempt {
            GrantRequest::AuthorizationCode {
                redirect_uri,
                verifier,
                resource,
                ..
            } => GrantRequest::AuthorizationCode {
                code: code.clone(),
                redirect_uri,
                verifier,
                resource,
            },
            other => other,
        };
        w.advance(wait);
        assert_eq!(tokens(&w, &who, &attempt).unwrap_err(), "invalid_grant");
        assert_eq!(
            tokens(&w, &as_public, &redeem(&code, Some(VERIFIER))).unwrap_err(),
            "invalid_grant",
            "a refused redemption spends the code"
        );
    }
    let code = code(&w, &browser, &public, &pkce).unwrap();
    assert!(tokens(&w, &as_public, &redeem(&code, Some(VERIFIER))).is_ok());
}

#[test]
fn a_client_proves_itself_as_its_kind_requires() {
    let (w, browser) = world();
    let (c, secret) = client(&w, "confidential");
    let (public, _) = client(&w, "public");
    let code = code(&w, &browser, &c, "").unwrap();
    for wrong in [
        creds(&c, &None),
        creds(&c, &Some("ocs_wrong".into())),
        creds(&public, &Some("anything".into())),
        ClientCredentials {
            client_id: "oc_nobody_registered_th".into(),
            secret: None,
            basic: false,
        },
    ] {
        assert_eq!(
            tokens(&w, &wrong, &redeem(&code, None)).unwrap_err(),
            "invalid_client"
        );
    }
    // A refused client spends nothing.
    assert!(tokens(&w, &creds(&c, &secret), &redeem(&code, None)).is_ok());
}

#[test]
fn a_refresh_token_rotates_and_its_reuse_revokes_the_family() {
    let (w, browser) = world();
    let (_, creds, t) = signed_in_client(&w, &browser);
    let first = t.refresh_token.unwrap();
    let second = tokens(&w, &creds, &refresh(first.expose())).unwrap();
    let id = Unverified::parse(second.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(
        id.claim_str("nonce"),
        None,
        "a refreshed ID token has no nonce"
    );
    let second_rt = second.refresh_token.unwrap();
    assert_ne!(first.expose(), second_rt.expose());
    // The old one again: refused, and the new one dies with it.
    assert_eq!(
        tokens(&w, &creds, &refresh(first.expose())).unwrap_err(),
        "invalid_grant"
    );
    assert_eq!(
        tokens(&w, &creds, &refresh(second_rt.expose())).unwrap_err(),
        "invalid_grant"
    );
    assert_eq!(
        oauth_code(block_on(w.svc().userinfo(Some(&second.access_token))).unwrap_err()),
        "invalid_token"
    );
}

#[test]
fn a_refresh_token_is_its_clients_alone_and_lapses() {
    let (w, browser) = world();
    let (_, creds_a, t) = signed_in_client(&w, &browser);
    let (b, b_secret) = client(&w, "confidential");
    let rt = t.refresh_token.unwrap();
    assert_eq!(
        tokens(&w, &creds(&b, &b_secret), &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
    // B's attempt neither used nor revoked it; and it outlives the access
    // token it came with.
    w.advance(601);
    let next = tokens(&w, &creds_a, &refresh(rt.expose())).unwrap();
    w.advance(REFRESH_TOKEN_TTL_SECS);
    let rt = next.refresh_token.unwrap();
    assert_eq!(
        tokens(&w, &creds_a, &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
}

#[test]
fn a_password_reset_ends_every_grant() {
    let (w, browser) = world();
    let (_, creds, t) = signed_in_client(&w, &browser);
    let svc = w.svc();
    w.after_answer_now();
    w.advance(61);
    block_on(async {
        w.keep(svc.password_reset(&ann()).await.unwrap());
        let new = Password::parse("battery staple", 8, "password").unwrap();
        svc.confirm_password_reset(&ann(), &w.last_code(), &new)
            .await
            .unwrap();
    });
    let rt = t.refresh_token.unwrap();
    assert_eq!(
        tokens(&w, &creds, &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
    assert_eq!(
        oauth_code(block_on(w.svc().userinfo(Some(&t.access_token))).unwrap_err()),
        "invalid_token"
    );
}

#[test]
fn only_a_fresh_enough_browser_session_earns_a_code() {
    let (w, browser) = world();
    let (c, _) = client(&w, "confidential");
    w.advance(100);
    assert!(code(&w, &browser, &c, "&prompt=login").is_none());
    assert!(code(&w, &browser, &c, "&max_age=50").is_none());
    assert!(code(&w, &browser, &c, "&max_age=500").is_some());
    // Not a session at all, or one that is not a browser's.
    let api = w.login_token(&ann(), &pw());
    assert!(code(&w, &api, &c, "").is_none());
    assert!(code(&w, "not-a-session", &c, "").is_none());
    // A sign-in made after the request answers prompt=login; the session
    // that was open when the app asked does not, even in the same second.
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid&prompt=login",
        c.id
    ));
    w.after_answer_now();
    let open = w.browser_token(&ann(), &pw());
    let request = q
        .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
        .unwrap();
    assert_eq!(
        block_on(
            w.svc()
                .authorization_code(Some(&open), &request, Consent::NotAsked)
        )
        .unwrap()
        .redirect(),
        None
    );
    w.advance(5);
    let fresh = w.browser_token(&ann(), &pw());
    assert!(block_on(
        w.svc()
            .authorization_code(Some(&fresh), &request, Consent::NotAsked)
    )
    .unwrap()
    .redirect()
    .is_some());
}

#[test]
fn an_access_token_is_not_an_id_token_nor_changed_nor_expired() {
    let (w, browser) = world();
    let (c, creds, t) = signed_in_client(&w, &browser);
    let svc = w.svc();
    let refused = |token: &str| oauth_code(block_on(svc.userinfo(Some(token))).unwrap_err());
    assert_eq!(refused(t.id_token.as_deref().unwrap()), "invalid_token");
    // Another account's `sub` under the same signature.
    let mut parts: Vec<String> = t.access_token.split('.').map(str::to_owned).collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    claims["sub"] = "someone-else".into();
    parts[1] = b64.encode(claims.to_string());
    assert_eq!(refused(&parts.join(".")), "invalid_token");
    assert_eq!(refused("not.a.token"), "invalid_token");
    // The access token's own claims, signed by our key, without `at+jwt`:
    // whatever else carries them (an ID token) is not an access token.
    let keys = crate::domain::jwk::SigningKeys::parse(&sample_set()).unwrap();
    let key = keys.signer(crate::domain::jwk::Alg::Rs256).unwrap();
    let at = Unverified::parse(&t.access_token).unwrap();
    let input = crate::domain::jwt::signing_input(key, None, &at.claims);
    let signature = block_on(w.signer.sign(key, input.as_bytes())).unwrap();
    let untyped = crate::domain::jwt::compact(&input, &signature);
    assert_eq!(refused(&untyped), "invalid_token");
    let input = crate::domain::jwt::signing_input(key, Some("at+jwt"), &at.claims);
    let signature = block_on(w.signer.sign(key, input.as_bytes())).unwrap();
    block_on(svc.userinfo(Some(&crate::domain::jwt::compact(&input, &signature))))
        .expect("the same claims with at+jwt are an access token");
    // Revoked by its client (RFC 7009): userinfo refuses it at once.
    block_on(svc.revoke(&creds, &t.access_token)).unwrap();
    assert_eq!(refused(&t.access_token), "invalid_token");
    // A fresh one lapses after its ten minutes.
    let code = code(&w, &browser, &c, "").unwrap();
    let t = tokens(&w, &creds, &redeem(&code, None)).unwrap();
    w.advance(600);
    assert_eq!(refused(&t.access_token), "invalid_token");
}

#[test]
fn revocation_of_a_refresh_token_is_its_clients_alone() {
    let (w, browser) = world();
    let (_, creds_a, t) = signed_in_client(&w, &browser);
    let (b, b_secret) = client(&w, "confidential");
    let rt = t.refresh_token.unwrap();
    let svc = w.svc();
    // B's revocation is answered alike and changes nothing.
    block_on(svc.revoke(&creds(&b, &b_secret), rt.expose())).unwrap();
    let next = tokens(&w, &creds_a, &refresh(rt.expose())).unwrap();
    let rt = next.refresh_token.unwrap();
    block_on(svc.revoke(&creds_a, rt.expose())).unwrap();
    assert_eq!(
        tokens(&w, &creds_a, &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
}

#[test]
fn only_an_id_token_of_ours_is_a_logout_hint() {
    let (w, browser) = world();
    let (c, _, t) = signed_in_client(&w, &browser);
    let svc = w.svc();
    let user_id = w.store.users.borrow()["ann@example.com"].id.clone();
    let id_token = t.id_token.unwrap();
    // Expired or not: a hint outlives its token's use.
    w.advance(3_600);
    assert_eq!(
        block_on(svc.id_token_hint(&id_token)).unwrap(),
        Some((c.id.clone(), user_id))
    );
    // An access token is not an ID token; a changed one is nobody's.
    assert_eq!(block_on(svc.id_token_hint(&t.access_token)).unwrap(), None);
    let forged = format!("{}x", &id_token[..id_token.len() - 1]);
    assert_eq!(block_on(svc.id_token_hint(&forged)).unwrap(), None);
    assert_eq!(block_on(svc.id_token_hint("junk")).unwrap(), None);
    // Not forever: 30 days past its expiry it names nobody.
    w.advance(crate::domain::oauth::HINT_GRACE_SECS);
    assert_eq!(block_on(svc.id_token_hint(&id_token)).unwrap(), None);
}

const MCP: &str = "https://mcp.example.com/mcp";

#[test]
fn a_token_for_a_resource_is_good_there_and_nowhere_else() {
    let keys = sample_set();
    let w = World::new(&[
        ("OIDC_SIGNING_KEYS", &keys),
        ("PUBLIC_BASE_URL", ISSUER),
        ("OIDC_RESOURCES", MCP),
    ]);
    block_on(async {
        w.svc().register(&ann(), &pw()).await.unwrap();
        w.svc()
            .verify_email(&ann(), &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    let browser = w.browser_token(&ann(), &pw());
    let (c, secret) = client(&w, "confidential");
    let creds = creds(&c, &secret);
    // Not listed: refused at the authorization endpoint.
    let q = |resource: &str| {
        AuthorizeQuery::parse(&format!(
            "client_id={}&redirect_uri={CB}&response_type=code&scope=openid+offline_access&resource={resource}",
            c.id
        ))
        .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
    };
    assert_eq!(
        q("https%3A%2F%2Fevil.example%2Fmcp")
            .unwrap_err()
            .code
            .as_str(),
        "invalid_target"
    );
    let request = q("https%3A%2F%2Fmcp.example.com%2Fmcp").unwrap();
    let code_for = || {
        let to = block_on(
            w.svc()
                .authorization_code(Some(&browser), &request, Consent::NotAsked),
        )
        .unwrap()
        .redirect()
        .unwrap();
        to.split("code=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned()
    };
    let with = |code: String, resource: Option<&str>| GrantRequest::AuthorizationCode {
        code,
        redirect_uri: CB.into(),
        verifier: None,
        resource: resource.map(str::to_owned),
    };
    // A resource not listed: invalid_target, and the code is not spent.
    let code = code_for();
    assert_eq!(
        tokens(
            &w,
            &creds,
            &with(code.clone(), Some("https://evil.example/mcp"))
        )
        .unwrap_err(),
        "invalid_target"
    );
    let t = tokens(&w, &creds, &with(code, Some(MCP))).unwrap();
    let at = Unverified::parse(&t.access_token).unwrap();
    assert_eq!(at.claim_str("aud"), Some(MCP));
    // Audience-restricted: userinfo is not the MCP server.
    assert_eq!(
        oauth_code(block_on(w.svc().userinfo(Some(&t.access_token))).unwrap_err()),
        "invalid_token"
    );
    // A refresh keeps the resource; naming another listed one is refused.
    let rt = t.refresh_token.unwrap();
    let next = tokens(&w, &creds, &refresh(rt.expose())).unwrap();
    assert_eq!(
        Unverified::parse(&next.access_token)
            .unwrap()
            .claim_str("aud"),
        Some(MCP)
    );
    // Without a resource: a token for the client, which userinfo takes.
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid",
        c.id
    ))
    .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
    .unwrap();
    let to = block_on(
        w.svc()
            .authorization_code(Some(&browser), &q, Consent::NotAsked),
    )
    .unwrap()
    .redirect()
    .unwrap();
    let code = to.split("code=").nth(1).unwrap().split('&').next().unwrap();
    // Naming a resource the code was not for spends it (`invalid_grant`).
    assert_eq!(
        tokens(&w, &creds, &with(code.to_owned(), Some(MCP))).unwrap_err(),
        "invalid_grant"
    );
}

#[test]
fn only_a_browsers_session_is_taken_from_the_cookie_or_earns_a_code() {
    use crate::domain::session::Presented;
    let (w, browser) = world();
    let (c, _, t) = signed_in_client(&w, &browser);
    let svc = w.svc();
    let api = w.login_token(&ann(), &pw());
    let request = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid",
        c.id
    ))
    .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
    .unwrap();
    // An app's session, an access token or a refresh token, planted as the
    // pages' cookie: no session, no code for a client, nothing to end.
    let rt = t.refresh_token.unwrap();
    for token in [api.as_str(), t.access_token.as_str(), rt.expose()] {
        assert_eq!(
            block_on(svc.me(Some(token), Presented::Cookie)).unwrap_err(),
            ApiError::Unauthorized
        );
        assert_eq!(
            block_on(svc.authorization_code(Some(token), &request, Consent::NotAsked))
                .unwrap()
                .redirect(),
            None
        );
        assert_eq!(
            block_on(svc.logout(Some(token), Presented::Cookie)).unwrap_err(),
            ApiError::Unauthorized
        );
    }
    // Tokens issued to clients are no bearer sessions of the API either.
    for token in [t.access_token.as_str(), rt.expose()] {
        assert_eq!(
            block_on(svc.me(Some(token), Presented::Bearer)).unwrap_err(),
            ApiError::Unauthorized
        );
    }
    // The browser's session is no bearer token; the app's still works.
    assert_eq!(
        block_on(svc.me(Some(&browser), Presented::Bearer)).unwrap_err(),
        ApiError::Unauthorized
    );
    block_on(svc.me(Some(&api), Presented::Bearer)).unwrap();
}

#[test]
fn only_the_codes_own_client_revokes_by_replaying_it() {
    let (w, browser) = world();
    let (c, secret) = client(&w, "confidential");
    let (other, other_secret) = client(&w, "confidential");
    let code = code(&w, &browser, &c, "").unwrap();
    let t = tokens(&w, &creds(&c, &secret), &redeem(&code, None)).unwrap();
    // Another client holding the spent code: refused, and nothing revoked.
    assert_eq!(
        tokens(&w, &creds(&other, &other_secret), &redeem(&code, None)).unwrap_err(),
        "invalid_grant"
    );
    let rt = t.refresh_token.unwrap();
    let next = tokens(&w, &creds(&c, &secret), &refresh(rt.expose())).unwrap();
    // Its own client replaying it: the grant goes, a day later still.
    w.advance(crate::domain::oauth::REPLAY_WINDOW_SECS - 120);
    assert_eq!(
        tokens(&w, &creds(&c, &secret), &redeem(&code, None)).unwrap_err(),
        "invalid_grant"
    );
    let rt = next.refresh_token.unwrap();
    assert_eq!(
        tokens(&w, &creds(&c, &secret), &refresh(rt.expose())).unwrap_err(),
        "invalid_grant"
    );
}
