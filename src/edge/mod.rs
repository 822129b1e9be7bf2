//! The Workers runtime side: entry points, bindings, and the mapping
//! between HTTP and the domain. A request is resolved to its row, counted
//! against its client's cap, authenticated by its route's group, parsed by
//! `http::requests`, served by `Service`, and answered.

mod d1_store;
mod kv_counters;
mod mailer;
mod outbound;
mod respond;
mod texter;

use crate::config::Config;
use crate::domain::api_key::ApiKey;
use crate::domain::audit::{Audit, Event};
use crate::domain::session::bearer;
use crate::error::{ApiError, ApiResult};
use crate::http::body::{check_declared_length, require_json, BodyBuffer, JsonBody};
use crate::http::cors::Cors;
use crate::http::request_id::request_id;
use crate::http::requests::{
    query_of, CodeProof, CodeRequest, CreateKey, EventsQuery, Login, OtpSend, OtpVerify,
    PasswordResetConfirm, Register, Resend, RevokeKey,
};
use crate::http::routes::{AdminRoute, AppRoute, Flow, PublicRoute, Route, Row, SessionRoute};
use crate::ports::clock::{rfc3339, Clock};
use crate::ports::limits::{client_key, RateLimit, CLIENT_LIMIT};
use crate::ports::store::Store as _;
use crate::providers::mail::Message;
use crate::service::diagnostics::{Diagnostic, Diagnostics};
use crate::service::{LoginSession, Service};
use d1_store::D1Store;
use futures_util::StreamExt;
use kv_counters::KvCounters;
use mailer::EdgeMailer;
use respond::log_line;
use serde_json::{json, Value};
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
    let row = Row::resolve(&method, &path);
    // OPTIONS on an existing path: a CORS preflight, or a plain question.
    let preflight = method == "OPTIONS" && matches!(row, Err(ApiError::MethodNotAllowed { .. }));
    let result = match (cors, &row) {
        (Err(e), _) => Err(e),
        (Ok(_), _) if preflight => match (&origin, &allow_origin) {
            (Some(_), None) => Err(ApiError::OriginNotAllowed),
            _ => Ok(respond::preflight(
                &Row::allow(&path).unwrap_or_default(),
                allow_origin.clone(),
            )),
        },
        (Ok(_), Ok(row)) => handle(row, &request_id, &mut req, &env, &ctx).await,
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
                json!({"event": event, "request_id": request_id, "path": path, "detail": detail})
            );
        }
        respond::problem(&e)
    });
    let name = match (row, preflight) {
        (Ok(row), _) => row.name,
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
    let outcome = limiter
        .limit(client.to_owned())
        .await
        .map_err(|e| ApiError::storage(&format!("rate limiter {}", limit.binding), e))?;
    match outcome.success {
        true => Ok(()),
        false => Err(ApiError::RateLimited {
            retry_after_secs: limit.period_secs,
        }),
    }
}

/// What the handlers of a request share.
struct Call<'r> {
    row: &'static Row,
    req: &'r mut Request,
    env: &'r Env,
    ctx: &'r Context,
    /// The key the client is counted by (`limits::client_key`).
    client: String,
    /// The bearer credential, whatever the route takes it for.
    token: Option<String>,
}

async fn handle(
    row: &'static Row,
    request_id: &str,
    req: &mut Request,
    env: &Env,
    ctx: &Context,
) -> ApiResult<Response> {
    // Every request is counted per client before anything else: before a
    // key or token is looked up, a body read, or D1 touched.
    let ip = header(req, "cf-connecting-ip");
    let client = client_key(ip.as_deref()).unwrap_or_else(|| "unknown".into());
    if let Some(limit) = row.limit() {
        check_limit(env, limit, &client).await?;
    }
    let flow = match row.route {
        Route::OpenApi => return Ok(respond::openapi()),
        Route::Health => {
            database(env)?.health().await?;
            return Ok(respond::json(200, &json!({"status": "ok"})));
        }
        Route::Flow(flow) => flow,
    };
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
    let token = header(req, "authorization");
    let mut call = Call {
        row,
        req,
        env,
        ctx,
        client,
        token: bearer(token.as_deref()).map(str::to_owned),
    };
    let answer = serve(flow, &svc, &mut call).await;
    let ip = ip.unwrap_or_else(|| "unknown".into());
    store_events(ctx, env, request_id, audit.take(), ip, svc.clock.now());
    log_diagnostics(request_id, diagnostics.take());
    answer
}

/// Authenticates the caller as the route's group requires, reads the body
/// the row asks for, and runs the route. Credentials come first: without
/// them, nothing about the request matters.
async fn serve(flow: Flow, svc: &EdgeService<'_>, call: &mut Call<'_>) -> ApiResult<Response> {
    match flow {
        Flow::Public(route) => {
            let body = body(svc, call).await?;
            public(route, svc, &body, call).await
        }
        Flow::Session(route) => {
            let body = body(svc, call).await?;
            session(route, svc, &body, call).await
        }
        Flow::Admin(route) => {
            svc.admin(call.token.as_deref())?;
            let body = body(svc, call).await?;
            admin(route, svc, &body, call).await
        }
        Flow::App(route) => {
            let key = authenticate_app(svc, call).await?;
            let body = body(svc, call).await?;
            app(route, svc, &key, &body).await
        }
    }
}

/// The API key of `/v1/otp/*`. A wrong key also counts against the
/// client's strict limit, so guessing keys gets the same cap as any
/// anonymous request; past it, the refusal is not audited either.
async fn authenticate_app(svc: &EdgeService<'_>, call: &Call<'_>) -> ApiResult<ApiKey> {
    match svc.api_key(call.token.as_deref()).await {
        Err(ApiError::Unauthorized) => {
            check_limit(call.env, CLIENT_LIMIT, &call.client).await?;
            Err(svc.refuse_key())
        }
        outcome => outcome,
    }
}

/// The pepper, then the body, as the row asks. No pepper, no service:
/// answered before the body is read.
async fn body(svc: &EdgeService<'_>, call: &mut Call<'_>) -> ApiResult<JsonBody> {
    if call.row.needs_pepper() {
        svc.cfg.pepper()?;
    }
    match call.row.takes_json() {
        true => read_json(call.req).await,
        false => Ok(JsonBody::empty()),
    }
}

fn status(status: u16, value: &str) -> Response {
    respond::json(status, &json!({ "status": value }))
}

async fn public(
    route: PublicRoute,
    svc: &EdgeService<'_>,
    body: &JsonBody,
    call: &Call<'_>,
) -> ApiResult<Response> {
    let cfg = svc.cfg;
    match route {
        PublicRoute::Register => {
            let r = Register::parse(body, cfg)?;
            svc.register(&r.email, &r.password).await?;
            Ok(status(202, "verification_sent"))
        }
        PublicRoute::VerifyEmail => {
            let r = CodeProof::parse(body, cfg)?;
            svc.verify_email(&r.email, &r.code).await?;
            Ok(status(200, "verified"))
        }
        PublicRoute::Resend => {
            let r = Resend::parse(body)?;
            let deferred = svc.resend(&r.email, r.purpose).await?;
            deliver_later(call.ctx, &svc.mailer, deferred);
            Ok(status(202, "code_sent"))
        }
        PublicRoute::Login => {
            let r = Login::parse(body)?;
            let session = svc.login(&r.email, &r.password).await?;
            Ok(respond::json(200, &session_json(session)))
        }
        PublicRoute::LoginCode => {
            let r = CodeRequest::parse(body)?;
            let deferred = svc.login_code(&r.email).await?;
            deliver_later(call.ctx, &svc.mailer, deferred);
            Ok(status(202, "code_sent"))
        }
        PublicRoute::LoginCodeVerify => {
            let r = CodeProof::parse(body, cfg)?;
            let session = svc.login_with_code(&r.email, &r.code).await?;
            Ok(respond::json(200, &session_json(session)))
        }
        PublicRoute::PasswordReset => {
            let r = CodeRequest::parse(body)?;
            let deferred = svc.password_reset(&r.email).await?;
            deliver_later(call.ctx, &svc.mailer, deferred);
            Ok(status(202, "code_sent"))
        }
        PublicRoute::PasswordResetConfirm => {
            let r = PasswordResetConfirm::parse(body, cfg)?;
            svc.confirm_password_reset(&r.email, &r.code, &r.new_password)
                .await?;
            Ok(status(200, "password_reset"))
        }
    }
}

async fn session(
    route: SessionRoute,
    svc: &EdgeService<'_>,
    _body: &JsonBody,
    call: &Call<'_>,
) -> ApiResult<Response> {
    let token = call.token.as_deref();
    match route {
        SessionRoute::Me => {
            let user = svc.me(token).await?;
            Ok(respond::json(
                200,
                &json!({"email": user.email, "verified": user.verified, "created_at": rfc3339(user.created_at)}),
            ))
        }
        SessionRoute::Logout => {
            svc.logout(token).await?;
            Ok(respond::empty(204))
        }
    }
}

async fn admin(
    route: AdminRoute,
    svc: &EdgeService<'_>,
    body: &JsonBody,
    call: &Call<'_>,
) -> ApiResult<Response> {
    let token = call.token.as_deref();
    match route {
        AdminRoute::Stats => Ok(respond::json(200, &svc.admin_stats(token).await?)),
        AdminRoute::ListKeys => {
            let keys = svc.api_keys(token).await?;
            let keys: Vec<Value> = keys.iter().map(key_json).collect();
            Ok(respond::json(200, &json!({"api_keys": keys})))
        }
        AdminRoute::CreateKey => {
            let CreateKey(new) = CreateKey::parse(body)?;
            let (key, secret) = svc.create_api_key(token, &new).await?;
            let mut answer = key_json(&key);
            answer["key"] = json!(secret.expose());
            Ok(respond::json(201, &answer))
        }
        AdminRoute::RevokeKey => {
            let r = RevokeKey::parse(&call.req.path());
            svc.revoke_api_key(token, &r.id).await?;
            Ok(respond::empty(204))
        }
        AdminRoute::Events => {
            // Not `req.url()`: the `url` crate's IDNA tables would add ~90 KB
            // of gzipped wasm for three query parameters.
            let r = EventsQuery::parse(query_of(&call.req.inner().url()))?;
            let events = svc.events(token, &r.page, r.address.as_deref()).await?;
            Ok(respond::json(
                200,
                &json!({"events": events, "next_before": r.page.next_before(&events)}),
            ))
        }
    }
}

/// `/v1/otp/*`, for the app holding `key`.
async fn app(
    route: AppRoute,
    svc: &EdgeService<'_>,
    key: &ApiKey,
    body: &JsonBody,
) -> ApiResult<Response> {
    match route {
        AppRoute::Send => {
            let OtpSend(request) = OtpSend::parse(body, svc.cfg)?;
            let sent = svc.send_app_code(key, &request).await?;
            Ok(respond::json(
                202,
                &json!({"id": sent.id, "expires_at": sent.expires_at}),
            ))
        }
        AppRoute::Verify => {
            let r = OtpVerify::parse(body)?;
            svc.verify_app_code(key, &r.to, &r.purpose, &r.code).await?;
            Ok(respond::json(200, &json!({"valid": true})))
        }
    }
}

fn session_json(session: LoginSession) -> Value {
    json!({"token": session.token.expose(), "token_type": "Bearer", "expires_at": session.expires_at})
}

fn key_json(key: &ApiKey) -> Value {
    json!({
        "id": key.id,
        "name": key.name,
        "app_name": key.app_name,
        "channels": key.channels.names(),
        "hint": key.hint,
        "created_at": rfc3339(key.created_at),
        "revoked_at": key.revoked_at.map(rfc3339),
    })
}

/// Failures the flow absorbed, one log line each under the request id.
fn log_diagnostics(request_id: &str, diagnostics: Vec<Diagnostic>) {
    for d in diagnostics {
        worker::console_error!(
            "{}",
            json!({"event": d.event, "request_id": request_id, "detail": d.detail})
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
                json!({"event": "audit_write_failed", "request_id": request_id, "code": e.code(), "events": events.len()})
            );
        }
    });
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
fn deliver_later(ctx: &Context, mailer: &EdgeMailer, message: Option<Message>) {
    let Some(message) = message else { return };
    let mailer = mailer.clone();
    ctx.wait_until(async move {
        use crate::providers::mail::Mailer as _;
        if mailer.send(&message).await.is_err() {
            worker::console_error!(
                "{}",
                json!({"event": "deferred_mail_failed", "request_id": mailer.request_id()})
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
        Ok(counts) => worker::console_log!("{}", json!({"event": "cleanup", "deleted": counts})),
        Err(e) => worker::console_error!(
            "{}",
            json!({"event": "cleanup_failed", "code": e.code(), "detail": e.to_string()})
        ),
    }
}
