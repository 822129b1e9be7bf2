//! The Workers runtime side: entry points, bindings, and the mapping
//! between HTTP and the domain. A request is resolved to its row, counted
//! against its client's cap, and handed with a `Service` to `dispatch`,
//! which authenticates it by its route's group, parses it with
//! `http::requests`, runs the flow and answers.

mod d1;
mod dispatch;
mod human;
mod kv_counters;
mod mailer;
mod outbound;
mod pages;
mod respond;
mod signer;
mod texter;

use crate::config::Config;
use crate::domain::audit::{Audit, Event};
use crate::domain::session::bearer;
use crate::error::{ApiError, ApiResult};
use crate::http::request_id::request_id;
use crate::http::routes::{Flow, Route, Row};
use crate::ports::clock::Clock;
use crate::ports::limits::CounterWrite;
use crate::ports::limits::{caller_key, RateLimit, CALLER_HEADER};
use crate::ports::store::AuditStore as _;
use crate::providers::locale::Locale;
use crate::service::diagnostics::{Diagnostic, Diagnostics};
use crate::service::{Later, Renewal, Service};
use d1::D1Store;
use dispatch::serve;
use human::Siteverify;
use kv_counters::KvCounters;
use mailer::EdgeMailer;
use respond::log_line;
use serde_json::json;
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
    let own_origin = respond::origin_of(&req.inner().url()).to_owned();
    let (mut response, name, allow_origin) = match pages::is_page(&path) {
        true => {
            let (response, name) =
                pages::serve(&mut req, &env, &ctx, &request_id, &own_origin).await;
            (response, name, None)
        }
        false => api(&mut req, &env, &ctx, &request_id, &own_origin).await,
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

/// A request to the JSON API: its answer, the name it is logged under, and
/// the origin CORS allows to read it.
async fn api(
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    request_id: &str,
    own_origin: &str,
) -> (Response, &'static str, Option<String>) {
    let method = req.inner().method();
    let path = req.path();
    let ip = header(req, "cf-connecting-ip");
    let client = caller_key(ip.as_deref(), header(req, CALLER_HEADER).as_deref());
    let row = Row::resolve(&method, &path);
    // OPTIONS on an existing path: a CORS preflight, or a plain question.
    let preflight = method == "OPTIONS" && matches!(row, Err(ApiError::MethodNotAllowed { .. }));
    // A bad config fails the flows (503 naming the var), but not the
    // health check and the contract, which answer without CORS.
    let cfg = load_config(env);
    let origin = header(req, "origin");
    let allow_origin = match (&cfg, &origin) {
        (Ok(cfg), Some(origin)) => cfg.cors.allow(origin),
        _ => None,
    };
    let result = async {
        // Every request counts against its path's per-client cap before
        // anything else: preflights, wrong methods and unknown paths too.
        if let Some(limit) = Row::limit_of(&method, &path) {
            check_limit(env, limit, &client).await?;
        }
        match &row {
            _ if preflight => match (&origin, &allow_origin) {
                (Some(_), None) => Err(cfg.err().unwrap_or(ApiError::OriginNotAllowed)),
                _ => Ok(respond::preflight(
                    &Row::allow(&path).unwrap_or_default(),
                    allow_origin.clone(),
                )),
            },
            Ok(row) => handle(row, cfg, request_id, req, env, ctx, client, ip).await,
            Err(e) => Err(e.clone()),
        }
    }
    .await;
    let response = result.unwrap_or_else(|e| {
        log_failure(request_id, &path, &e);
        respond::problem(&e, own_origin)
    });
    let name = match (row, preflight) {
        (Ok(row), _) => row.name,
        (Err(_), true) => "preflight",
        (Err(_), false) => "unmatched",
    };
    (response, name, allow_origin)
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

#[allow(clippy::too_many_arguments)]
async fn handle(
    row: &'static Row,
    cfg: ApiResult<Config>,
    request_id: &str,
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    client: String,
    ip: Option<String>,
) -> ApiResult<Response> {
    let flow = match row.route {
        Route::OpenApi => return Ok(respond::openapi()),
        Route::Jwks => return Ok(respond::json(200, &cfg?.oidc_keys()?.jwks())),
        Route::Discovery => {
            let cfg = cfg?;
            // Without keys the endpoints it names answer 503: so does it.
            let keys = cfg.oidc_keys()?;
            let offered = crate::domain::oauth::Offered {
                id_token_algs: keys.algs(),
                registration: cfg.oidc_registration.is_some(),
            };
            let metadata = crate::domain::oauth::metadata(cfg.oidc_issuer()?, &offered);
            return Ok(respond::json(200, &metadata));
        }
        Route::Health => {
            database(env)?.health().await?;
            return Ok(respond::json(200, &json!({"status": "ok"})));
        }
        Route::Flow(flow) => flow,
    };
    let scope = Scope::new(cfg?);
    let humans = Siteverify {
        cfg: &scope.cfg,
        // An app's backend calls /v1/otp/send: its address is not the
        // person's who solved the widget.
        remote_ip: ip.clone().filter(|_| !matches!(flow, Flow::App(_))),
        request_id,
    };
    let svc = scope.service(env, request_id, req, &humans)?;
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
    scope.finish(ctx, env, request_id, ip);
    answer
}

/// What a request's flows share: the config, and what they leave for
/// after the answer (audit events, counter writes, diagnostics).
struct Scope {
    cfg: Config,
    audit: Audit,
    diagnostics: Diagnostics,
    later: Later,
}

impl Scope {
    fn new(cfg: Config) -> Self {
        Self {
            cfg,
            audit: Audit::default(),
            diagnostics: Diagnostics::default(),
            later: Later::default(),
        }
    }

    fn load(env: &Env) -> ApiResult<Self> {
        load_config(env).map(Self::new)
    }

    /// The service for one request; `req` gives the language of the
    /// account flows' messages (`Accept-Language`).
    fn service<'a>(
        &'a self,
        env: &Env,
        request_id: &'a str,
        req: &Request,
        humans: &'a Siteverify<'a>,
    ) -> ApiResult<EdgeService<'a>> {
        Ok(Service {
            cfg: &self.cfg,
            store: database(env)?,
            counters: counters(env)?,
            mailer: EdgeMailer::new(&self.cfg, env, request_id),
            texter: TwilioTexter {
                cfg: &self.cfg,
                request_id,
            },
            clock: WorkerClock,
            audit: &self.audit,
            diagnostics: &self.diagnostics,
            later: &self.later,
            language: header(req, "accept-language")
                .and_then(|h| Locale::from_accept_language(&h))
                .unwrap_or_default(),
            humans,
            signer: &signer::WebCrypto,
            sealer: &signer::WebCrypto,
        })
    }

    /// Hands what the flows left to `wait_until`, once the answer is ready.
    fn finish(&self, ctx: &Context, env: &Env, request_id: &str, ip: Option<String>) {
        let ip = ip.unwrap_or_else(|| "unknown".into());
        store_events(
            ctx,
            env,
            request_id,
            self.audit.take(),
            ip,
            WorkerClock.now(),
        );
        write_counters(ctx, env, request_id, self.later.take());
        renew_codes(ctx, env, &self.cfg, request_id, self.later.take_renewals());
        log_diagnostics(request_id, self.diagnostics.take());
    }
}

/// A bug or a storage failure, with its private detail, for the operator;
/// the client's answer says only what kind of failure it was.
fn log_failure(request_id: &str, path: &str, e: &ApiError) {
    let logged = match e {
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

/// Makes the KV writes the flow left for after the answer (`Later`); a
/// failure is logged under the request id.
fn write_counters(ctx: &Context, env: &Env, request_id: &str, writes: Vec<CounterWrite>) {
    if writes.is_empty() {
        return;
    }
    let (env, request_id) = (env.clone(), request_id.to_owned());
    ctx.wait_until(async move {
        let diagnostics = Diagnostics::default();
        match counters(&env) {
            Ok(kv) => Later::write(&kv, &writes, &diagnostics).await,
            Err(e) => diagnostics.record("cooldown_write_failed", format!("{e:?}")),
        }
        log_diagnostics(&request_id, diagnostics.take());
    });
}

/// Renews the codes the flow left for after the answer (`Later`) and
/// mails them; a failure is logged under the request id.
fn renew_codes(ctx: &Context, env: &Env, cfg: &Config, request_id: &str, renewals: Vec<Renewal>) {
    if renewals.is_empty() {
        return;
    }
    let (env, request_id) = (env.clone(), request_id.to_owned());
    let mailer = EdgeMailer::new(cfg, &env, &request_id);
    ctx.wait_until(async move {
        let diagnostics = Diagnostics::default();
        match (database(&env), counters(&env)) {
            (Ok(db), Ok(kv)) => {
                Later::renew_codes(&db, &kv, &mailer, &renewals, &diagnostics).await
            }
            (Err(e), _) | (_, Err(e)) => {
                diagnostics.record("code_renewal_failed", format!("{e:?}"))
            }
        }
        log_diagnostics(&request_id, diagnostics.take());
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
                now.saturating_sub(crate::domain::client_registration::UNUSED_CLIENT_SECS),
            )
            .await
    }
    .await;
    match outcome {
        Ok(counts) => worker::console_log!("{}", json!({"event": "cleanup", "deleted": counts})),
        Err(e) => worker::console_error!(
            "{}",
            json!({"event": "cleanup_failed", "code": e.code(), "detail": format!("{e:?}")})
        ),
    }
}
