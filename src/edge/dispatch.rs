//! From an authenticated group to an answer: each group's credentials,
//! then the body its row asks for, then one arm per route that parses the
//! request (`http::requests`), runs the flow and writes the answer.

use super::mailer::EdgeMailer;
use super::respond;
use super::{check_limit, Call, EdgeService};
use crate::domain::api_key::{is_well_formed, ApiKey};
use crate::domain::client_registration::{registered, Registration};
use crate::domain::oauth::ACCESS_TOKEN_TTL_SECS;
use crate::domain::oauth_error::{OAuthCode, OAuthError};
use crate::domain::oidc_client::Client;
use crate::domain::recovery_code::RecoveryCode;
use crate::domain::session::{Audience, Presented};
use crate::domain::test_recipient::TestRecipient;
use crate::error::{ApiError, ApiResult};
use crate::http::body::{check_declared_length, require_json, BodyBuffer, JsonBody};
use crate::http::oauth::{RevokeCall, TokenCall};
use crate::http::requests::{
    query_of, second_factor, totp_code, turnstile_token, AddTestRecipient, CodeProof, CodeRequest,
    CreateKey, CreateOidcClient, DeleteOidcClient, EventsQuery, Login, MfaLogin, OtpSend,
    OtpVerify, PasswordResetConfirm, Register, RemoveTestRecipient, Resend, RevokeKey, VerifyEmail,
};
use crate::http::routes::{
    id_in, AdminRoute, AppRoute, Flow, HookRoute, OAuthRoute, PublicRoute, SessionRoute,
};
use crate::ports::clock::rfc3339;
use crate::ports::limits::CLIENT_LIMIT;
use crate::service::{Deferred, LoginSession};
use futures_util::StreamExt;
use serde_json::{json, Value};
use worker::{Context, Request, Response};

/// Authenticates the caller as the route's group requires, reads the body
/// the row asks for, and runs the route. Without credentials nothing about
/// the request matters: they are checked before the body is read, except
/// that an app's key, when shaped like one, is looked up in the flow's
/// first round, and an error in its body is told only to a valid key.
pub(super) async fn serve(
    flow: Flow,
    svc: &EdgeService<'_>,
    call: &mut Call<'_>,
) -> ApiResult<Response> {
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
        // The flows look the key up in their first round, together with
        // other work. A bearer not shaped like a key is refused before the
        // body is read, and an error in the body is told only to a valid key.
        Flow::App(route) => {
            let bearer = match call.token.clone() {
                Some(bearer) if is_well_formed(&bearer) => bearer,
                _ => return refuse_key(svc, call).await,
            };
            let path = call.req.path();
            let answer = match body(svc, call).await {
                Ok(body) => app(route, svc, &bearer, &body, &path).await,
                Err(e) => held(svc, &bearer, e).await,
            };
            match answer {
                Err(ApiError::Unauthorized) => refuse_key(svc, call).await,
                answer => answer,
            }
        }
        Flow::Hook(route) => hook(route, svc, call).await,
        Flow::OAuth(route) => oauth(route, svc, call).await,
    }
}

/// The OpenID Provider's endpoints for clients: form bodies, the client's
/// credentials or a bearer access token, OAuth's errors.
async fn oauth(
    route: OAuthRoute,
    svc: &EdgeService<'_>,
    call: &mut Call<'_>,
) -> ApiResult<Response> {
    let header = |req: &Request, name: &str| req.headers().get(name).ok().flatten();
    match route {
        OAuthRoute::Token => {
            let authorization = header(call.req, "authorization");
            let content_type = header(call.req, "content-type");
            let raw = read_raw(call.req).await?;
            let r = TokenCall::parse(authorization.as_deref(), content_type.as_deref(), &raw)?;
            let tokens = svc.token(&r.creds, &r.grant).await?;
            let mut answer = json!({
                "access_token": tokens.access_token,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_TTL_SECS,
                "scope": tokens.scope,
            });
            if let Some(id_token) = tokens.id_token {
                answer["id_token"] = json!(id_token);
            }
            if let Some(refresh) = tokens.refresh_token {
                answer["refresh_token"] = json!(refresh.expose());
            }
            Ok(respond::json(200, &answer))
        }
        OAuthRoute::Userinfo => Ok(respond::json(
            200,
            &svc.userinfo(call.token.as_deref()).await?,
        )),
        OAuthRoute::Revoke => {
            let authorization = header(call.req, "authorization");
            let content_type = header(call.req, "content-type");
            let raw = read_raw(call.req).await?;
            let r = RevokeCall::parse(authorization.as_deref(), content_type.as_deref(), &raw)?;
            svc.revoke(&r.creds, &r.token).await?;
            Ok(respond::empty(200))
        }
        OAuthRoute::Register => {
            svc.registration_caps()?;
            let content_type = header(call.req, "content-type");
            // RFC 7591 answers every refused registration 400.
            let raw = read_raw(call.req).await.map_err(|e| match e {
                ApiError::PayloadTooLarge { limit_bytes } => ApiError::OAuth(OAuthError::new(
                    OAuthCode::InvalidClientMetadata,
                    format!("the body must be at most {limit_bytes} bytes"),
                )),
                e => e,
            })?;
            let r = Registration::parse(content_type.as_deref(), &raw).map_err(ApiError::OAuth)?;
            let client = svc.register_client(&r, Some(call.client.as_str())).await?;
            Ok(respond::json(201, &registered(&client)))
        }
    }
}

/// A provider's callback: the raw body, for its signature.
async fn hook(route: HookRoute, svc: &EdgeService<'_>, call: &mut Call<'_>) -> ApiResult<Response> {
    let header = |name: &str| call.req.headers().get(name).ok().flatten();
    match route {
        HookRoute::TwilioStatus => {
            // Twilio signed the URL it called: ours, as PUBLIC_BASE_URL
            // spells it, whatever host or proxy the request came through.
            let base = svc.cfg.public_base_url.clone().ok_or_else(|| {
                ApiError::Unavailable(
                    "var PUBLIC_BASE_URL is not set: no status callbacks were asked for".into(),
                )
            })?;
            let signature = header("x-twilio-signature");
            let url = call.req.inner().url();
            let query = url
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            let signed_url = format!("{base}{}{query}", call.req.path());
            let raw = read_raw(call.req).await?;
            let form: Vec<(String, String)> = form_urlencoded::parse(&raw).into_owned().collect();
            svc.twilio_status(&signed_url, &form, signature.as_deref())?;
        }
        HookRoute::Resend => {
            // Svix's names; its white-label `webhook-*` names as well.
            let either = |a: &str, b: &str| header(a).or_else(|| header(b)).unwrap_or_default();
            let id = either("svix-id", "webhook-id");
            let timestamp = either("svix-timestamp", "webhook-timestamp");
            let signatures = either("svix-signature", "webhook-signature");
            let raw = read_raw(call.req).await?;
            svc.resend_event(&id, &timestamp, &signatures, &raw)?;
        }
    }
    Ok(respond::empty(204))
}

/// The body's bytes, up to the limit. Read as it arrives and stopped past
/// the limit: a chunked body declares no length, and may never end.
async fn read_raw(req: &mut Request) -> ApiResult<Vec<u8>> {
    check_declared_length(
        req.headers()
            .get("content-length")
            .ok()
            .flatten()
            .as_deref(),
    )?;
    let mut body = BodyBuffer::default();
    if let Ok(mut stream) = req.stream() {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::InvalidRequest("the body could not be read".into()))?;
            body.push(&chunk)?;
        }
    }
    Ok(body.bytes().to_vec())
}

/// A refused API key also counts against the client's strict limit, so
/// guessing keys gets the same cap as any anonymous request; past it, the
/// refusal is not audited either.
async fn refuse_key(svc: &EdgeService<'_>, call: &Call<'_>) -> ApiResult<Response> {
    check_limit(call.env, CLIENT_LIMIT, &call.client).await?;
    Err(svc.refuse_key())
}

/// An error in an app's request, answered only once its key is known good:
/// without a valid key, nothing about the request matters.
async fn held<T>(svc: &EdgeService<'_>, bearer: &str, error: ApiError) -> ApiResult<T> {
    svc.api_key(Some(bearer)).await?;
    Err(error)
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

/// The answer to a request for a code: 202 at once, and the mail, if the
/// address has one coming, after it (see `deliver_later`).
fn code_sent(svc: &EdgeService<'_>, call: &Call<'_>, deferred: Deferred) -> Response {
    deliver_later(call.ctx, &svc.mailer, deferred);
    status(202, "code_sent")
}

async fn public(
    route: PublicRoute,
    svc: &EdgeService<'_>,
    body: &JsonBody,
    call: &Call<'_>,
) -> ApiResult<Response> {
    let cfg = svc.cfg;
    // The routes that send a code ask Turnstile first, when it is on; a
    // password sign-in too, since one to an unverified account mails a
    // code (and a person's answer slows password guessing as well).
    if matches!(
        route,
        PublicRoute::Register
            | PublicRoute::Resend
            | PublicRoute::Login
            | PublicRoute::LoginCode
            | PublicRoute::PasswordReset
    ) {
        svc.check_human_sender(turnstile_token(body)?).await?;
    }
    match route {
        PublicRoute::Register => {
            let r = Register::parse(body, cfg)?;
            svc.register(&r.email, &r.password).await?;
            Ok(status(202, "verification_sent"))
        }
        PublicRoute::VerifyEmail => {
            let r = VerifyEmail::parse(body, cfg)?;
            let kept = svc.verify_email(&r.email, &r.code, &r.proof).await?;
            Ok(respond::json(
                200,
                &json!({"status": "verified", "password_kept": kept}),
            ))
        }
        PublicRoute::Resend => {
            let r = Resend::parse(body)?;
            Ok(code_sent(svc, call, svc.resend(&r.email, r.purpose).await?))
        }
        PublicRoute::Login => {
            let r = Login::parse(body)?;
            let session = svc.login(&r.email, &r.password, Audience::Api).await?;
            Ok(respond::json(200, &session_json(session)))
        }
        PublicRoute::LoginCode => {
            let r = CodeRequest::parse(body)?;
            Ok(code_sent(svc, call, svc.login_code(&r.email).await?))
        }
        PublicRoute::LoginCodeVerify => {
            let r = CodeProof::parse(body, cfg)?;
            let session = svc
                .login_with_code(&r.email, &r.code, Audience::Api)
                .await?;
            Ok(respond::json(200, &session_json(session)))
        }
        PublicRoute::LoginMfa => {
            let r = MfaLogin::parse(body)?;
            let (session, mail) = svc
                .login_mfa(&r.mfa_token.0, &r.code, Audience::Api)
                .await?;
            deliver_later(call.ctx, &svc.mailer, mail);
            Ok(respond::json(200, &session_json(session)))
        }
        PublicRoute::PasswordReset => {
            let r = CodeRequest::parse(body)?;
            Ok(code_sent(svc, call, svc.password_reset(&r.email).await?))
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
    body: &JsonBody,
    call: &Call<'_>,
) -> ApiResult<Response> {
    let token = call.token.as_deref();
    let user = match route {
        SessionRoute::Logout => {
            svc.logout(token, Presented::Bearer).await?;
            return Ok(respond::empty(204));
        }
        // A live session is not enough to add a second factor: its
        // sign-in must be recent.
        SessionRoute::BeginTotp => svc.recently_signed_in(token, Presented::Bearer).await?,
        _ => svc.me(token, Presented::Bearer).await?,
    };
    let codes = |codes: Vec<RecoveryCode>| json!({"recovery_codes": codes.iter().map(RecoveryCode::shown).collect::<Vec<_>>()});
    match route {
        SessionRoute::Me | SessionRoute::Logout => Ok(respond::json(
            200,
            &json!({"email": user.email, "verified": user.verified, "created_at": rfc3339(user.created_at)}),
        )),
        SessionRoute::BeginTotp => {
            let e = svc.begin_totp(&user).await?;
            Ok(respond::json(
                201,
                &json!({"secret": e.secret.base32(), "otpauth_uri": e.otpauth_uri}),
            ))
        }
        SessionRoute::ConfirmTotp => {
            let (recovery, mail) = svc.confirm_totp(&user, &totp_code(body)?).await?;
            deliver_later(call.ctx, &svc.mailer, mail);
            Ok(respond::json(200, &codes(recovery)))
        }
        SessionRoute::ReplaceRecoveryCodes => {
            let (recovery, mail) = svc.replace_recovery_codes(&user, &totp_code(body)?).await?;
            deliver_later(call.ctx, &svc.mailer, mail);
            Ok(respond::json(200, &codes(recovery)))
        }
        SessionRoute::RemoveTotp => {
            let mail = svc.remove_totp(&user, &second_factor(body)?).await?;
            deliver_later(call.ctx, &svc.mailer, mail);
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
        AdminRoute::ListTestRecipients => {
            let id = crate::http::routes::key_id(&call.req.path())
                .unwrap_or_default()
                .to_owned();
            let list = svc.test_recipients(token, &id).await?;
            let list: Vec<Value> = list.iter().map(test_recipient_json).collect();
            Ok(respond::json(200, &json!({"test_recipients": list})))
        }
        AdminRoute::AddTestRecipient => {
            let r = AddTestRecipient::parse(&call.req.path(), body)?;
            let added = svc
                .add_test_recipient(token, &r.key_id, &r.recipient)
                .await?;
            Ok(respond::json(201, &test_recipient_json(&added)))
        }
        AdminRoute::RemoveTestRecipient => {
            let r =
                RemoveTestRecipient::parse(&call.req.path(), query_of(&call.req.inner().url()))?;
            svc.remove_test_recipient(token, &r.key_id, &r.to).await?;
            Ok(respond::empty(204))
        }
        AdminRoute::ListOidcClients => {
            let list = svc.oidc_clients(token).await?;
            let list: Vec<Value> = list.iter().map(client_json).collect();
            Ok(respond::json(200, &json!({"oidc_clients": list})))
        }
        AdminRoute::CreateOidcClient => {
            let CreateOidcClient(new) = CreateOidcClient::parse(body)?;
            let (client, secret) = svc.create_oidc_client(token, &new).await?;
            let mut answer = client_json(&client);
            if let Some(secret) = secret {
                answer["client_secret"] = json!(secret.expose());
            }
            Ok(respond::json(201, &answer))
        }
        AdminRoute::DeleteOidcClient => {
            let r = DeleteOidcClient::parse(&call.req.path());
            svc.delete_oidc_client(token, &r.id).await?;
            Ok(respond::empty(204))
        }
        AdminRoute::Events => {
            // Not `req.url()`: the `url` crate's IDNA tables would add ~90 KB
            // of gzipped wasm for three query parameters.
            let r = EventsQuery::parse(query_of(&call.req.inner().url()))?;
            let events = svc
                .events(token, &r.page, r.address.as_deref(), r.kind)
                .await?;
            Ok(respond::json(
                200,
                &json!({"events": events, "next_before": r.page.next_before(&events)}),
            ))
        }
    }
}

/// `/v1/otp/*`, for the app holding the key `bearer`.
async fn app(
    route: AppRoute,
    svc: &EdgeService<'_>,
    bearer: &str,
    body: &JsonBody,
    path: &str,
) -> ApiResult<Response> {
    match route {
        AppRoute::Status => {
            let id = id_in("/v1/otp/{id}", path).unwrap_or_default();
            Ok(respond::json(200, &svc.send_report(bearer, id).await?))
        }
        AppRoute::Send => {
            let OtpSend(request) = match OtpSend::parse(body, svc.cfg) {
                Ok(parsed) => parsed,
                Err(e) => return held(svc, bearer, e).await,
            };
            let sent = svc.send_app_code(bearer, &request).await?;
            Ok(respond::json(
                202,
                &json!({"id": sent.id, "expires_at": sent.expires_at, "channel": sent.channel.as_str()}),
            ))
        }
        AppRoute::Verify => {
            let r = match OtpVerify::parse(body) {
                Ok(parsed) => parsed,
                Err(e) => return held(svc, bearer, e).await,
            };
            svc.verify_app_code(bearer, &r.to, &r.purpose, &r.code)
                .await?;
            Ok(respond::json(200, &json!({"valid": true})))
        }
    }
}

fn session_json(session: LoginSession) -> Value {
    json!({"token": session.token.expose(), "token_type": "Bearer", "expires_at": session.expires_at})
}

fn test_recipient_json(t: &TestRecipient) -> Value {
    json!({"channel": t.channel.as_str(), "to": t.address, "created_at": rfc3339(t.created_at)})
}

fn client_json(c: &Client) -> Value {
    json!({
        "client_id": c.id,
        "name": c.name,
        "type": c.kind.as_str(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "api_key_id": c.api_key_id,
        "created_at": rfc3339(c.created_at),
        "self_registered": c.self_registered,
        "id_token_signed_response_alg": c.id_token_alg.as_str(),
    })
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
        "sms_domain": key.options.sms_domain.as_ref().map(|d| d.as_str()),
        "android_app_hash": key.options.android_app_hash.as_ref().map(|h| h.as_str()),
        "turnstile_required": key.options.turnstile_required,
    })
}

async fn read_json(req: &mut Request) -> ApiResult<JsonBody> {
    require_json(req.headers().get("content-type").ok().flatten().as_deref())?;
    JsonBody::parse(&read_raw(req).await?)
}

/// Sends after the answer has gone out, so its timing cannot tell a known
/// address from an unknown one. A failure is logged, without the message.
pub(super) fn deliver_later(ctx: &Context, mailer: &EdgeMailer, message: Deferred) {
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
