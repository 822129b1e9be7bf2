//! Property tests over everything that parses client input: bodies, fields,
//! codes, routes and query parameters, plus the config parsers that read
//! operator input. Nothing may panic, every refusal must be a 4xx problem
//! that names the field without echoing the value, and everything accepted
//! must hold only valid values.
//!
//! CI runs the default 256 cases per property; for a longer run:
//! `PROPTEST_CASES=200000 cargo test --release --test fuzz`.

use otp_edge::config::Config;
use otp_edge::domain::api_key::NewApiKey;
use otp_edge::domain::audit::EventPage;
use otp_edge::domain::channel::Channel;
use otp_edge::domain::code::{Code, Pepper};
use otp_edge::domain::cors::Cors;
use otp_edge::domain::email::Email;
use otp_edge::domain::oauth::{AuthorizationRequest, AuthorizeQuery, Resources};
use otp_edge::domain::password::Password;
use otp_edge::domain::phone::Phone;
use otp_edge::domain::purpose::{AppPurpose, Purpose};
use otp_edge::domain::recipient::Recipient;
use otp_edge::error::ApiError;
use otp_edge::http::body::{check_declared_length, require_json, JsonBody};
use otp_edge::http::oauth::TokenCall;
use otp_edge::http::request_id::request_id;
use otp_edge::http::requests::{
    AddTestRecipient, CodeProof, CodeRequest, CreateKey, CreateOidcClient, EventsQuery, Login,
    OtpSend, OtpVerify, PasswordResetConfirm, Register, RemoveTestRecipient, Resend, RevokeKey,
};
use otp_edge::http::routes::{Row, TABLE};
use otp_edge::pages::browser::Form;
use otp_edge::providers::template::Templates;
use proptest::prelude::*;

/// A refusal of client input: 400 `invalid_request` (or 413), whose detail
/// does not repeat what the client sent.
fn refused_cleanly(e: &ApiError, raw: &str) {
    assert!(
        matches!(e.status(), 400 | 413),
        "{e:?} is not a client error"
    );
    let detail = e.detail();
    if raw.trim().len() >= 6 {
        assert!(
            !detail.contains(raw.trim()),
            "the detail echoes the input: {detail}"
        );
    }
}

/// Text that looks like what clients send, with the odd hostile byte.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9._%+@ -]{0,40}",
        "[a-z0-9]{1,12}@[a-z0-9-]{1,12}\\.[a-z]{2,6}",
        "\\+?[0-9 ()-]{0,20}",
        "\\s*[0-9A-Za-z]{0,12}\\s*",
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("email".to_string()),
                    Just("code".to_string()),
                    Just("channels".to_string()),
                    Just("length".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A field some route reads, and a value that is sometimes what the route
/// wants and sometimes anything at all.
fn route_field() -> impl Strategy<Value = (String, serde_json::Value)> {
    use serde_json::json;
    let fields = [
        ("email", json!("Ann.Lee+tag@Example.com")),
        ("password", json!("correct horse battery")),
        ("new_password", json!("another staple")),
        ("code", json!("123456")),
        ("code", json!("ab12cd")),
        ("purpose", json!("verify_email")),
        ("purpose", json!("checkout_2fa")),
        ("channel", json!("sms")),
        ("channel", json!("email")),
        ("to", json!("+14155550123")),
        ("to", json!("ann@example.com")),
        ("length", json!(8)),
        ("alphabet", json!("alphanumeric")),
        ("ttl_seconds", json!(600)),
        ("name", json!("shop")),
        ("app_name", json!("Shop")),
        ("channels", json!(["sms", "email"])),
        ("code", json!("Yx2N0c3F1ZGJ4bW5rZXR6dWJ4cWlkYmNwYWtzaHZ4")),
        (
            "code_verifier",
            json!("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        ),
        ("channel", json!("whatsapp")),
        ("locale", json!("pt-BR")),
        ("fallback", json!(["sms"])),
        ("turnstile_token", json!("XXXX.DUMMY.TOKEN.XXXX")),
        ("sms_domain", json!("shop.example.com")),
        ("android_app_hash", json!("FA+9qCX9VSu")),
        ("turnstile_required", json!(true)),
        ("type", json!("confidential")),
        ("redirect_uris", json!(["https://shop.example.com/cb"])),
        (
            "redirect_uris",
            json!(["http://localhost:3000/cb", "https://SHOP.example.com/cb"]),
        ),
        (
            "post_logout_redirect_uris",
            json!(["https://shop.example.com/"]),
        ),
        ("api_key_id", json!("0123456789abcdef0123456789abcdef")),
    ];
    (
        prop::sample::select(fields.to_vec()),
        prop::bool::ANY,
        json_value(),
    )
        .prop_map(|((name, good), keep, other)| (name.to_owned(), if keep { good } else { other }))
}

fn route_body() -> impl Strategy<Value = serde_json::Value> {
    prop::collection::vec(route_field(), 0..10)
        .prop_map(|fields| serde_json::Value::Object(fields.into_iter().collect()))
}

fn body_of(value: &serde_json::Value) -> JsonBody {
    JsonBody::parse(&serde_json::to_vec(value).unwrap()).unwrap()
}

fn config() -> Config {
    Config::load(|_| None).unwrap()
}

/// A parse either succeeds or is a 400 `invalid_request` naming one of
/// the route's own fields.
fn parsed_or_refused<T>(outcome: Result<T, ApiError>, fields: &[&str]) -> Option<T> {
    match outcome {
        Ok(value) => Some(value),
        Err(e) => {
            assert_eq!(e.code(), "invalid_request", "{e:?}");
            let detail = e.detail();
            assert!(
                fields.iter().any(|f| detail.contains(&format!("`{f}`"))),
                "{detail} names none of {fields:?}"
            );
            None
        }
    }
}

/// An accepted address is already in its normalized form.
fn normalized(email: &Email) -> bool {
    Email::parse(email.as_str()).as_ref() == Ok(email)
}

proptest! {
    #[test]
    fn any_bytes_are_a_body_or_a_400_or_413(bytes in prop::collection::vec(any::<u8>(), 0..20_000)) {
        if let Err(e) = JsonBody::parse(&bytes) {
            prop_assert!(matches!(e.status(), 400 | 413));
        }
    }

    #[test]
    fn any_json_object_reads_field_by_field_without_panicking(fields in prop::collection::btree_map("[a-z_]{1,10}|email|code|channels|length|ttl_seconds", json_value(), 0..8)) {
        let bytes = serde_json::to_vec(&serde_json::Value::Object(fields.into_iter().collect())).unwrap();
        let body = JsonBody::parse(&bytes).unwrap();
        for name in ["email", "code", "channels", "length", "ttl_seconds", "app_name"] {
            for outcome in [
                body.string(name).map(drop),
                body.optional_string(name).map(drop),
                body.optional_u64(name).map(drop),
                body.strings(name).map(drop),
            ] {
                if let Err(e) = outcome {
                    prop_assert_eq!(e.code(), "invalid_request");
                    prop_assert!(e.detail().contains(name));
                }
            }
        }
    }

    #[test]
    fn emails_are_valid_normalized_and_stable(raw in text()) {
        match Email::parse(&raw) {
            Ok(email) => {
                let s = email.as_str();
                prop_assert!(s.len() <= 254 && s.contains('@'));
                prop_assert!(!s.chars().any(|c| c.is_whitespace() || c.is_control()));
                let again = Email::parse(s).unwrap();
                prop_assert_eq!(again.as_str(), s);
            }
            Err(e) => refused_cleanly(&e, &raw),
        }
    }

    #[test]
    fn phones_are_e164(raw in text()) {
        match Phone::parse(&raw) {
            Ok(phone) => {
                let digits = phone.as_str().strip_prefix('+').expect("a leading +");
                prop_assert!((7..=15).contains(&digits.len()));
                prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0'));
                let again = Phone::parse(phone.as_str()).unwrap();
                prop_assert_eq!(again.as_str(), phone.as_str());
            }
            Err(e) => refused_cleanly(&e, &raw),
        }
    }

    #[test]
    fn recipients_match_their_channel(raw in text(), channel in prop::sample::select(Channel::ALL.to_vec())) {
        match Recipient::parse(channel, &raw) {
            Ok(to) => prop_assert_eq!(to.channel(), channel),
            Err(e) => refused_cleanly(&e, &raw),
        }
    }

    #[test]
    fn codes_hold_only_their_alphabet(raw in text(), length in 4usize..=10) {
        match Code::parse(&raw, length) {
            Ok(code) => prop_assert!(code.expose().len() == length && code.expose().bytes().all(|b| b.is_ascii_digit())),
            Err(e) => refused_cleanly(&e, &raw),
        }
        match Code::parse_any(&raw) {
            Ok(code) => {
                let c = code.expose();
                prop_assert!((4..=10).contains(&c.len()));
                prop_assert!(c.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()));
            }
            Err(e) => refused_cleanly(&e, &raw),
        }
    }

    #[test]
    fn refused_passwords_are_never_echoed(raw in any::<String>()) {
        if let Err(e) = Password::parse(&raw, 8, "password") {
            refused_cleanly(&e, &raw);
        }
    }

    #[test]
    fn purposes_are_short_snake_case(raw in text()) {
        match AppPurpose::parse(&raw) {
            Ok(p) => prop_assert!(p.as_str().len() <= 32 && p.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')),
            Err(e) => refused_cleanly(&e, &raw),
        }
        if let Ok(p) = Purpose::parse_resendable(&raw) {
            prop_assert_eq!(p.as_str(), raw.as_str());
        }
    }

    #[test]
    fn new_api_keys_are_bounded(name in text(), app in proptest::option::of(text()), channels in prop::collection::vec(text(), 0..5)) {
        let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
        if let Err(e) = NewApiKey::parse(&name, app.as_deref(), &channels) {
            prop_assert_eq!(e.code(), "invalid_request");
        }
    }

    #[test]
    fn any_method_and_path_resolves_or_is_404_or_405(method in "[A-Z]{1,8}|GET|POST|DELETE|HEAD|OPTIONS", path in "/[a-z0-9/._%-]{0,40}|/v1/admin/api-keys/.{0,20}") {
        match Row::resolve(&method, &path) {
            Ok(row) => prop_assert!(TABLE.iter().any(|r| r == row)),
            Err(ApiError::NotFound) => prop_assert!(Row::allow(&path).is_none()),
            Err(ApiError::MethodNotAllowed { allow }) => prop_assert!(!allow.is_empty() && !allow.split(", ").any(|m| m == method)),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }

    #[test]
    fn headers_and_query_parameters_parse_or_refuse(raw in text(), other in text()) {
        let _ = require_json(Some(&raw));
        if let Err(e) = check_declared_length(Some(&raw)) {
            prop_assert_eq!(e.status(), 413);
        }
        if let Err(e) = EventPage::parse(Some(&raw), Some(&other)) {
            prop_assert_eq!(e.code(), "invalid_request");
        }
        let id = request_id(Some(&raw));
        prop_assert!(!id.is_empty() && id.len() <= 64);
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }

    #[test]
    fn operator_config_parses_or_is_refused_without_panicking(raw in text(), json in json_value()) {
        if let Ok(Cors::Origins(list)) = Cors::parse(Some(&raw)) {
            let cors = Cors::parse(Some(&raw)).unwrap();
            for origin in &list {
                let allowed = cors.allow(origin);
                prop_assert_eq!(allowed.as_deref(), Some(origin.as_str()));
            }
        }
        let _ = Templates::parse(&raw);
        let _ = Templates::parse(&json.to_string());
    }

    #[test]
    fn register_bodies(value in route_body()) {
        let body = body_of(&value);
        if let Some(r) = parsed_or_refused(Register::parse(&body, &config()), &["email", "password"]) {
            prop_assert!(normalized(&r.email));
        }
    }

    #[test]
    fn code_proof_bodies(value in route_body()) {
        let body = body_of(&value);
        let cfg = config();
        if let Some(r) = parsed_or_refused(CodeProof::parse(&body, &cfg), &["email", "code"]) {
            prop_assert!(normalized(&r.email));
            prop_assert_eq!(r.code.expose().len(), cfg.otp_length);
            prop_assert!(r.code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn resend_bodies(value in route_body()) {
        let body = body_of(&value);
        if let Some(r) = parsed_or_refused(Resend::parse(&body), &["email", "purpose"]) {
            prop_assert!(normalized(&r.email));
            prop_assert!(matches!(r.purpose, Purpose::VerifyEmail | Purpose::ResetPassword));
        }
    }

    #[test]
    fn login_bodies(value in route_body()) {
        let body = body_of(&value);
        if let Some(r) = parsed_or_refused(Login::parse(&body), &["email", "password"]) {
            prop_assert!(normalized(&r.email));
        }
    }

    #[test]
    fn code_request_bodies(value in route_body()) {
        let body = body_of(&value);
        if let Some(r) = parsed_or_refused(CodeRequest::parse(&body), &["email"]) {
            prop_assert!(normalized(&r.email));
        }
    }

    #[test]
    fn password_reset_confirm_bodies(value in route_body()) {
        let body = body_of(&value);
        let cfg = config();
        let fields = ["email", "code", "new_password"];
        if let Some(r) = parsed_or_refused(PasswordResetConfirm::parse(&body, &cfg), &fields) {
            prop_assert!(normalized(&r.email));
            prop_assert_eq!(r.code.expose().len(), cfg.otp_length);
        }
    }

    #[test]
    fn otp_send_bodies(value in route_body()) {
        let body = body_of(&value);
        let cfg = config();
        let fields = ["channel", "to", "purpose", "length", "alphabet", "ttl_seconds", "locale", "fallback", "turnstile_token"];
        if let Some(OtpSend(r)) = parsed_or_refused(OtpSend::parse(&body, &cfg), &fields) {
            prop_assert_eq!(Recipient::parse(r.to.channel(), r.to.address()), Ok(r.to.clone()));
            prop_assert!((4..=10).contains(&r.spec.length));
            prop_assert!((60..=86_400).contains(&r.ttl_secs));
            // A language is a lower-case primary subtag; a fallback only on WhatsApp.
            prop_assert!((2..=3).contains(&r.language.len()) && r.language.bytes().all(|b| b.is_ascii_lowercase()));
            prop_assert!(!r.fallback_sms || r.to.channel() == Channel::Whatsapp);
        }
    }

    #[test]
    fn otp_verify_bodies(value in route_body()) {
        let body = body_of(&value);
        let fields = ["channel", "to", "purpose", "code"];
        if let Some(r) = parsed_or_refused(OtpVerify::parse(&body), &fields) {
            prop_assert_eq!(Recipient::parse(r.to.channel(), r.to.address()), Ok(r.to.clone()));
            prop_assert!(r.code.expose().bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
    }

    #[test]
    fn create_key_bodies(value in route_body()) {
        let body = body_of(&value);
        let fields = ["name", "app_name", "channels", "sms_domain", "android_app_hash", "turnstile_required"];
        if let Some(CreateKey(k)) = parsed_or_refused(CreateKey::parse(&body), &fields) {
            prop_assert!(!k.channels.names().is_empty());
            prop_assert_eq!(k.name.trim(), k.name.as_str());
            // Whatever reaches an SMS body is one line of a host name's characters.
            if let Some(d) = &k.options.sms_domain {
                prop_assert!(d.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'));
            }
            if let Some(h) = &k.options.android_app_hash {
                prop_assert_eq!(h.as_str().len(), 11);
            }
        }
    }

    #[test]
    fn create_oidc_client_bodies(value in route_body()) {
        let body = body_of(&value);
        let fields = ["name", "type", "redirect_uris", "post_logout_redirect_uris", "api_key_id"];
        if let Some(CreateOidcClient(c)) = parsed_or_refused(CreateOidcClient::parse(&body), &fields) {
            prop_assert!(!c.redirect_uris.is_empty() && c.redirect_uris.len() <= 10);
            // Every URI a sign-in may be sent to is https, or http on the
            // loopback host, with no fragment and nothing a browser could
            // read as another host.
            for uri in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                let loopback = |rest: &&str| matches!(rest.split(['/', ':', '?']).next(), Some("localhost" | "127.0.0.1"));
                prop_assert!(uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://").filter(loopback)).is_some());
                prop_assert!(!uri.contains('#') && !uri.contains('@') && !uri.contains('\\'));
            }
            prop_assert_eq!(c.name.trim(), c.name.as_str());
        }
    }

    #[test]
    fn test_recipient_bodies(value in route_body(), path_id in "[0-9a-f]{32}") {
        let body = body_of(&value);
        let path = format!("/v1/admin/api-keys/{path_id}/test-recipients");
        if let Some(r) = parsed_or_refused(AddTestRecipient::parse(&path, &body), &["channel", "to", "code"]) {
            prop_assert_eq!(r.key_id, path_id);
            prop_assert_eq!(Recipient::parse(r.recipient.to.channel(), r.recipient.to.address()), Ok(r.recipient.to.clone()));
            prop_assert!(r.recipient.code.expose().bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        }
    }

    #[test]
    fn test_recipient_removal_queries(query in ".{0,120}", path in ".{0,80}") {
        let fields = ["channel", "to"];
        if let Some(r) = parsed_or_refused(RemoveTestRecipient::parse(&path, &query), &fields) {
            prop_assert_eq!(Recipient::parse(r.to.channel(), r.to.address()), Ok(r.to.clone()));
        }
    }

    #[test]
    fn revoke_key_and_events_paths(path in "/v1/admin/api-keys/.{0,40}", query in ".{0,60}|limit=[0-9]{1,4}&before=[0-9]{1,20}&address=.{0,20}") {
        let id = RevokeKey::parse(&path).id;
        prop_assert!(!id.contains('/'));
        if let Some(q) = parsed_or_refused(EventsQuery::parse(&query), &["limit", "before", "kind"]) {
            prop_assert!((1..=500).contains(&q.page.limit));
        }
    }

    /// Whatever form a client posts, the token endpoint's parser answers
    /// with a request or an OAuth error, never a panic.
    #[test]
    fn token_requests(
        pairs in proptest::collection::vec(
            (prop_oneof![
                Just("grant_type".to_string()), Just("code".to_string()), Just("redirect_uri".to_string()),
                Just("code_verifier".to_string()), Just("refresh_token".to_string()),
                Just("client_id".to_string()), Just("client_secret".to_string()), Just("resource".to_string()),
                ".{0,12}",
            ], prop_oneof![Just("authorization_code".to_string()), Just("refresh_token".to_string()), ".{0,60}"]),
            0..8,
        ),
        basic in proptest::option::of(".{0,60}"),
    ) {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
        let authorization = basic.map(|b| format!("Basic {b}"));
        match TokenCall::parse(authorization.as_deref(), Some("application/x-www-form-urlencoded"), body.as_bytes()) {
            Ok(call) => prop_assert!(!call.creds.client_id.is_empty()),
            Err(ApiError::OAuth(_)) => {}
            Err(other) => prop_assert!(false, "not an OAuth error: {other:?}"),
        }
    }

    /// Whatever a page's link carries as `oauth`, it opens only as sealed:
    /// a changed seal or body is no request at all.
    #[test]
    fn a_carried_request_opens_only_as_sealed(raw in ".{0,200}", flip in 0usize..400) {
        let pepper = Pepper::new("an-example-pepper-of-at-least-32-bytes!").unwrap();
        prop_assert_eq!(AuthorizationRequest::unseal(&raw, &pepper, 1_000), None);
        let request = AuthorizeQuery::parse(
            "client_id=oc_0123456789abcdefghijkl&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid",
        );
        let client = otp_edge::domain::oidc_client::Client {
            id: "oc_0123456789abcdefghijkl".into(),
            name: "Notes".into(),
            kind: otp_edge::domain::oidc_client::ClientKind::Confidential,
            redirect_uris: vec!["https://app.example/cb".into()],
            post_logout_redirect_uris: vec![],
            api_key_id: None,
            created_at: 0,
            self_registered: flip % 2 == 0,
            id_token_alg: otp_edge::domain::jwk::Alg::Rs256,
        };
        let sealed = request.validate(&client, &Resources::default(), 1_000).unwrap().seal(&pepper);
        let mut bytes = sealed.clone().into_bytes();
        let i = flip % bytes.len();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        if changed != sealed {
            prop_assert_eq!(AuthorizationRequest::unseal(&changed, &pepper, 1_000), None);
        }
    }

    /// A redirect URI a client may register is its own normal form, and
    /// nothing in it reads as another host.
    #[test]
    fn registered_redirect_uris_are_their_own_normal_form(
        raw in prop_oneof![
            r"(https?:)?(//|/\\|%2[fF]%2[fF])?[a-z.@:%/\\]{0,30}",
            r"https://app\.example\.com[@:./\\%#?a-z0-9]{0,20}",
        ],
    ) {
        if let Ok(uri) = otp_edge::domain::oidc_client::parse_redirect_uri("redirect_uris", &raw) {
            prop_assert_eq!(&uri, &raw);
            let authority = uri.split("://").nth(1).unwrap_or("").split(['/', '?']).next().unwrap_or("");
            prop_assert!(!authority.contains('@') && !authority.contains('%'), "{}", uri);
        }
        let _ = Form::parse(raw.as_bytes()).get("csrf");
    }
}
