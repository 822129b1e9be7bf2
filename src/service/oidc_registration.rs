//! Dynamic client registration and consent, over the testkit: off unless
//! the operator turns it on; public clients only; capped per hour in all
//! and per network client; audited; and no code goes to a self-registered
//! client before the signed-in person agrees.

use super::oidc_provider::{ann, code, creds, pw, redeem, tokens, world_with, CB};
use super::{Authorized, Consent};
use crate::domain::client_registration::Registration;
use crate::domain::jwk::Alg;
use crate::domain::jwt::Unverified;
use crate::domain::oauth::AuthorizeQuery;
use crate::domain::oidc_client::{Client, NewClient};
use crate::error::ApiError;
use crate::service::testkit::{World, ADMIN};
use pollster::block_on;
use serde_json::json;

const ON: (&str, &str) = ("OIDC_DYNAMIC_REGISTRATION", "true");

fn registration(body: serde_json::Value) -> Registration {
    Registration::parse(Some("application/json"), body.to_string().as_bytes()).unwrap()
}

fn register(w: &World, from: &str) -> Result<Client, ApiError> {
    let r = registration(json!({"client_name": "Claude", "redirect_uris": [CB]}));
    block_on(w.svc().register_client(&r, Some(from)))
}

fn authorize(w: &World, browser: Option<&str>, c: &Client, consent: Consent) -> Authorized {
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid+email&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        c.id
    ));
    let request = q
        .validate(c, &w.cfg.oidc_resources, w.clock.0.get())
        .unwrap();
    block_on(w.svc().authorization_code(browser, &request, consent)).unwrap()
}

#[test]
fn registration_is_off_unless_the_operator_turns_it_on() {
    let (w, _) = world_with(&[]);
    assert_eq!(
        register(&w, "198.51.100.7").unwrap_err(),
        ApiError::NotFound
    );
    assert!(w.store.oidc_clients.borrow().is_empty());
}

#[test]
fn a_registered_client_is_public_self_registered_and_audited() {
    let (w, _) = world_with(&[ON]);
    w.events();
    let c = register(&w, "198.51.100.7").unwrap();
    assert!(c.self_registered);
    assert_eq!(c.kind, crate::domain::oidc_client::ClientKind::Public);
    assert_eq!(c.name, "Claude");
    let stored = w.store.oidc_clients.borrow();
    assert_eq!(stored[0].1, None, "no secret, ever");
    drop(stored);
    assert_eq!(w.events(), vec![("oidc_client_registered", "ok")]);
    let from = w.store.registered_from.borrow()[&c.id].clone();
    assert!(
        !from.contains("198.51.100.7"),
        "only a keyed pseudonym: {from}"
    );
}

#[test]
fn registrations_are_capped_per_network_client_and_in_all_per_hour() {
    let (w, _) = world_with(&[ON, ("OIDC_REGISTRATIONS_PER_HOUR", "15")]);
    for _ in 0..10 {
        register(&w, "198.51.100.7").unwrap();
    }
    w.events();
    assert!(matches!(
        register(&w, "198.51.100.7"),
        Err(ApiError::RateLimited { .. })
    ));
    assert_eq!(w.events(), vec![("oidc_client_registered", "rate_limited")]);
    for _ in 0..5 {
        register(&w, "203.0.113.9").unwrap();
    }
    assert!(
        matches!(register(&w, "192.0.2.1"), Err(ApiError::RateLimited { .. })),
        "the overall cap holds whoever asks"
    );
    assert_eq!(w.store.oidc_clients.borrow().len(), 15);
    w.advance(3_601);
    register(&w, "198.51.100.7").expect("an hour later, room again");
}

#[test]
fn an_es256_client_needs_an_es256_key_and_gets_es256_id_tokens() {
    let (w, browser) = world_with(&[ON]);
    let r = registration(json!({"redirect_uris": [CB], "id_token_signed_response_alg": "ES256"}));
    let c = block_on(w.svc().register_client(&r, Some("198.51.100.7"))).unwrap();
    assert_eq!(c.id_token_alg, Alg::Es256);
    let Authorized::Consent(_) = authorize(&w, Some(&browser), &c, Consent::NotAsked) else {
        panic!("a self-registered client asks first")
    };
    let to = authorize(&w, Some(&browser), &c, Consent::Given)
        .redirect()
        .unwrap();
    let code = to.split("code=").nth(1).unwrap().split('&').next().unwrap();
    let t = tokens(
        &w,
        &creds(&c, &None),
        &redeem(code, Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
    )
    .unwrap();
    let id = Unverified::parse(t.id_token.as_deref().unwrap()).unwrap();
    assert_eq!(id.alg, Alg::Es256);
    let at = Unverified::parse(&t.access_token).unwrap();
    assert_eq!(at.alg, Alg::Rs256, "access tokens stay RS256");
    // The operator's clients choose too.
    let new = NewClient::parse("Notes", "confidential", &[CB], &[], None)
        .unwrap()
        .with_id_token_alg(Some("ES256"))
        .unwrap();
    let (c, _) = block_on(w.svc().create_oidc_client(ADMIN, &new)).unwrap();
    assert_eq!(c.id_token_alg, Alg::Es256);
    // Without an ES256 key, neither registers one.
    let rsa_only = crate::domain::jwk::tests::rsa_only_set();
    let (w, _) = world_with(&[ON, ("OIDC_SIGNING_KEYS", &rsa_only)]);
    let e = block_on(w.svc().register_client(&r, Some("198.51.100.7"))).unwrap_err();
    assert!(matches!(e, ApiError::OAuth(e) if e.code.as_str() == "invalid_client_metadata"));
    assert!(matches!(
        block_on(w.svc().create_oidc_client(ADMIN, &new)),
        Err(ApiError::InvalidRequest(_))
    ));
}

#[test]
fn no_code_goes_to_a_self_registered_client_before_the_person_agrees() {
    let (w, browser) = world_with(&[ON]);
    let c = register(&w, "198.51.100.7").unwrap();
    match authorize(&w, Some(&browser), &c, Consent::NotAsked) {
        Authorized::Consent(user) => assert_eq!(user.email, "ann@example.com"),
        other => panic!("{other:?}"),
    }
    assert!(w.store.oauth_codes.borrow().is_empty(), "no code filed");
    assert!(matches!(
        authorize(&w, None, &c, Consent::NotAsked),
        Authorized::SignIn
    ));
    assert!(matches!(
        authorize(&w, Some("not-a-session"), &c, Consent::NotAsked),
        Authorized::SignIn
    ));
    // Even a fresh sign-in asks.
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        c.id
    ));
    let request = q
        .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
        .unwrap();
    let fresh = w.browser_token(&ann(), &pw());
    assert!(matches!(
        block_on(w.svc().fresh_authorization_code(&fresh, &request)).unwrap(),
        Authorized::Consent(_)
    ));
    assert!(authorize(&w, Some(&browser), &c, Consent::Given)
        .redirect()
        .is_some());
    // The operator's clients are first-party: no question.
    let new = NewClient::parse("Notes", "confidential", &[CB], &[], None).unwrap();
    let (own, _) = block_on(w.svc().create_oidc_client(ADMIN, &new)).unwrap();
    assert!(code(&w, &browser, &own, "").is_some());
}

#[test]
fn a_session_too_old_for_the_request_signs_in_again_before_it_is_asked() {
    let (w, browser) = world_with(&[ON]);
    let c = register(&w, "198.51.100.7").unwrap();
    w.advance(10);
    let q = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri={CB}&response_type=code&scope=openid&prompt=login&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        c.id
    ));
    let request = q
        .validate(&c, &w.cfg.oidc_resources, w.clock.0.get())
        .unwrap();
    // Asked with the old session, the person would agree and be sent to
    // sign in, to be asked again, forever: the sign-in comes first.
    assert!(matches!(
        block_on(
            w.svc()
                .authorization_code(Some(&browser), &request, Consent::NotAsked)
        )
        .unwrap(),
        Authorized::SignIn
    ));
    w.advance(1);
    let fresh = w.browser_token(&ann(), &pw());
    assert!(matches!(
        block_on(
            w.svc()
                .authorization_code(Some(&fresh), &request, Consent::NotAsked)
        )
        .unwrap(),
        Authorized::Consent(_)
    ));
    assert!(block_on(
        w.svc()
            .authorization_code(Some(&fresh), &request, Consent::Given)
    )
    .unwrap()
    .redirect()
    .is_some());
}
