//! What each route costs on the platform: the round trips on its path to
//! the answer (in production each D1 or KV call and each provider call
//! crosses the network: a few ms to D1's primary in its region, 100 ms or
//! more from another continent), every call it makes, and the Argon2 runs
//! (~45 ms of CPU each in workerd).
//!
//! Each route's flow runs over the testkit with tracing adapters, called
//! as `edge::dispatch` calls it on success (dispatch itself adds no I/O
//! then: on `/v1/otp/*` the flows look the key up), then what the worker
//! does after the answer (`wait_until`): the deferred mail, the `Later` KV
//! writes, the audit trail. Each store method is one D1 call (one
//! statement or one `batch`) in `edge::d1`; a read retried after a
//! transient failure would be a second. Calls awaited together
//! with `join` share a round. `EXPECTED` pins the table: a route that gets
//! slower, or faster, fails here until the table and docs/performance.md
//! (which shows the same table) say so.
//!
//! Not here, because they are not flows: `GET /healthz` (one D1 read) and
//! `GET /openapi.json` (none). The Rate Limiting binding's check on every
//! request is answered in the colo from a cache the platform keeps, not a
//! round trip to a store, and is left out of the counts.

use super::testkit::{Resource, Traced, World, ADMIN};
use super::Deferred;
use crate::domain::api_key::NewApiKey;
use crate::domain::audit::EventPage;
use crate::domain::channel::Channel;
use crate::domain::code::CodeSpec;
use crate::domain::email::Email;
use crate::domain::oauth::AuthorizeQuery;
use crate::domain::oidc_client::NewClient;
use crate::domain::password::{Password, ARGON2_RUNS};
use crate::domain::purpose::{AppPurpose, Purpose};
use crate::domain::recipient::Recipient;
use crate::domain::recovery_code::SecondFactor;
use crate::domain::registrant::PasswordProof;
use crate::domain::session::{Audience, Presented};
use crate::error::{ApiError, ApiResult};
use crate::ports::store::{AppStore, AuditStore, SessionStore};
use crate::providers::mail::Mailer;
use crate::service::AppCode;
use crate::service::{ClientCredentials, GrantRequest};
use pollster::block_on;
use std::cell::Cell;
use std::collections::BTreeSet;
use std::future::Future;
use std::time::Instant;

thread_local! {
    /// The native time of the last flow `measure` ran, in ms.
    static FLOW_MS: Cell<f64> = const { Cell::new(0.0) };
}

/// Milliseconds one round trip adds, for the table's estimate: D1's
/// primary from a colo in its region is a few ms, from another continent
/// 100 ms or more.
const MS_PER_ROUND: usize = 30;

/// One route's cost: on the path to the answer, and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    route: &'static str,
    /// Sequential rounds of network calls before the answer.
    rounds: usize,
    d1: usize,
    kv: usize,
    outbound: usize,
    argon2: usize,
    /// Calls after the answer (`wait_until`): D1, KV, outbound.
    later: (usize, usize, usize),
}

const fn cost(
    route: &'static str,
    rounds: usize,
    (d1, kv, outbound): (usize, usize, usize),
    argon2: usize,
    later: (usize, usize, usize),
) -> Cost {
    Cost {
        route,
        rounds,
        d1,
        kv,
        outbound,
        argon2,
        later,
    }
}

/// The table: route, rounds before the answer, (D1, KV, provider) calls
/// before it, Argon2 runs, and (D1, KV, provider) calls after it.
#[rustfmt::skip]
const EXPECTED: &[Cost] = &[
    cost("POST /v1/register",                         3, (1, 1, 1), 1, (1, 1, 0)),
    cost("POST /v1/verify-email",                     2, (2, 0, 0), 0, (1, 0, 0)),
    cost("POST /v1/resend",                           2, (1, 1, 0), 0, (1, 1, 1)),
    cost("POST /v1/login",                            2, (2, 0, 0), 1, (1, 0, 0)),
    cost("POST /v1/login (wrong password)",           1, (1, 0, 0), 1, (1, 0, 0)),
    cost("POST /v1/login (unverified: mails a code)", 1, (1, 0, 0), 1, (2, 1, 1)),
    cost("POST /v1/login/code",                       2, (1, 1, 0), 0, (1, 1, 1)),
    cost("POST /v1/login/code/verify",                2, (2, 0, 0), 0, (1, 0, 0)),
    cost("POST /v1/password-reset",                   2, (1, 1, 0), 0, (1, 1, 1)),
    cost("POST /v1/password-reset/confirm",           2, (2, 0, 0), 1, (1, 0, 0)),
    cost("GET /v1/me",                                1, (1, 0, 0), 0, (0, 0, 0)),
    cost("POST /v1/me/totp",                          2, (2, 0, 0), 0, (0, 0, 0)),
    cost("POST /v1/me/totp/confirm",                  3, (3, 0, 0), 0, (1, 0, 1)),
    cost("POST /v1/me/totp/recovery-codes",           3, (3, 0, 0), 0, (1, 0, 1)),
    cost("POST /v1/login (second step asked)",        2, (2, 0, 0), 1, (1, 0, 0)),
    cost("POST /v1/login/mfa",                        2, (2, 0, 0), 0, (1, 0, 0)),
    cost("DELETE /v1/me/totp",                        3, (3, 0, 0), 0, (1, 0, 1)),
    cost("POST /v1/logout",                           1, (1, 0, 0), 0, (1, 0, 0)),
    cost("POST /v1/otp/send (email)",                 3, (2, 1, 1), 0, (1, 1, 0)),
    cost("POST /v1/otp/send (sms)",                   3, (2, 1, 1), 0, (1, 1, 0)),
    cost("POST /v1/otp/verify",                       2, (2, 0, 0), 0, (1, 0, 0)),
    cost("GET /v1/otp/{id}",                          1, (1, 0, 0), 0, (0, 0, 0)),
    cost("POST /v1/otp/send (test recipient)",        2, (2, 1, 0), 0, (1, 0, 0)),
    cost("GET /v1/admin/stats",                       1, (1, 0, 0), 0, (0, 0, 0)),
    cost("GET /v1/admin/api-keys",                    1, (1, 0, 0), 0, (0, 0, 0)),
    cost("POST /v1/admin/api-keys",                   1, (1, 0, 0), 0, (1, 0, 0)),
    cost("DELETE /v1/admin/api-keys/{id}",            1, (1, 0, 0), 0, (1, 0, 0)),
    cost("GET /v1/admin/events",                      1, (1, 0, 0), 0, (0, 0, 0)),
    cost("GET /oauth/authorize (signed in)",          1, (1, 0, 0), 0, (0, 0, 0)),
    cost("POST /oauth/token (authorization_code)",    1, (1, 0, 0), 0, (1, 0, 0)),
    cost("POST /oauth/token (refresh_token)",         1, (1, 0, 0), 0, (1, 0, 0)),
    cost("GET /oauth/userinfo",                       1, (1, 0, 0), 0, (0, 0, 0)),
    cost("POST /oauth/revoke",                        1, (1, 0, 0), 0, (1, 0, 0)),
    cost("POST /oauth/register",                      1, (1, 0, 0), 0, (1, 0, 0)),
    cost("GET /admin (console overview)",             1, (3, 0, 0), 0, (0, 0, 0)),
];

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn pw(s: &str) -> Password {
    Password::parse(s, 8, "password").unwrap()
}

fn count(calls: &[Traced], on: Resource) -> usize {
    calls.iter().filter(|c| c.on == on).count()
}

/// Runs `flow` as one request, then the worker's work after the answer,
/// and returns what it cost. `deferred` is the mail the answer leaves for
/// later, if the flow returns one.
fn measure<R>(
    w: &World,
    route: &'static str,
    flow: impl Future<Output = ApiResult<R>>,
    deferred: impl FnOnce(&ApiResult<R>) -> Deferred,
) -> Cost {
    let rounds = &w.faults.rounds;
    w.after_answer_now();
    w.audit.take();
    rounds.take();
    ARGON2_RUNS.with(|r| r.set(0));
    rounds.concurrent.set(true);
    let started = Instant::now();
    let result = block_on(flow);
    FLOW_MS.with(|t| t.set(started.elapsed().as_secs_f64() * 1e3));
    // A row pins the cost of the outcome it names, not of an early failure.
    let expected = match route {
        r if r.contains("(unverified") || r.contains("(wrong password)") => {
            Some("invalid_credentials")
        }
        r if r.contains("(wrong code)") => Some("invalid_code"),
        r if r.contains("(second step asked)") => Some("mfa_required"),
        _ => None,
    };
    assert_eq!(
        result.as_ref().err().map(ApiError::code),
        expected,
        "{route}"
    );
    let path = rounds.take();
    let argon2 = ARGON2_RUNS.with(|r| r.get());
    // After the answer, as `edge::handle` and `dispatch::code_sent` do it.
    let mail = deferred(&result);
    block_on(async {
        if let Some(message) = mail {
            (&w.outbox).send(&message).await.unwrap();
        }
        w.after_answer().await;
        let events = w.audit.take();
        if !events.is_empty() {
            (&w.store).record_events(&events, "ip", 0).await.unwrap();
        }
    });
    let later = rounds.take();
    rounds.concurrent.set(false);
    Cost {
        route,
        rounds: path.iter().map(|c| c.round).collect::<BTreeSet<_>>().len(),
        d1: count(&path, Resource::D1),
        kv: count(&path, Resource::Kv),
        outbound: count(&path, Resource::Outbound),
        argon2,
        later: (
            count(&later, Resource::D1),
            count(&later, Resource::Kv),
            count(&later, Resource::Outbound),
        ),
    }
}

fn no_mail<R>(_: &ApiResult<R>) -> Deferred {
    None
}

fn the_mail(r: &ApiResult<Deferred>) -> Deferred {
    r.as_ref().ok().cloned().flatten()
}

/// Every route's cost, measured.
fn measured() -> Vec<Cost> {
    measured_in(&[]).into_iter().map(|(cost, _)| cost).collect()
}

/// Every route's cost and the native time of its flow, in a world with
/// the configuration `vars`.
fn measured_in(vars: &[(&str, &str)]) -> Vec<(Cost, f64)> {
    let mut costs = vec![];
    let mut costs_push = |cost: Cost| costs.push((cost, FLOW_MS.with(Cell::get)));
    let ann = email("ann@example.com");
    let password = pw("correct horse");
    // A world with ann registered, verified, and past every cooldown.
    let verified = || {
        let w = World::new(vars);
        block_on(async {
            w.svc().register(&ann, &password).await.unwrap();
            w.svc()
                .verify_email(&ann, &w.last_code(), &PasswordProof::None)
                .await
                .unwrap();
        });
        w.after_answer_now();
        w.advance(61);
        w
    };

    let w = World::new(vars);
    costs_push(measure(
        &w,
        "POST /v1/register",
        w.svc().register(&ann, &password),
        no_mail,
    ));
    let code = w.last_code();
    costs_push(measure(
        &w,
        "POST /v1/verify-email",
        w.svc().verify_email(&ann, &code, &PasswordProof::None),
        no_mail,
    ));

    let w = World::new(vars);
    block_on(w.svc().register(&ann, &password)).unwrap();
    w.after_answer_now();
    w.advance(61);
    costs_push(measure(
        &w,
        "POST /v1/resend",
        w.svc().resend(&ann, Purpose::VerifyEmail),
        the_mail,
    ));
    w.advance(61);
    costs_push(measure(
        &w,
        "POST /v1/login (unverified: mails a code)",
        w.svc().login(&ann, &password, Audience::Api),
        no_mail,
    ));

    let w = verified();
    costs_push(measure(
        &w,
        "POST /v1/login (wrong password)",
        w.svc().login(&ann, &pw("wrong horse"), Audience::Api),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "POST /v1/login",
        w.svc().login(&ann, &password, Audience::Api),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "POST /v1/login/code",
        w.svc().login_code(&ann),
        the_mail,
    ));
    let code = w.last_code();
    costs_push(measure(
        &w,
        "POST /v1/login/code/verify",
        w.svc().login_with_code(&ann, &code, Audience::Api),
        no_mail,
    ));

    // Second factors: an account with an authenticator app.
    let w = verified();
    let session = w.login_token(&ann, &password);
    let svc = w.svc();
    let me = || svc.me(Some(&session), Presented::Bearer);
    costs_push(measure(
        &w,
        "POST /v1/me/totp",
        async { w.svc().begin_totp(&me().await?).await },
        no_mail,
    ));
    let user = block_on(me()).unwrap();
    let secret = block_on(w.svc().pending_totp(&user))
        .unwrap()
        .unwrap()
        .secret;
    let code = w.totp_now(&secret);
    costs_push(measure(
        &w,
        "POST /v1/me/totp/confirm",
        async { w.svc().confirm_totp(&me().await?, &code).await },
        |r| r.as_ref().ok().and_then(|(_, mail)| mail.clone()),
    ));
    w.advance(30);
    let code = w.totp_now(&secret);
    costs_push(measure(
        &w,
        "POST /v1/me/totp/recovery-codes",
        async { w.svc().replace_recovery_codes(&me().await?, &code).await },
        |r| r.as_ref().ok().and_then(|(_, mail)| mail.clone()),
    ));
    w.advance(30);
    costs_push(measure(
        &w,
        "POST /v1/login (second step asked)",
        w.svc().login(&ann, &password, Audience::Api),
        no_mail,
    ));
    let ticket = World::mfa_token(block_on(w.svc().login(&ann, &password, Audience::Api)));
    let proof = SecondFactor::Totp(w.totp_now(&secret));
    costs_push(measure(
        &w,
        "POST /v1/login/mfa",
        w.svc().login_mfa(&ticket, &proof, Audience::Api),
        |r| r.as_ref().ok().and_then(|(_, mail)| mail.clone()),
    ));
    w.advance(30);
    let proof = SecondFactor::Totp(w.totp_now(&secret));
    costs_push(measure(
        &w,
        "DELETE /v1/me/totp",
        async { w.svc().remove_totp(&me().await?, &proof).await },
        the_mail,
    ));
    costs_push(measure(
        &w,
        "POST /v1/password-reset",
        w.svc().password_reset(&ann),
        the_mail,
    ));
    let code = w.last_code();
    costs_push(measure(
        &w,
        "POST /v1/password-reset/confirm",
        w.svc()
            .confirm_password_reset(&ann, &code, &pw("battery staple")),
        no_mail,
    ));

    // The OpenID Provider: a signed-in browser's code, then a confidential
    // client's calls. Signatures are the runtime's WebCrypto, no round trip.
    let keys = crate::domain::jwk::tests::sample_set();
    let mut oidc_vars = vars.to_vec();
    oidc_vars.extend([
        ("OIDC_SIGNING_KEYS", keys.as_str()),
        ("PUBLIC_BASE_URL", "https://id.example"),
        ("OIDC_DYNAMIC_REGISTRATION", "true"),
    ]);
    let w = World::new(&oidc_vars);
    block_on(async {
        w.svc().register(&ann, &password).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    w.after_answer_now();
    let browser = w.browser_token(&ann, &password);
    let new = NewClient::parse(
        "Notes",
        "confidential",
        &["https://app.example/cb"],
        &[],
        None,
    )
    .unwrap();
    let (client, secret) = block_on(w.svc().create_oidc_client(ADMIN, &new)).unwrap();
    let creds = ClientCredentials {
        client_id: client.id.clone(),
        secret: secret.map(|s| s.expose().to_owned()),
        basic: true,
    };
    let request = AuthorizeQuery::parse(&format!(
        "client_id={}&redirect_uri=https://app.example/cb&response_type=code&scope=openid+email+offline_access",
        client.id
    ))
    .validate(&client, &w.cfg.oidc_resources, w.clock.0.get())
    .unwrap();
    let to = std::cell::RefCell::new(None);
    costs_push(measure(
        &w,
        "GET /oauth/authorize (signed in)",
        async {
            let next = w
                .svc()
                .authorization_code(Some(&browser), &request, crate::service::Consent::NotAsked)
                .await?;
            *to.borrow_mut() = next.redirect();
            Ok(())
        },
        no_mail,
    ));
    let to = to.take().unwrap();
    let code = to.split("code=").nth(1).unwrap().split('&').next().unwrap();
    let grant = GrantRequest::AuthorizationCode {
        code: code.to_owned(),
        redirect_uri: "https://app.example/cb".into(),
        verifier: None,
        resource: None,
    };
    let tokens = std::cell::RefCell::new(None);
    costs_push(measure(
        &w,
        "POST /oauth/token (authorization_code)",
        async {
            *tokens.borrow_mut() = Some(w.svc().token(&creds, &grant).await?);
            Ok(())
        },
        no_mail,
    ));
    let first = tokens.take().unwrap();
    let refresh = GrantRequest::RefreshToken {
        refresh_token: first.refresh_token.as_ref().unwrap().expose().to_owned(),
        resource: None,
    };
    costs_push(measure(
        &w,
        "POST /oauth/token (refresh_token)",
        w.svc().token(&creds, &refresh),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "GET /oauth/userinfo",
        w.svc().userinfo(Some(&first.access_token)),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "POST /oauth/revoke",
        w.svc().revoke(&creds, &first.access_token),
        no_mail,
    ));
    let registration = crate::domain::client_registration::Registration::parse(
        Some("application/json"),
        br#"{"redirect_uris": ["http://localhost:6274/cb"], "client_name": "Inspector"}"#,
    )
    .unwrap();
    costs_push(measure(
        &w,
        "POST /oauth/register",
        w.svc().register_client(&registration, Some("198.51.100.7")),
        no_mail,
    ));
    let token = w.login_token(&ann, &password);
    costs_push(measure(
        &w,
        "GET /v1/me",
        w.svc().me(Some(&token), Presented::Bearer),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "POST /v1/logout",
        w.svc().logout(Some(&token), Presented::Bearer),
        no_mail,
    ));

    for (channel, to, route) in [
        (
            Channel::Email,
            "bob@example.com",
            "POST /v1/otp/send (email)",
        ),
        (Channel::Sms, "+14155550100", "POST /v1/otp/send (sms)"),
    ] {
        let w = World::new(vars);
        let (_, secret) = w.api_key(&["email", "sms"]);
        let request = AppCode::new(
            Recipient::parse(channel, to).unwrap(),
            AppPurpose::parse("checkout").unwrap(),
            CodeSpec::digits(6),
            300,
        )
        .unwrap();
        let svc = w.svc();
        costs_push(measure(
            &w,
            route,
            svc.send_app_code(&secret, &request),
            no_mail,
        ));
        if channel == Channel::Email {
            let code = w.last_code();
            let verify = svc.verify_app_code(&secret, &request.to, &request.purpose, &code);
            costs_push(measure(&w, "POST /v1/otp/verify", verify, no_mail));
        } else {
            let id = w.store.codes.borrow().values().next().unwrap().0.id.clone();
            let report = svc.send_report(&secret, &id);
            costs_push(measure(&w, "GET /v1/otp/{id}", report, no_mail));
        }
    }

    // A test recipient's send: the key's lookup finds it, nothing goes out.
    let w = World::new(
        &[
            vars,
            &[("ENVIRONMENT", "development"), ("MAIL_PROVIDER", "log")],
        ]
        .concat(),
    );
    let (key, secret) = w.api_key(&["sms"]);
    let reviewer = crate::domain::test_recipient::NewTestRecipient::parse(
        Channel::Sms,
        "+15555550100",
        "424242",
    )
    .unwrap();
    block_on(w.svc().add_test_recipient(ADMIN, &key.id, &reviewer)).unwrap();
    let request = AppCode::new(
        Recipient::parse(Channel::Sms, "+15555550100").unwrap(),
        AppPurpose::parse("checkout").unwrap(),
        CodeSpec::digits(6),
        300,
    )
    .unwrap();
    costs_push(measure(
        &w,
        "POST /v1/otp/send (test recipient)",
        w.svc().send_app_code(&secret, &request),
        no_mail,
    ));

    let w = verified();
    let svc = w.svc();
    costs_push(measure(
        &w,
        "GET /v1/admin/stats",
        svc.admin_stats(ADMIN),
        no_mail,
    ));
    costs_push(measure(
        &w,
        "GET /v1/admin/api-keys",
        svc.api_keys(ADMIN),
        no_mail,
    ));
    let new = NewApiKey::parse("shop", None, &["email"]).unwrap();
    let created = measure(
        &w,
        "POST /v1/admin/api-keys",
        svc.create_api_key(ADMIN, &new),
        no_mail,
    );
    costs_push(created);
    let id = w.store.keys.borrow()[0].1.id.clone();
    costs_push(measure(
        &w,
        "DELETE /v1/admin/api-keys/{id}",
        svc.revoke_api_key(ADMIN, &id),
        no_mail,
    ));
    let page = EventPage::parse(None, None).unwrap();
    costs_push(measure(
        &w,
        "GET /v1/admin/events",
        svc.events(ADMIN, &page, None, None),
        no_mail,
    ));
    // The console's overview reads both at once, as `edge::pages` does.
    costs_push(measure(
        &w,
        "GET /admin (console overview)",
        async {
            let (stats, activity) =
                futures_util::future::join(svc.admin_stats(ADMIN), svc.activity(ADMIN)).await;
            stats.and(activity)
        },
        no_mail,
    ));
    costs
}

/// The table as docs/performance.md shows it.
fn markdown(costs: &[Cost]) -> String {
    let mut out = String::from(
        "| Route | Rounds before the answer | Est. added latency | D1 / KV / provider calls before | Argon2 runs | D1 / KV / provider calls after |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for c in costs {
        out += &format!(
            "| `{}` | {} | {} ms | {} / {} / {} | {} | {} / {} / {} |\n",
            c.route,
            c.rounds,
            c.rounds * MS_PER_ROUND,
            c.d1,
            c.kv,
            c.outbound,
            c.argon2,
            c.later.0,
            c.later.1,
            c.later.2
        );
    }
    out
}

#[test]
fn every_route_makes_the_round_trips_the_table_says() {
    let mut measured = measured();
    let order = |c: &Cost| EXPECTED.iter().position(|e| e.route == c.route);
    measured.sort_by_key(order);
    assert!(
        measured == EXPECTED,
        "measured:\n{}\nexpected:\n{}",
        markdown(&measured),
        markdown(EXPECTED)
    );
}

/// Routes with no row, and why: a new route gets a row or a reason here,
/// or `every_route_has_a_row_or_a_reason` fails.
const UNMEASURED: &[(&str, &str)] = &[
    ("GET /healthz", "one D1 read of the schema, no flow"),
    ("GET /openapi.json", "no I/O: the contract is in the wasm"),
    (
        "GET /.well-known/jwks.json",
        "no I/O: the keys are in the config",
    ),
    (
        "GET /.well-known/openid-configuration",
        "no I/O: the metadata is the config's",
    ),
    (
        "GET /.well-known/oauth-authorization-server",
        "no I/O: the metadata is the config's",
    ),
    (
        "POST /oauth/userinfo",
        "the same flow as GET /oauth/userinfo",
    ),
    (
        "POST /v1/hooks/twilio/status",
        "a provider's report, off the users' path",
    ),
    (
        "POST /v1/hooks/resend",
        "a provider's report, off the users' path",
    ),
    (
        "POST /v1/admin/api-keys/{id}/test-recipients",
        "the operator's, one D1 write",
    ),
    (
        "GET /v1/admin/api-keys/{id}/test-recipients",
        "the operator's, one D1 read",
    ),
    (
        "DELETE /v1/admin/api-keys/{id}/test-recipients",
        "the operator's, one D1 batch",
    ),
    ("GET /v1/admin/oidc-clients", "the operator's, one D1 read"),
    (
        "POST /v1/admin/oidc-clients",
        "the operator's, one D1 write",
    ),
    (
        "DELETE /v1/admin/oidc-clients/{id}",
        "the operator's, one D1 write",
    ),
];

#[test]
fn every_route_has_a_row_or_a_reason() {
    for row in crate::http::routes::TABLE.iter() {
        let route = format!("{} {}", row.method, row.path);
        let measured = EXPECTED
            .iter()
            .any(|c| c.route == route || c.route.starts_with(&format!("{route} (")));
        let excused = UNMEASURED.iter().any(|(r, _)| *r == route);
        assert!(
            measured != excused,
            "{route}: a row in EXPECTED or a reason in UNMEASURED, not both nor neither"
        );
    }
}

#[test]
fn the_performance_doc_shows_the_table() {
    let doc = include_str!("../../docs/performance.md");
    let table = markdown(EXPECTED);
    assert!(
        doc.contains(&table),
        "docs/performance.md must hold this table:\n{table}"
    );
}

#[test]
fn the_targets_hold_code_sends_one_kv_round_and_me_one_d1_round() {
    for c in EXPECTED {
        let sends = [
            "POST /v1/resend",
            "POST /v1/login/code",
            "POST /v1/password-reset",
            "POST /v1/register",
        ];
        if sends.contains(&c.route) || c.route.starts_with("POST /v1/otp/send") {
            assert!(c.kv <= 1, "{}: one KV read on the path", c.route);
            assert!(c.outbound <= 1, "{}: one delivery at most", c.route);
        }
    }
    let me = EXPECTED.iter().find(|c| c.route == "GET /v1/me").unwrap();
    assert_eq!((me.rounds, me.d1), (1, 1));
}

#[test]
fn calls_awaited_together_share_a_round() {
    let w = World::new(&[]);
    let rounds = &w.faults.rounds;
    rounds.concurrent.set(true);
    let svc = w.svc();
    block_on(async {
        let _ = futures_util::future::join(
            svc.store.session_user("t", 0, Presented::Bearer),
            svc.store.api_keys(),
        )
        .await;
        let _ = svc.store.session_user("t", 0, Presented::Bearer).await;
    });
    let calls = rounds.take();
    let per_round: Vec<usize> = calls.iter().map(|c| c.round).collect();
    assert_eq!(per_round[0], per_round[1], "joined: one round");
    assert_eq!(
        per_round[2],
        per_round[1] + 1,
        "awaited after: the next round"
    );
}

/// The native time of each route's flow at the production Argon2
/// parameters, for the plan-limit table of `bench/run`: it runs
/// `cargo test --release --lib cpu_per_route -- --ignored --nocapture`,
/// which prints one JSON line per route.
#[test]
#[ignore = "a measurement for bench/run, not a check"]
fn cpu_per_route() {
    let production = [("ARGON2_MEMORY_KIB", "19456"), ("ARGON2_ITERATIONS", "2")];
    for (cost, ms) in measured_in(&production) {
        let line = serde_json::json!({"route": cost.route, "native_ms": ms, "argon2": cost.argon2});
        println!("CPU {line}");
    }
}

/// What an answer cost before it went out: the part a caller can time.
fn path(c: &Cost) -> (usize, usize, usize, usize, usize) {
    (c.rounds, c.d1, c.kv, c.outbound, c.argon2)
}

#[test]
fn unknown_addresses_make_the_same_round_trips_as_known_ones() {
    let w = World::new(&[]);
    let (ann, ghost) = (email("ann@example.com"), email("ghost@example.com"));
    let password = pw("correct horse");
    block_on(async {
        w.svc().register(&ann, &password).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
    });
    w.after_answer_now();
    let svc = w.svc();
    let cost = |who: &Email, route: &'static str| -> Cost {
        w.advance(61); // past every cooldown
        let wrong_code = crate::domain::code::Code::parse("000000", 6).unwrap();
        match route {
            "resend" => measure(&w, route, svc.resend(who, Purpose::VerifyEmail), the_mail),
            "login/code" => measure(&w, route, svc.login_code(who), the_mail),
            "password-reset" => measure(&w, route, svc.password_reset(who), the_mail),
            _ => {
                // A wrong guess, after a code was filed for either address.
                block_on(svc.login_code(who)).unwrap();
                let guess = svc.login_with_code(who, &wrong_code, Audience::Api);
                measure(&w, route, guess, no_mail)
            }
        }
    };
    for route in [
        "resend",
        "login/code",
        "password-reset",
        "login/code/verify (wrong code)",
    ] {
        let (known, unknown) = (cost(&ann, route), cost(&ghost, route));
        assert_eq!(
            path(&known),
            path(&unknown),
            "{route}: known {known:?}, unknown {unknown:?}"
        );
    }
}

#[test]
fn a_password_sign_in_costs_the_same_before_its_answer_for_every_address() {
    // ann verified, bob registered and unverified, with the attacker's
    // password (the two-request probe: register, then sign in), ghost unknown.
    let w = World::new(&[]);
    let (ann, bob, ghost) = (
        email("ann@example.com"),
        email("bob@example.com"),
        email("ghost@example.com"),
    );
    let password = pw("attacker pw");
    block_on(async {
        w.svc().register(&ann, &pw("correct horse")).await.unwrap();
        w.svc()
            .verify_email(&ann, &w.last_code(), &PasswordProof::None)
            .await
            .unwrap();
        w.svc().register(&bob, &password).await.unwrap();
    });
    w.after_answer_now();
    w.advance(61); // past the cooldown of bob's sign-up
    let route = "POST /v1/login (wrong password)";
    let costs: Vec<Cost> = [&ann, &bob, &ghost]
        .into_iter()
        .map(|who| {
            measure(
                &w,
                route,
                w.svc().login(who, &password, Audience::Api),
                no_mail,
            )
        })
        .collect();
    assert_eq!(
        path(&costs[0]),
        path(&costs[1]),
        "verified vs unverified with the right password"
    );
    assert_eq!(path(&costs[0]), path(&costs[2]), "verified vs unknown");
    // Only after the answer does bob's code get renewed and mailed.
    assert_eq!(costs[1].later, (2, 1, 1));
}
