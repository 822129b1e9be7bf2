//! The Workers runtime side: entry points, bindings, and the mapping
//! between HTTP and the domain. Handlers parse, call `Service`, and map.

mod d1_store;
mod kv_counters;
mod mailer;
mod outbound;
mod respond;
mod texter;

use crate::config::Config;
use crate::domain::api_key::{ApiKey, NewApiKey};
use crate::domain::audit::{Audit, Event, EventPage};
use crate::domain::channel::{Channel, Recipient};
use crate::domain::code::{Alphabet, Code, CodeSpec};
use crate::domain::email::Email;
use crate::domain::password::Password;
use crate::domain::purpose::{AppPurpose, Purpose};
use crate::domain::session::bearer;
use crate::error::{ApiError, ApiResult};
use crate::http::body::{check_declared_length, require_json, BodyBuffer, JsonBody};
use crate::http::cors::Cors;
use crate::http::request_id::request_id;
use crate::http::routes::{key_id, Route};
use crate::ports::clock::{rfc3339, Clock};
use crate::ports::limits::{client_key, RateLimit, APP_LIMIT, CLIENT_LIMIT};
use crate::ports::store::Store as _;
use crate::service::diagnostics::{Diagnostic, Diagnostics};
use crate::service::{AppCode, LoginSession, Service};
use d1_store::D1Store;
use futures_util::StreamExt;
use kv_counters::KvCounters;
use mailer::EdgeMailer;
use respond::{json, log_line, problem};
use serde_json::{json as j, Value};
use texter::TwilioTexter;
use worker::{event, Context, Date, Env, Request, Response, ScheduleContext, ScheduledEvent};

struct WorkerClock;

impl Clock for WorkerClock {
    fn now(&self) -> u64 {
        Date::now().as_millis() / 1_000
    }
}

fn load_config(env: &Env) -> ApiResult<Config> {
    // Vars and secrets are both string bindings on `env`.
    Config::load(|name| env.var(name).ok().map(|v| v.to_string()))
}

fn database(env: &Env) -> ApiResult<D1Store> {
    env.d1("DB").map(D1Store).map_err(|_| {
        ApiError::Unavailable("the D1 binding `DB` is missing (see wrangler.toml)".into())
    })
}

fn counters(env: &Env) -> ApiResult<KvCounters> {
    env.kv("RATE_LIMIT").map(KvCounters).map_err(|_| {
        ApiError::Unavailable("the KV binding `RATE_LIMIT` is missing (see wrangler.toml)".into())
    })
}

fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    let started = Date::now().as_millis();
    let request_id = request_id(header(&req, "cf-ray").as_deref());
    let method = req.inner().method();
    let path = req.path();
    let cors = Cors::parse(
        env.var("CORS_ALLOWED_ORIGINS")
            .ok()
            .map(|v| v.to_string())
            .as_deref(),
    )
    .map_err(ApiError::Unavailable);
    let origin = header(&req, "origin");
    let allow_origin = match (&cors, &origin) {
        (Ok(cors), Some(origin)) => cors.allow(origin),
        _ => None,
    };
    let route = Route::resolve(&method, &path);
    // OPTIONS on an existing path: a CORS preflight, or a plain question.
    let preflight = method == "OPTIONS" && matches!(route, Err(ApiError::MethodNotAllowed { .. }));
    let result = match (cors, &route) {
        (Err(e), _) => Err(e),
        (Ok(_), _) if preflight => match (&origin, &allow_origin) {
            (Some(_), None) => Err(ApiError::OriginNotAllowed),
            _ => Ok(respond::preflight(
                &Route::allow(&path).unwrap_or_default(),
                allow_origin.clone(),
            )),
        },
        (Ok(_), Ok(route)) => handle(*route, &request_id, &mut req, &env, &ctx).await,
        (Ok(_), Err(e)) => Err(e.clone()),
    };
    let mut response = result.unwrap_or_else(|e| {
        let logged = match &e {
            ApiError::Internal(detail) => Some(("internal_error", detail)),
            ApiError::StorageUnavailable(detail) => Some(("storage_unavailable", detail)),
            _ => None,
        };
        if let Some((event, detail)) = logged {
            worker::console_error!(
                "{}",
                j!({"event": event, "request_id": request_id, "path": path, "detail": detail})
            );
        }
        problem(&e)
    });
    let name = match (route, preflight) {
        (Ok(route), _) => route.name(),
        (Err(_), true) => "preflight",
        (Err(_), false) => "unmatched",
    };
    log_line(
        &request_id,
        name,
        &method,
        response.status_code(),
        Date::now().as_millis().saturating_sub(started),
    );
    respond::finish(&mut response, &request_id, allow_origin.as_deref());
    Ok(response)
}

type EdgeService<'a> = Service<'a, D1Store, KvCounters, EdgeMailer, TwilioTexter<'a>, WorkerClock>;

/// Counts the request against `limit` for `client`: 429 past it. A
/// missing binding fails closed.
async fn check_limit(env: &Env, limit: RateLimit, client: &str) -> ApiResult<()> {
    let limiter = env.rate_limiter(limit.binding).map_err(|_| {
        ApiError::Unavailable(format!(
            "the rate limiting binding `{}` is missing (see wrangler.toml)",
            limit.binding
        ))
    })?;
    let outcome = limiter.limit(client.to_owned()).await.map_err(|e| {
        ApiError::StorageUnavailable(format!("rate limiter {}: {e}", limit.binding))
    })?;
    match outcome.success {
        true => Ok(()),
        false => Err(ApiError::RateLimited {
            retry_after_secs: limit.period_secs,
        }),
    }
}

async fn handle(
    route: Route,
    request_id: &str,
    req: &mut Request,
    env: &Env,
    ctx: &Context,
) -> ApiResult<Response> {
    if route == Route::OpenApi {
        return Ok(respond::openapi());
    }
    // Every request is counted per client before anything else: before a
    // key or token is looked up, a body read, or D1 touched.
    let ip = header(req, "cf-connecting-ip");
    let client = client_key(ip.as_deref()).unwrap_or_else(|| "unknown".into());
    let limit = match route.takes_api_key() {
        true => APP_LIMIT,
        false => CLIENT_LIMIT,
    };
    check_limit(env, limit, &client).await?;
    if route == Route::Health {
        database(env)?.health().await?;
        return Ok(json(200, &j!({"status": "ok"})));
    }
    let cfg = load_config(env)?;
    let audit = Audit::default();
    let diagnostics = Diagnostics::default();
    let svc = Service {
        cfg: &cfg,
        store: database(env)?,
        counters: counters(env)?,
        mailer: EdgeMailer::new(&cfg, env, request_id),
        texter: TwilioTexter {
            cfg: &cfg,
            request_id,
        },
        clock: WorkerClock,
        audit: &audit,
        diagnostics: &diagnostics,
    };
    let answer = serve(route, &svc, &client, req, env, ctx).await;
    let ip = ip.unwrap_or_else(|| "unknown".into());
    store_events(ctx, env, request_id, audit.take(), ip, svc.clock.now());
    log_diagnostics(request_id, diagnostics.take());
    answer
}

/// Authenticates the caller as the route requires, reads the body, and
/// runs the flow.
async fn serve(
    route: Route,
    svc: &EdgeService<'_>,
    client: &str,
    req: &mut Request,
    env: &Env,
    ctx: &Context,
) -> ApiResult<Response> {
    let token = header(req, "authorization");
    let token = bearer(token.as_deref());
    let app = match route.takes_api_key() {
        false => None,
        true => match svc.api_key(token).await {
            Ok(key) => Some(key),
            // A wrong key also counts against the client's strict limit,
            // so guessing keys gets the same cap as any anonymous request;
            // past it, the refusal is not written to the audit trail either.
            Err(ApiError::Unauthorized) => {
                check_limit(env, CLIENT_LIMIT, client).await?;
                return Err(svc.refuse_key());
            }
            Err(e) => return Err(e),
        },
    };
    if route.is_admin() {
        // Before the body: without the token, nothing about the request matters.
        svc.admin(token)?;
    }
    if route.needs_pepper() {
        // No pepper, no service: answered before the body is read.
        svc.cfg.pepper()?;
    }
    let body = match route.takes_json() {
        false => JsonBody::empty(),
        true => read_json(req).await?,
    };
    match app {
        Some(key) => app_route(route, svc, &key, &body).await,
        None => account_route(route, svc, token, &body, req, ctx).await,
    }
}

/// Failures the flow absorbed, one log line each under the request id.
fn log_diagnostics(request_id: &str, diagnostics: Vec<Diagnostic>) {
    for d in diagnostics {
        worker::console_error!(
            "{}",
            j!({"event": d.event, "request_id": request_id, "detail": d.detail})
        );
    }
}

/// Writes the request's audit events after the answer, so the trail costs
/// the client no time. A failed write is logged; the answer stands, because
/// what it reports (a consumed code, a session) has already happened.
fn store_events(
    ctx: &Context,
    env: &Env,
    request_id: &str,
    events: Vec<Event>,
    ip: String,
    now: u64,
) {
    if events.is_empty() {
        return;
    }
    let (env, request_id) = (env.clone(), request_id.to_owned());
    ctx.wait_until(async move {
        let written = match database(&env) {
            Ok(db) => db.record_events(&events, &ip, now).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            worker::console_error!(
                "{}",
                j!({"event": "audit_write_failed", "request_id": request_id, "code": e.code(), "events": events.len()})
            );
        }
    });
}

/// `/v1/otp/*`, for the app holding `key`.
async fn app_route(
    route: Route,
    svc: &EdgeService<'_>,
    key: &ApiKey,
    body: &JsonBody,
) -> ApiResult<Response> {
    let channel = Channel::parse(body.string("channel")?)?;
    let to = Recipient::parse(channel, body.string("to")?)?;
    let purpose = AppPurpose::parse(body.string("purpose")?)?;
    match route {
        Route::OtpSend => {
            let length = match body.optional_u64("length")? {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => svc.cfg.otp_length,
            };
            let alphabet = match body.optional_string("alphabet")? {
                Some(a) => Alphabet::parse(a)?,
                None => Alphabet::Digits,
            };
            let ttl = body
                .optional_u64("ttl_seconds")?
                .unwrap_or(svc.cfg.otp_ttl_secs);
            let request = AppCode::new(to, purpose, CodeSpec::new(length, alphabet)?, ttl)?;
            let sent = svc.send_app_code(key, &request).await?;
            Ok(json(
                202,
                &j!({"id": sent.id, "expires_at": sent.expires_at}),
            ))
        }
        Route::OtpVerify => {
            let code = Code::parse_any(body.string("code")?)?;
            svc.verify_app_code(key, &to, &purpose, &code).await?;
            Ok(json(200, &j!({"valid": true})))
        }
        _ => Err(ApiError::Internal(format!(
            "{} reached the app routes",
            route.name()
        ))),
    }
}

fn session_json(session: LoginSession) -> Value {
    j!({"token": session.token.expose(), "token_type": "Bearer", "expires_at": session.expires_at})
}

fn key_json(key: &ApiKey) -> Value {
    j!({
        "id": key.id,
        "name": key.name,
        "app_name": key.app_name,
        "channels": key.channels.names(),
        "hint": key.hint,
        "created_at": rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(rfc3339),
    })
}

/// The account flows and the admin routes.
async fn account_route(
    route: Route,
    svc: &EdgeService<'_>,
    token: Option<&str>,
    body: &JsonBody,
    req: &Request,
    ctx: &Context,
) -> ApiResult<Response> {
    let cfg = svc.cfg;
    let email = || Email::parse(body.string("email")?);
    let code = || Code::parse(body.string("code")?, cfg.otp_length);
    match route {
        Route::Register => {
            let (email, password) = (
                email()?,
                Password::parse(
                    body.string("password")?,
                    cfg.password_min_length,
                    "password",
                )?,
            );
            svc.register(&email, &password).await?;
            Ok(json(202, &j!({"status": "verification_sent"})))
        }
        Route::VerifyEmail => {
            svc.verify_email(&email()?, &code()?).await?;
            Ok(json(200, &j!({"status": "verified"})))
        }
        Route::Resend => {
            let (email, purpose) = (
                email()?,
                Purpose::parse_resendable(body.string("purpose")?)?,
            );
            let deferred = svc.resend(&email, purpose).await?;
            deliver_later(ctx, &svc.mailer, deferred);
            Ok(json(202, &j!({"status": "code_sent"})))
        }
        Route::Login => {
            let (email, password) = (
                email()?,
                Password::parse(body.string("password")?, 1, "password")?,
            );
            Ok(json(
                200,
                &session_json(svc.login(&email, &password).await?),
            ))
        }
        Route::LoginCode => {
            let deferred = svc.login_code(&email()?).await?;
            deliver_later(ctx, &svc.mailer, deferred);
            Ok(json(202, &j!({"status": "code_sent"})))
        }
        Route::LoginCodeVerify => {
            let (email, code) = (email()?, code()?);
            Ok(json(
                200,
                &session_json(svc.login_with_code(&email, &code).await?),
            ))
        }
        Route::Me => {
            let user = svc.me(token).await?;
            Ok(json(
                200,
                &j!({"email": user.email, "verified": user.verified, "created_at": rfc3339(user.created_at)}),
            ))
        }
        Route::Logout => {
            svc.logout(token).await?;
            Ok(respond::empty(204))
        }
        Route::PasswordReset => {
            let deferred = svc.password_reset(&email()?).await?;
            deliver_later(ctx, &svc.mailer, deferred);
            Ok(json(202, &j!({"status": "code_sent"})))
        }
        Route::PasswordResetConfirm => {
            let (email, code) = (email()?, code()?);
            let password = Password::parse(
                body.string("new_password")?,
                cfg.password_min_length,
                "new_password",
            )?;
            svc.confirm_password_reset(&email, &code, &password).await?;
            Ok(json(200, &j!({"status": "password_reset"})))
        }
        Route::AdminStats => Ok(json(200, &svc.admin_stats(token).await?)),
        Route::AdminListKeys => {
            let keys = svc.api_keys(token).await?;
            let keys: Vec<Value> = keys.iter().map(key_json).collect();
            Ok(json(200, &j!({"api_keys": keys})))
        }
        Route::AdminCreateKey => {
            let new = NewApiKey::parse(
                body.string("name")?,
                body.optional_string("app_name")?,
                &body.strings("channels")?,
            )?;
            let (key, secret) = svc.create_api_key(token, &new).await?;
            let mut answer = key_json(&key);
            answer["key"] = j!(secret.expose());
            Ok(json(201, &answer))
        }
        Route::AdminRevokeKey => {
            let id = key_id(&req.path()).unwrap_or_default().to_owned();
            svc.revoke_api_key(token, &id).await?;
            Ok(respond::empty(204))
        }
        Route::AdminEvents => {
            // Not `req.url()`: the `url` crate's IDNA tables would add ~90 KB
            // of gzipped wasm for three query parameters.
            let url = req.inner().url();
            let query = url.split_once('?').map_or("", |(_, q)| q);
            let pairs: Vec<_> = form_urlencoded::parse(query.as_bytes()).collect();
            let get = |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_ref())
            };
            let page = EventPage::parse(get("limit"), get("before"))?;
            let events = svc.events(token, &page, get("address")).await?;
            Ok(json(
                200,
                &j!({"events": events, "next_before": page.next_before(&events)}),
            ))
        }
        Route::Health | Route::OpenApi | Route::OtpSend | Route::OtpVerify => Err(
            ApiError::Internal(format!("{} reached the account routes", route.name())),
        ),
    }
}

async fn read_json(req: &mut Request) -> ApiResult<JsonBody> {
    let headers = req.headers();
    require_json(headers.get("content-type").ok().flatten().as_deref())?;
    check_declared_length(headers.get("content-length").ok().flatten().as_deref())?;
    // Read as it arrives and stop past the limit: a chunked body declares
    // no length, and may never end.
    let mut body = BodyBuffer::default();
    if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::InvalidRequest("the body could not be read".into()))?;
            body.push(&chunk)?;
        }
    }
    JsonBody::parse(body.bytes())
}

/// Sends after the answer has gone out, so its timing cannot tell a known
/// address from an unknown one. A failure is logged, without the message.
fn deliver_later(
    ctx: &Context,
    mailer: &EdgeMailer,
    message: Option<crate::providers::mail::Message>,
) {
    let Some(message) = message else { return };
    let mailer = mailer.clone();
    ctx.wait_until(async move {
        use crate::providers::mail::Mailer as _;
        if mailer.send(&message).await.is_err() {
            worker::console_error!(
                "{}",
                j!({"event": "deferred_mail_failed", "request_id": mailer.request_id()})
            );
        }
    });
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let outcome = async {
        let cfg = load_config(&env)?;
        let now = WorkerClock.now();
        database(&env)?
            .cleanup(
                now,
                now.saturating_sub(cfg.unverified_user_ttl_secs),
                now.saturating_sub(cfg.audit_retention_days * 86_400),
            )
            .await
    }
    .await;
    match outcome {
        Ok(counts) => worker::console_log!("{}", j!({"event": "cleanup", "deleted": counts})),
        Err(e) => worker::console_error!(
            "{}",
            j!({"event": "cleanup_failed", "code": e.code(), "detail": format!("{e:?}")})
        ),
    }
}
