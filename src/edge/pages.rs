//! The pages, on the Workers side: reads the request (path, query,
//! cookies, form), checks the form's origin and token, runs the same
//! flows as the JSON routes and answers with a page or a redirect.
//!
//! Every POST is answered by a redirect when it succeeds (POST-redirect-
//! GET) and by its own page, with the error in place, when it does not.

use super::dispatch::deliver_later;
use super::{check_limit, header, log_failure, respond, EdgeService, Scope, WorkerClock};
use crate::config::Config;
use crate::domain::absolute_url::AbsoluteUrl;
use crate::domain::admin_session::ADMIN_SESSION_SECS;
use crate::domain::oauth::{AuthorizationRequest, AuthorizeQuery, OAuthCode, OAuthError, Prompt};
use crate::domain::purpose::Purpose;
use crate::domain::session::{Audience, Presented};
use crate::error::{ApiError, ApiResult};
use crate::http::requests::{
    query_of, CodeProof, CodeRequest, CreateKey, CreateOidcClient, EventsQuery, Login,
};
use crate::http::requests::{PasswordResetConfirm, Register};
use crate::pages::auth::{self, AuthPage, Notice, View};
use crate::pages::browser::{
    check_form, clear_cookie, cookie, csrf_token, new_browser_id, set_cookie, signup_tokens,
    with_signup_token, Form, ADMIN_COOKIE, CSRF_COOKIE, CSRF_COOKIE_SECS, EMAIL_COOKIE,
    EMAIL_COOKIE_SECS, MAX_FORM_BYTES, SESSION_COOKIE, SIGNUP_COOKIE,
};
use crate::pages::console::{self, EventFilterForm};
use crate::pages::factors::{
    MFA_PATH, RECOVERY_CODES_PATH, TOTP_CONFIRM_PATH, TOTP_OFF_PATH, TOTP_SETUP_PATH,
};
use crate::pages::layout::{self, Alert};
use crate::pages::problems;
use crate::ports::clock::rfc3339;
use crate::ports::clock::Clock as _;
use crate::ports::limits::{caller_key, CALLER_HEADER, CLIENT_LIMIT};
use crate::ports::store::User;
use crate::service::{Authorized, Consent, LoginSession, Verified};
use futures_util::StreamExt;
use worker::{Context, Env, Request, Response};

mod factors;

/// Whether `path` is one of the pages' (or their assets').
pub(super) fn is_page(path: &str) -> bool {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    path == AUTHORIZE_PATH
        || path == LOGOUT_PATH
        || under("/auth")
        || under("/admin")
        || path.starts_with("/problems/")
        || path.starts_with("/assets/")
}

/// A page's answer: what to send, and the cookies to set with it.
struct Answer {
    response: Response,
    cookies: Vec<String>,
}

impl Answer {
    fn page(status: u16, markup: maud::Markup, csp: &str) -> Self {
        Self {
            response: respond::html(status, markup.into_string(), csp),
            cookies: Vec::new(),
        }
    }

    fn redirect(location: &str) -> Self {
        Self {
            response: respond::see_other(location),
            cookies: Vec::new(),
        }
    }

    fn cookie(mut self, c: String) -> Self {
        self.cookies.push(c);
        self
    }
}

/// Serves a page request; never fails, since a failure is a page too.
/// Returns the answer and the name the request is logged under.
pub(super) async fn serve(
    req: &mut Request,
    env: &Env,
    ctx: &Context,
    request_id: &str,
    own_origin: &str,
) -> (Response, &'static str) {
    let path = req.path();
    let method = req.inner().method();
    let method = if method == "HEAD" {
        "GET".to_owned()
    } else {
        method
    };
    // Static answers first: no config, no limit, no storage.
    if method == "GET" {
        if let Some(answer) = static_page(env, &path) {
            return answer;
        }
    }
    let name = log_name(&path);
    let ip = header(req, "cf-connecting-ip");
    let client = caller_key(ip.as_deref(), header(req, CALLER_HEADER).as_deref());
    let site = env
        .var("APP_NAME")
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "OTP Edge".into());
    if let Err(e) = check_limit(env, CLIENT_LIMIT, &client).await {
        return (failure_page(&site, &e, ""), name);
    }
    let scope = match Scope::load(env) {
        Ok(scope) => scope,
        Err(e) => return (failure_page(&site, &e, ""), name),
    };
    // A page that signs in for an OpenID Connect client may post to a
    // redirect that ends at the client's redirect URI.
    let url = req.inner().url();
    let client_origin = carried_request(query_of(&url), &scope.cfg)
        .and_then(|r| AbsoluteUrl::parse(&r.redirect_uri).map(|u| u.origin()));
    let csp = layout::csp(
        client_origin.as_deref(),
        scope.cfg.turnstile_site_key.is_some(),
    );
    let humans = super::human::Siteverify {
        cfg: &scope.cfg,
        remote_ip: ip.clone(),
        request_id,
    };
    let answer = match scope.service(env, request_id, req, &humans) {
        Ok(svc) => {
            let mut page = Page {
                svc: &svc,
                req,
                ctx,
                own_origin,
                csp: &csp,
                path: path.clone(),
                method,
                cookies: Vec::new(),
            };
            let answer = page.run().await;
            (answer, std::mem::take(&mut page.cookies))
        }
        Err(e) => (Err(e), Vec::new()),
    };
    scope.finish(ctx, env, request_id, ip);
    // The page's own cookies go out with any answer: a session made just
    // before a failure is this browser's, not an orphan.
    let (answer, cookies) = answer;
    let response = match answer {
        Ok(a) => respond::with_cookies(a.response, &[cookies, a.cookies].concat()),
        Err(e) => {
            log_failure(request_id, &path, &e);
            respond::with_cookies(failure_page(&scope.cfg.app_name, &e, &csp), &cookies)
        }
    };
    (response, name)
}

/// The OpenID Connect authorization endpoint: a page, since the person
/// may have to sign in on the way.
const AUTHORIZE_PATH: &str = "/oauth/authorize";
/// RP-initiated logout (`end_session_endpoint`): a page, since it may ask.
const LOGOUT_PATH: &str = "/oauth/logout";

/// The authorization request a page's query carries (`oauth=`), if its
/// seal holds and it is recent (`AuthorizationRequest::unseal`).
fn carried_request(query: &str, cfg: &Config) -> Option<AuthorizationRequest> {
    let sealed = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "oauth")
        .map(|(_, v)| v.into_owned())?;
    AuthorizationRequest::unseal(&sealed, cfg.pepper().ok()?, WorkerClock.now())
}

fn static_page(env: &Env, path: &str) -> Option<(Response, &'static str)> {
    let site = || {
        env.var("APP_NAME")
            .map(|v| v.to_string())
            .unwrap_or_else(|_| "OTP Edge".into())
    };
    match path {
        layout::STYLE_PATH => {
            let accent = env
                .var("ACCENT_COLOR")
                .ok()
                .and_then(|v| layout::parse_accent(&v.to_string()).ok())
                .unwrap_or_else(|| layout::DEFAULT_ACCENT.into());
            Some((
                respond::asset(layout::stylesheet(&accent), "text/css; charset=utf-8"),
                "asset",
            ))
        }
        layout::COPY_JS_PATH => Some((
            respond::asset(layout::COPY_JS.into(), "text/javascript; charset=utf-8"),
            "asset",
        )),
        _ => {
            let slug = path.strip_prefix("/problems/")?;
            let csp = layout::csp(None, false);
            let response = match problems::page(&site(), slug) {
                Some(markup) => respond::html(200, markup.into_string(), &csp),
                None => failure_page(&site(), &ApiError::NotFound, &csp),
            };
            Some((response, "problem_page"))
        }
    }
}

/// The page for a failure no form can show: a missing secret (503, named
/// as the JSON routes name it), a rate limit, a wrong path.
fn failure_page(site: &str, e: &ApiError, csp: &str) -> Response {
    let csp = match csp.is_empty() {
        true => layout::csp(None, false),
        false => csp.to_owned(),
    };
    let detail = match e {
        ApiError::Unavailable(d) => d.clone(),
        ApiError::NotFound => "There is no page at this address.".into(),
        ApiError::MethodNotAllowed { .. } => "This page does not take that kind of request.".into(),
        other => auth::sentence(other),
    };
    let markup = layout::document(
        site,
        e.title(),
        maud::html! {},
        maud::html! {
            h1 { (e.title()) }
            div #error .alert.error role="alert" { (detail) }
            p .links { a href="/auth/sign-in" { "Go to sign in" } }
        },
    );
    let mut response = respond::html(e.status(), markup.into_string(), &csp);
    for (name, value) in e.headers() {
        let _ = response.headers_mut().set(name, &value);
    }
    response
}

fn log_name(path: &str) -> &'static str {
    match path {
        "/auth" | "/auth/" => "page_auth",
        "/auth/sign-up" => "page_sign_up",
        "/auth/verify" => "page_verify",
        "/auth/verify/resend" => "page_verify_resend",
        "/auth/sign-in" => "page_sign_in",
        "/auth/code" => "page_code",
        "/auth/forgot" => "page_forgot",
        "/auth/reset" => "page_reset",
        "/auth/account" => "page_account",
        MFA_PATH => "page_mfa",
        TOTP_SETUP_PATH => "page_totp_setup",
        TOTP_CONFIRM_PATH => "page_totp_confirm",
        TOTP_OFF_PATH => "page_totp_off",
        RECOVERY_CODES_PATH => "page_recovery_codes",
        "/auth/sign-out" => "page_sign_out",
        AUTHORIZE_PATH => "page_oauth_authorize",
        LOGOUT_PATH => "page_oauth_logout",
        "/admin" | "/admin/" => "page_admin",
        "/admin/sign-in" => "page_admin_sign_in",
        "/admin/sign-out" => "page_admin_sign_out",
        "/admin/events" => "page_admin_events",
        "/admin/keys" => "page_admin_keys",
        p if p.starts_with("/admin/keys/") => "page_admin_revoke",
        "/admin/clients" => "page_admin_clients",
        p if p.starts_with("/admin/clients/") => "page_admin_delete_client",
        _ => "page_unknown",
    }
}

struct Page<'a, 's> {
    svc: &'a EdgeService<'s>,
    req: &'a mut Request,
    ctx: &'a Context,
    own_origin: &'a str,
    csp: &'a str,
    path: String,
    method: String,
    /// Cookies to set whatever the answer (a fresh CSRF id).
    cookies: Vec<String>,
}

impl Page<'_, '_> {
    fn cfg(&self) -> &Config {
        self.svc.cfg
    }

    fn site(&self) -> &str {
        &self.cfg().app_name
    }

    fn cookie(&self, name: &str) -> Option<String> {
        cookie(header(self.req, "cookie").as_deref(), name).map(str::to_owned)
    }

    fn query(&self) -> String {
        query_of(&self.req.inner().url()).to_owned()
    }

    /// The OpenID Connect authorization request the page signs in for.
    fn pending(&self) -> Option<AuthorizationRequest> {
        carried_request(&self.query(), self.cfg())
    }

    /// The query every link and form carries on: `extra`, then the
    /// authorization request, sealed as it came; empty without either.
    fn carried(&self, extra: &[(&str, &str)]) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in extra {
            q.append_pair(k, v);
        }
        if let (Some(request), Ok(pepper)) = (self.pending(), self.cfg().pepper()) {
            q.append_pair("oauth", &request.seal(pepper));
        }
        match q.finish() {
            q if q.is_empty() => q,
            q => format!("?{q}"),
        }
    }

    fn notice(&self) -> Option<Notice> {
        form_urlencoded::parse(self.query().as_bytes())
            .find(|(k, _)| k == "notice")
            .and_then(|(_, v)| Notice::parse(&v))
    }

    /// The address typed last, to fill in the form.
    fn remembered_email(&self) -> String {
        self.cookie(EMAIL_COOKIE)
            .map(|v| {
                form_urlencoded::parse(format!("e={v}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn remember_email(&mut self, email: &str) {
        let encoded: String = form_urlencoded::byte_serialize(email.as_bytes()).collect();
        self.cookies
            .push(set_cookie(EMAIL_COOKIE, &encoded, EMAIL_COOKIE_SECS));
    }

    /// This browser's form token; a browser without an id gets one.
    fn csrf(&mut self) -> ApiResult<String> {
        let svc = self.svc;
        let pepper = svc.cfg.pepper()?;
        let id = match self.cookie(CSRF_COOKIE).filter(|id| is_browser_id(id)) {
            Some(id) => id,
            None => {
                let id = new_browser_id()?;
                self.cookies
                    .push(set_cookie(CSRF_COOKIE, &id, CSRF_COOKIE_SECS));
                id
            }
        };
        Ok(csrf_token(pepper, &id))
    }

    fn page(&self, status: u16, markup: maud::Markup) -> Answer {
        Answer::page(status, markup, self.csp)
    }

    async fn run(&mut self) -> ApiResult<Answer> {
        let path = self.path.clone();
        let path = path.trim_end_matches('/');
        match self.method.as_str() {
            "GET" => self.get(path).await,
            "POST" => {
                let form = match self.read_form().await {
                    Ok(form) => form,
                    Err(ApiError::CsrfRefused) => return Ok(self.refused()),
                    Err(e) => return Err(e),
                };
                self.post(path, form).await
            }
            _ => Err(ApiError::MethodNotAllowed {
                allow: "GET, POST".into(),
            }),
        }
    }

    /// A form body, once its origin and token check out.
    async fn read_form(&mut self) -> ApiResult<Form> {
        let svc = self.svc;
        let pepper = svc.cfg.pepper()?;
        let content_type = header(self.req, "content-type").unwrap_or_default();
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let origin = header(self.req, "origin");
        let browser = self.cookie(CSRF_COOKIE);
        // What needs no body is checked before it is read: a foreign post
        // costs nothing more. `check_form` below checks it all again.
        let same_origin = origin
            .as_deref()
            .is_some_and(|o| o.eq_ignore_ascii_case(self.own_origin));
        let is_form = essence.eq_ignore_ascii_case("application/x-www-form-urlencoded");
        if !same_origin || browser.is_none() || !is_form {
            return Err(ApiError::CsrfRefused);
        }
        let mut body = Vec::new();
        if let Ok(mut stream) = self.req.stream() {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk
                    .map_err(|_| ApiError::InvalidRequest("the form could not be read".into()))?;
                if body.len() + chunk.len() > MAX_FORM_BYTES {
                    return Err(ApiError::PayloadTooLarge {
                        limit_bytes: MAX_FORM_BYTES,
                    });
                }
                body.extend_from_slice(&chunk);
            }
        }
        let form = Form::parse(&body);
        check_form(
            pepper,
            self.own_origin,
            origin.as_deref(),
            browser.as_deref(),
            form.get("csrf"),
        )?;
        Ok(form)
    }

    /// The answer to a form that failed the CSRF check.
    fn refused(&self) -> Answer {
        let back = match self.path.starts_with("/admin") {
            true => "/admin/sign-in",
            false => "/auth/sign-in",
        };
        self.page(403, auth::refused(self.site(), back))
    }

    async fn get(&mut self, path: &str) -> ApiResult<Answer> {
        if let Some(page) = AuthPage::from_path(path) {
            if page == AuthPage::SignIn {
                if let Some(answer) = self.already_signed_in().await? {
                    return Ok(answer);
                }
            }
            let alert = self
                .notice()
                .map(|n| Alert::Notice(n.sentence(&self.remembered_email())));
            let email = self.remembered_email();
            return self.auth_page(page, 200, &email, alert);
        }
        match path {
            AUTHORIZE_PATH => self.authorize().await,
            LOGOUT_PATH => self.end_session(false).await,
            "/auth" => Ok(Answer::redirect("/auth/sign-in")),
            "/auth/account" => self.account().await,
            "/admin/sign-in" => {
                let csrf = self.csrf()?;
                Ok(self.page(200, console::sign_in(self.site(), &csrf, None)))
            }
            "/admin" | "/admin/events" | "/admin/keys" | "/admin/clients" => {
                self.console_get(path).await
            }
            p if revoke_target(p).is_some() || delete_target(p).is_some() => {
                self.console_get(path).await
            }
            _ => Err(ApiError::NotFound),
        }
    }

    fn auth_page(
        &mut self,
        page: AuthPage,
        status: u16,
        email: &str,
        alert: Option<Alert>,
    ) -> ApiResult<Answer> {
        let csrf = self.csrf()?;
        let query = self.carried(&[]);
        let pending = self.pending();
        let view = View {
            site: self.site(),
            csrf: &csrf,
            query: &query,
            email,
            alert,
            code_length: self.cfg().otp_length,
            password_min: self.cfg().password_min_length,
            turnstile: self.cfg().turnstile_site_key.as_deref(),
            continues_to: pending.as_ref().map(|r| r.client_name.as_str()),
        };
        Ok(self.page(status, auth::render(page, &view)))
    }

    /// `GET /oauth/authorize`: an unknown client or a redirect URI it did
    /// not register gets an error page, never a redirect; any other error
    /// goes back to the client. A browser whose session answers the
    /// request goes straight back with a code; any other signs in first,
    /// the request riding along sealed, unless `prompt=none`.
    async fn authorize(&mut self) -> ApiResult<Answer> {
        let query = AuthorizeQuery::parse(&self.query());
        let client = self
            .svc
            .authorization_client(query.client_id(), query.redirect_uri())
            .await?;
        let (Some(client), Some(redirect_uri)) = (client, query.redirect_uri()) else {
            return Ok(self.page(400, auth::authorize_refused(self.site())));
        };
        let back = |e: OAuthError| -> ApiResult<Answer> {
            let to = self
                .svc
                .authorization_error(redirect_uri, query.state(), &e)?;
            // A self-registered client chose its own redirect URI: an error
            // before the person did anything is not an automatic redirect.
            if client.self_registered {
                let host = AbsoluteUrl::parse(redirect_uri)
                    .map(|u| u.host)
                    .unwrap_or_default();
                let sentence = format!("The app's sign-in request ended: {}.", e.description);
                let markup = auth::leaving(
                    self.site(),
                    "This sign-in did not go through",
                    &sentence,
                    &to,
                    &host,
                );
                return Ok(self.page(400, markup));
            }
            Ok(Answer::redirect(&to))
        };
        let request = match query.validate(&client, &self.cfg().oidc_resources, WorkerClock.now()) {
            Ok(request) => request,
            Err(e) => return back(e),
        };
        let token = self.cookie(SESSION_COOKIE);
        let next = self
            .svc
            .authorization_code(token.as_deref(), &request, Consent::NotAsked)
            .await?;
        match (next, request.prompt == Prompt::None) {
            (Authorized::Redirect(to), _) => return Ok(Answer::redirect(&to)),
            (Authorized::Consent(_), true) => {
                return back(OAuthError::new(
                    OAuthCode::ConsentRequired,
                    "the person has not agreed to this app, which registered itself",
                ))
            }
            (Authorized::Consent(user), false) => return self.consent_page(&request, &user.email),
            (Authorized::SignIn, true) => {
                return back(OAuthError::new(
                    OAuthCode::LoginRequired,
                    "the person is not signed in",
                ))
            }
            (Authorized::SignIn, false) => {}
        }
        let svc = self.svc;
        let pepper = svc.cfg.pepper()?;
        // Only an address fills in the form: a hint is another site's text.
        if let Some(hint) = request
            .login_hint
            .as_deref()
            .and_then(|h| crate::domain::email::Email::parse(h).ok())
        {
            self.remember_email(hint.as_str());
        }
        let mut to = form_urlencoded::Serializer::new(String::new());
        to.append_pair("oauth", &request.seal(pepper));
        Ok(Answer::redirect(&format!(
            "{}?{}",
            AuthPage::SignIn.path(),
            to.finish()
        )))
    }

    /// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). A
    /// `post_logout_redirect_uri` must be one its client registered, the
    /// client named by the `id_token_hint` or `client_id`; otherwise an
    /// error page. With a hint of ours for this browser's account (or no
    /// session at all) the session ends at once; otherwise the person is
    /// asked, and `confirmed` is their form's answer.
    async fn end_session(&mut self, confirmed: bool) -> ApiResult<Answer> {
        let query = self.query();
        let param = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .filter(|v| !v.is_empty())
        };
        let hint = match param("id_token_hint") {
            Some(h) => self.svc.id_token_hint(&h).await?,
            None => None,
        };
        let client_id = match (
            hint.as_ref().map(|(aud, _)| aud.clone()),
            param("client_id"),
        ) {
            (Some(a), Some(b)) if a != b => {
                return Ok(self.page(400, auth::logout_refused(self.site())))
            }
            (a, b) => a.or(b),
        };
        let mut self_registered = false;
        let back = match param("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let client = match &client_id {
                    Some(id) => self.svc.logout_client(id, &uri).await?,
                    None => None,
                };
                let Some(client) = client else {
                    return Ok(self.page(400, auth::logout_refused(self.site())));
                };
                self_registered = client.self_registered;
                let mut params = vec![];
                let state = param("state");
                if let Some(state) = &state {
                    params.push(("state", state.as_str()));
                }
                Some(crate::domain::oauth::with_params(&uri, &params))
            }
        };
        let token = self.cookie(SESSION_COOKIE);
        let user = match self.svc.me(token.as_deref(), Presented::Cookie).await {
            Ok(user) => Some(user),
            Err(ApiError::Unauthorized) => None,
            Err(e) => return Err(e),
        };
        let theirs = match (&hint, &user) {
            (Some(_), None) => true,
            (Some((_, sub)), Some(user)) => *sub == user.id,
            (None, _) => false,
        };
        if !confirmed && !theirs && user.is_some() {
            let csrf = self.csrf()?;
            let action = format!("{LOGOUT_PATH}?{query}");
            // The form's answer redirects to the post-logout URI, checked
            // against its client above: only this page may post on to it.
            let origin = back
                .as_deref()
                .and_then(AbsoluteUrl::parse)
                .map(|u| u.origin());
            let csp = layout::csp(origin.as_deref(), self.cfg().turnstile_site_key.is_some());
            let markup = auth::sign_out_confirm(self.site(), &csrf, &action);
            return Ok(Answer::page(200, markup, &csp));
        }
        if user.is_some() {
            match self.svc.logout(token.as_deref(), Presented::Cookie).await {
                Ok(()) | Err(ApiError::Unauthorized) => {}
                Err(e) => return Err(e),
            }
        }
        let to =
            back.unwrap_or_else(|| format!("/auth/sign-in?notice={}", Notice::SignedOut.as_str()));
        // A self-registered client's address is followed only by a click.
        if self_registered {
            let host = AbsoluteUrl::parse(&to).map(|u| u.host).unwrap_or_default();
            let markup = auth::leaving(
                self.site(),
                "You are signed out",
                "The app that sent you here asked to take you back.",
                &to,
                &host,
            );
            return Ok(self.page(200, markup).cookie(clear_cookie(SESSION_COOKIE)));
        }
        Ok(Answer::redirect(&to).cookie(clear_cookie(SESSION_COOKIE)))
    }

    /// A browser that is signed in and opens the sign-in page goes on: to
    /// the app that sent it, or to its account.
    async fn already_signed_in(&mut self) -> ApiResult<Option<Answer>> {
        let Some(token) = self.cookie(SESSION_COOKIE) else {
            return Ok(None);
        };
        match self.svc.me(Some(&token), Presented::Cookie).await {
            Ok(_) => {}
            Err(ApiError::Unauthorized) => return Ok(None),
            Err(e) => return Err(e),
        }
        // A session older than the client allows (`prompt=login`,
        // `max_age`) earns no code: the person signs in again.
        if let Some(request) = self.pending() {
            let next = self
                .svc
                .authorization_code(Some(&token), &request, Consent::NotAsked)
                .await?;
            return match next {
                Authorized::Redirect(to) => Ok(Some(Answer::redirect(&to))),
                Authorized::Consent(user) => Ok(Some(self.consent_page(&request, &user.email)?)),
                Authorized::SignIn => Ok(None),
            };
        }
        Ok(Some(self.after_sign_in(&token, false).await?))
    }

    async fn account(&mut self) -> ApiResult<Answer> {
        let token = self.cookie(SESSION_COOKIE);
        match self.svc.me(token.as_deref(), Presented::Cookie).await {
            Ok(user) => {
                let alert = self
                    .notice()
                    .map(|n| Alert::Notice(n.sentence(&user.email)));
                self.account_page(&user, 200, alert).await
            }
            Err(ApiError::Unauthorized) => {
                Ok(Answer::redirect("/auth/sign-in").cookie(clear_cookie(SESSION_COOKIE)))
            }
            Err(e) => Err(e),
        }
    }

    /// The account page of `user`, with its second factors.
    async fn account_page(
        &mut self,
        user: &User,
        status: u16,
        alert: Option<Alert>,
    ) -> ApiResult<Answer> {
        let factors = self.svc.second_factors(user).await?;
        let csrf = self.csrf()?;
        let since = rfc3339(user.created_at)[..10].to_owned();
        let markup = auth::account(&auth::AccountView {
            site: self.site(),
            csrf: &csrf,
            email: &user.email,
            verified: user.verified,
            since: &since,
            alert,
            extra: crate::pages::factors::account_section(&csrf, &factors),
        });
        Ok(self.page(status, markup))
    }

    /// Where a browser goes once it holds the session `token`: back to the
    /// client that sent it, with a code, or to its account. `fresh` when
    /// this very request made the session, which answers `prompt=login`.
    async fn after_sign_in(&mut self, token: &str, fresh: bool) -> ApiResult<Answer> {
        if let Some(request) = self.pending() {
            let next = match fresh {
                true => self.svc.fresh_authorization_code(token, &request).await?,
                false => {
                    self.svc
                        .authorization_code(Some(token), &request, Consent::NotAsked)
                        .await?
                }
            };
            return match next {
                Authorized::Redirect(to) => Ok(Answer::redirect(&to)),
                Authorized::Consent(user) => self.consent_page(&request, &user.email),
                // The client was deleted while the person signed in.
                Authorized::SignIn => Err(ApiError::InvalidRequest(
                    "The app that sent you here can no longer be signed in to. Start again from the app.".into(),
                )),
            };
        }
        Ok(Answer::redirect("/auth/account"))
    }

    /// The consent page for a self-registered client's `request`, for the
    /// account `email` signed in here. Its form posts back to the
    /// authorization endpoint, which then redirects to the client: the
    /// CSP lets this page's form go on to the client's origin alone.
    fn consent_page(&mut self, request: &AuthorizationRequest, email: &str) -> ApiResult<Answer> {
        let csrf = self.csrf()?;
        let pepper = self.svc.cfg.pepper()?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("oauth", &request.seal(pepper));
        let action = format!("{AUTHORIZE_PATH}?{}", q.finish());
        let target = AbsoluteUrl::parse(&request.redirect_uri);
        let host = target.as_ref().map(|u| u.host.clone()).unwrap_or_default();
        let origin = target.map(|u| u.origin());
        let csp = layout::csp(origin.as_deref(), self.cfg().turnstile_site_key.is_some());
        let markup = auth::consent(&auth::ConsentView {
            site: self.site(),
            csrf: &csrf,
            action: &action,
            client_name: &request.client_name,
            redirect_host: &host,
            email,
            offline: request.has_scope("offline_access"),
            reads_email: request.has_scope("email"),
        });
        Ok(Answer::page(200, markup, &csp))
    }

    /// The consent form's answer (`POST /oauth/authorize`, the request
    /// sealed in its query): a code on `allow`, `access_denied` otherwise.
    async fn consented(&mut self, form: &Form) -> ApiResult<Answer> {
        let Some(request) = self.pending() else {
            return Ok(self.page(400, auth::authorize_refused(self.site())));
        };
        if form.get("decision") != Some("allow") {
            let denied = OAuthError::new(OAuthCode::AccessDenied, "the person did not allow it");
            let to = self.svc.authorization_error(
                &request.redirect_uri,
                request.state.as_deref(),
                &denied,
            )?;
            return Ok(Answer::redirect(&to));
        }
        let token = self.cookie(SESSION_COOKIE);
        match self
            .svc
            .authorization_code(token.as_deref(), &request, Consent::Given)
            .await?
        {
            Authorized::Redirect(to) => Ok(Answer::redirect(&to)),
            // Signed out (or too long ago) since the page was shown.
            _ => Ok(Answer::redirect(&format!(
                "{}{}",
                AuthPage::SignIn.path(),
                self.carried(&[])
            ))),
        }
    }

    /// The session cookie, and on to the client or the account page. The
    /// cookie is set even if the code fails: the browser is signed in, and
    /// the client's next request is answered at once.
    async fn signed_in(&mut self, session: LoginSession) -> ApiResult<Answer> {
        let token = session.token.expose().to_owned();
        let ttl = self.cfg().session_ttl_secs;
        self.cookies.push(set_cookie(SESSION_COOKIE, &token, ttl));
        self.after_sign_in(&token, true).await
    }

    /// `page`'s path with the authorization request and `notice`.
    fn next(&self, page: AuthPage, notice: Notice) -> String {
        format!(
            "{}{}",
            page.path(),
            self.carried(&[("notice", notice.as_str())])
        )
    }

    async fn post(&mut self, path: &str, form: Form) -> ApiResult<Answer> {
        if path.starts_with("/admin") {
            return self.console_post(path, form).await;
        }
        if path == LOGOUT_PATH {
            return self.end_session(true).await;
        }
        if path == AUTHORIZE_PATH {
            return self.consented(&form).await;
        }
        if path == MFA_PATH {
            return self.second_step(&form).await;
        }
        if path.starts_with("/auth/account/") {
            return self.account_factor(path, &form).await;
        }
        let email = form.get("email").unwrap_or("").trim().to_owned();
        // Only what could be an address: a cookie stays small.
        if !email.is_empty() && email.len() <= 254 {
            self.remember_email(&email);
        }
        let (page, result) = match path {
            "/auth/sign-up" => (AuthPage::SignUp, self.sign_up(&form).await),
            "/auth/verify" => (AuthPage::Verify, self.verify(&form).await),
            "/auth/verify/resend" => (AuthPage::Verify, self.resend_verification(&form).await),
            "/auth/sign-in" => (AuthPage::SignIn, self.sign_in(&form).await),
            "/auth/code" => (AuthPage::Code, self.code_sign_in(&form).await),
            "/auth/forgot" => (AuthPage::Forgot, self.forgot(&form).await),
            "/auth/reset" => (AuthPage::Reset, self.reset(&form).await),
            "/auth/sign-out" => return self.sign_out().await,
            _ => return Err(ApiError::NotFound),
        };
        // A code asked for from the code page comes back to it.
        let page = match (page, form.get("via")) {
            (AuthPage::SignIn, Some("code"))
                if path == "/auth/sign-in" && form.get("password").is_none() =>
            {
                AuthPage::Code
            }
            _ => page,
        };
        match result {
            Ok(answer) => Ok(answer),
            // The first factor was right: the second step, its ticket
            // in the form.
            Err(ApiError::MfaRequired { mfa_token }) => {
                self.second_step_page(&mfa_token.0, 200, None)
            }
            Err(e) if shown_in_place(&e) => {
                let alert = Some(Alert::Error(auth::sentence(&e)));
                let mut answer = self.auth_page(page, e.status(), &email, alert)?;
                for (name, value) in e.headers() {
                    let _ = answer.response.headers_mut().set(name, &value);
                }
                Ok(answer)
            }
            Err(e) => Err(e),
        }
    }

    /// The Turnstile check of a form that sends a code, as the JSON
    /// routes make it: the widget's token is `cf-turnstile-response`.
    async fn check_human(&self, form: &Form) -> ApiResult<()> {
        // Without the widget no person could pass: say what is missing.
        if self.cfg().turnstile_on() && self.cfg().turnstile_site_key.is_none() {
            return Err(ApiError::Unavailable(
                "var TURNSTILE_SITE_KEY is not set: with TURNSTILE_SECRET, the pages need the widget".into(),
            ));
        }
        self.svc
            .check_human_sender(form.get("cf-turnstile-response"))
            .await
    }

    /// The sign-up, and this browser's registrant token for it: at
    /// verification it proves this browser made the sign-up, which keeps
    /// its password even if another sign-up contested the address.
    async fn sign_up(&self, form: &Form) -> ApiResult<Answer> {
        self.check_human(form).await?;
        let r = Register::parse(&form.as_json(&["email", "password"], &[]), self.cfg())?;
        let token = self.svc.register(&r.email, &r.password).await?;
        let tokens = with_signup_token(self.cookie(SIGNUP_COOKIE).as_deref(), &token);
        Ok(
            Answer::redirect(&self.next(AuthPage::Verify, Notice::CodeSent)).cookie(set_cookie(
                SIGNUP_COOKIE,
                &tokens,
                self.cfg().unverified_user_ttl_secs,
            )),
        )
    }

    /// The browser that signed up is signed in by its code, and goes on
    /// to the app; another browser signs in with the password; an address
    /// verified with no password gets one by a reset.
    async fn verify(&mut self, form: &Form) -> ApiResult<Answer> {
        let r = CodeProof::parse(&form.as_json(&["email", "code"], &[]), self.cfg())?;
        let tokens = signup_tokens(self.cookie(SIGNUP_COOKIE).as_deref());
        let next = match self
            .svc
            .verify_email_in_browser(&r.email, &r.code, tokens)
            .await?
        {
            Verified::SignedIn(session) => {
                // Its sign-up is done: the browser keeps no token for it.
                self.cookies.push(clear_cookie(SIGNUP_COOKIE));
                return self.signed_in(session).await;
            }
            Verified::PasswordKept => self.next(AuthPage::SignIn, Notice::Verified),
            Verified::PasswordDropped => {
                self.next(AuthPage::Forgot, Notice::VerifiedWithoutPassword)
            }
        };
        Ok(Answer::redirect(&next))
    }

    async fn resend_verification(&self, form: &Form) -> ApiResult<Answer> {
        self.check_human(form).await?;
        let r = CodeRequest::parse(&form.as_json(&["email"], &[]))?;
        let mail = self.svc.resend(&r.email, Purpose::VerifyEmail).await?;
        deliver_later(self.ctx, &self.svc.mailer, mail);
        Ok(Answer::redirect(
            &self.next(AuthPage::Verify, Notice::CodeSent),
        ))
    }

    async fn sign_in(&mut self, form: &Form) -> ApiResult<Answer> {
        self.check_human(form).await?;
        if form.get("via") == Some("code") {
            let r = CodeRequest::parse(&form.as_json(&["email"], &[]))?;
            let mail = self.svc.login_code(&r.email).await?;
            deliver_later(self.ctx, &self.svc.mailer, mail);
            return Ok(Answer::redirect(
                &self.next(AuthPage::Code, Notice::LoginCodeSent),
            ));
        }
        let r = Login::parse(&form.as_json(&["email", "password"], &[]))?;
        let session = self
            .svc
            .login(&r.email, &r.password, Audience::Browser)
            .await?;
        self.signed_in(session).await
    }

    async fn code_sign_in(&mut self, form: &Form) -> ApiResult<Answer> {
        let r = CodeProof::parse(&form.as_json(&["email", "code"], &[]), self.cfg())?;
        let session = self
            .svc
            .login_with_code(&r.email, &r.code, Audience::Browser)
            .await?;
        self.signed_in(session).await
    }

    async fn forgot(&self, form: &Form) -> ApiResult<Answer> {
        self.check_human(form).await?;
        let r = CodeRequest::parse(&form.as_json(&["email"], &[]))?;
        let mail = self.svc.password_reset(&r.email).await?;
        deliver_later(self.ctx, &self.svc.mailer, mail);
        Ok(Answer::redirect(
            &self.next(AuthPage::Reset, Notice::ResetCodeSent),
        ))
    }

    async fn reset(&self, form: &Form) -> ApiResult<Answer> {
        let body = form.as_json(&["email", "code", "new_password"], &[]);
        let r = PasswordResetConfirm::parse(&body, self.cfg())?;
        self.svc
            .confirm_password_reset(&r.email, &r.code, &r.new_password)
            .await?;
        // The reset ended every session; this browser's cookie goes too.
        Ok(
            Answer::redirect(&self.next(AuthPage::SignIn, Notice::PasswordReset))
                .cookie(clear_cookie(SESSION_COOKIE)),
        )
    }

    async fn sign_out(&self) -> ApiResult<Answer> {
        let token = self.cookie(SESSION_COOKIE);
        match self.svc.logout(token.as_deref(), Presented::Cookie).await {
            Ok(()) | Err(ApiError::Unauthorized) => {}
            Err(e) => return Err(e),
        }
        Ok(Answer::redirect(&format!(
            "/auth/sign-in?notice={}",
            Notice::SignedOut.as_str()
        ))
        .cookie(clear_cookie(SESSION_COOKIE)))
    }

    // The console -------------------------------------------------------

    /// The admin credential of a signed-in console, or the sign-in page.
    fn admin(&self) -> Option<String> {
        self.svc
            .admin_console(self.cookie(ADMIN_COOKIE).as_deref())
            .ok()
            .map(str::to_owned)
    }

    async fn console_get(&mut self, path: &str) -> ApiResult<Answer> {
        let Some(token) = self.admin() else {
            return Ok(Answer::redirect("/admin/sign-in"));
        };
        let token = Some(token.as_str());
        let csrf = self.csrf()?;
        let site = self.site().to_owned();
        match path {
            "/admin" => {
                let (stats, activity) = futures_util::future::join(
                    self.svc.admin_stats(token),
                    self.svc.activity(token),
                )
                .await;
                Ok(self.page(200, console::overview(&site, &csrf, &stats?, &activity?)))
            }
            "/admin/events" => {
                let query = self.query();
                let (events, filter) = match EventsQuery::parse_form(&query) {
                    Ok(q) => {
                        let found = self
                            .svc
                            .events(token, &q.page, q.address.as_deref(), q.kind)
                            .await;
                        let next = q.page.next_before(found.as_deref().unwrap_or(&[]));
                        let (events, alert) = match found {
                            Ok(events) => (events, None),
                            Err(e @ ApiError::InvalidRequest(_)) => {
                                (Vec::new(), Some(Alert::Error(auth::sentence(&e))))
                            }
                            Err(e) => return Err(e),
                        };
                        let next = next.map(|before| {
                            let mut q2 = form_urlencoded::Serializer::new(String::new());
                            if let Some(a) = &q.address {
                                q2.append_pair("address", a);
                            }
                            if let Some(k) = q.kind {
                                q2.append_pair("kind", k.as_str());
                            }
                            q2.append_pair("before", &before.to_string());
                            format!("/admin/events?{}", q2.finish())
                        });
                        (events, (q.address.unwrap_or_default(), q.kind, next, alert))
                    }
                    Err(e) => (
                        Vec::new(),
                        (
                            String::new(),
                            None,
                            None,
                            Some(Alert::Error(auth::sentence(&e))),
                        ),
                    ),
                };
                let (address, kind, next, alert) = filter;
                let form = EventFilterForm {
                    address: &address,
                    kind,
                    next,
                    alert,
                };
                Ok(self.page(200, console::events(&site, &csrf, &events, &form)))
            }
            "/admin/keys" => {
                let keys = self.svc.api_keys(token).await?;
                let note = (self.query().contains("notice=revoked"))
                    .then(|| Alert::Notice("The key is revoked.".into()));
                Ok(self.page(200, console::keys(&site, &csrf, &keys, None, note.as_ref())))
            }
            "/admin/clients" => {
                let clients = self.svc.oidc_clients(token).await?;
                let note = (self.query().contains("notice=deleted"))
                    .then(|| Alert::Notice("The client is deleted.".into()));
                Ok(self.page(
                    200,
                    console::clients(&site, &csrf, &clients, None, note.as_ref()),
                ))
            }
            p if delete_target(p).is_some() => {
                let id = delete_target(p).unwrap_or_default();
                let clients = self.svc.oidc_clients(token).await?;
                match clients.iter().find(|c| c.id == id) {
                    Some(client) => {
                        Ok(self.page(200, console::delete_client(&site, &csrf, client)))
                    }
                    None => Err(ApiError::ClientNotFound),
                }
            }
            p => {
                let id = revoke_target(p).unwrap_or_default();
                let keys = self.svc.api_keys(token).await?;
                match keys.iter().find(|k| k.id == id && k.revoked_at.is_none()) {
                    Some(key) => Ok(self.page(200, console::revoke(&site, &csrf, key))),
                    None => Err(ApiError::ApiKeyNotFound),
                }
            }
        }
    }

    async fn console_post(&mut self, path: &str, form: Form) -> ApiResult<Answer> {
        match path {
            "/admin/sign-in" => {
                let token = form.get("token").unwrap_or("");
                match self.svc.admin_console_session(token) {
                    Ok(session) => Ok(Answer::redirect("/admin").cookie(set_cookie(
                        ADMIN_COOKIE,
                        &session,
                        ADMIN_SESSION_SECS,
                    ))),
                    Err(e @ ApiError::Unauthorized) => {
                        let csrf = self.csrf()?;
                        let alert = Alert::Error("That is not the admin token.".into());
                        Ok(self.page(
                            e.status(),
                            console::sign_in(self.site(), &csrf, Some(&alert)),
                        ))
                    }
                    Err(e) => Err(e),
                }
            }
            "/admin/sign-out" => {
                Ok(Answer::redirect("/admin/sign-in").cookie(clear_cookie(ADMIN_COOKIE)))
            }
            _ => {
                let Some(token) = self.admin() else {
                    return Ok(Answer::redirect("/admin/sign-in"));
                };
                let token = Some(token.as_str());
                let csrf = self.csrf()?;
                let site = self.site().to_owned();
                if path == "/admin/keys" {
                    let created =
                        match CreateKey::parse(&form.as_json(&["name", "app_name"], &["channels"]))
                        {
                            Ok(CreateKey(new)) => self.svc.create_api_key(token, &new).await,
                            Err(e) => Err(e),
                        };
                    let keys = match (&created, self.svc.api_keys(token).await) {
                        (_, Ok(list)) => list,
                        (Ok(_), Err(_)) => Vec::new(),
                        (Err(_), Err(e)) => return Err(e),
                    };
                    return Ok(match created {
                        Ok((key, secret)) => self.page(
                            201,
                            console::keys(&site, &csrf, &keys, Some((&key, secret.expose())), None),
                        ),
                        Err(e @ ApiError::InvalidRequest(_)) => {
                            let alert = Alert::Error(auth::sentence(&e));
                            self.page(400, console::keys(&site, &csrf, &keys, None, Some(&alert)))
                        }
                        Err(e) => return Err(e),
                    });
                }
                if path == "/admin/clients" {
                    let fields = form.as_json_lines(
                        &["name", "type"],
                        &["redirect_uris", "post_logout_redirect_uris"],
                    );
                    let created = match CreateOidcClient::parse(&fields) {
                        Ok(CreateOidcClient(new)) => self.svc.create_oidc_client(token, &new).await,
                        Err(e) => Err(e),
                    };
                    // A failed read of the list must not lose a secret
                    // shown only now: the page goes out without the list.
                    let clients = match (&created, self.svc.oidc_clients(token).await) {
                        (_, Ok(list)) => list,
                        (Ok(_), Err(_)) => Vec::new(),
                        (Err(_), Err(e)) => return Err(e),
                    };
                    return Ok(match created {
                        Ok((client, secret)) => {
                            let shown = Some((&client, secret.as_ref().map(|s| s.expose())));
                            self.page(201, console::clients(&site, &csrf, &clients, shown, None))
                        }
                        Err(e @ ApiError::InvalidRequest(_)) => {
                            let alert = Alert::Error(auth::sentence(&e));
                            self.page(
                                400,
                                console::clients(&site, &csrf, &clients, None, Some(&alert)),
                            )
                        }
                        Err(e) => return Err(e),
                    });
                }
                if let Some(id) = delete_target(path) {
                    self.svc.delete_oidc_client(token, id).await?;
                    return Ok(Answer::redirect("/admin/clients?notice=deleted"));
                }
                let id = revoke_target(path).ok_or(ApiError::NotFound)?;
                self.svc.revoke_api_key(token, id).await?;
                Ok(Answer::redirect("/admin/keys?notice=revoked"))
            }
        }
    }
}

/// The key id of `/admin/keys/{id}/revoke`.
fn revoke_target(path: &str) -> Option<&str> {
    path.strip_prefix("/admin/keys/")?
        .strip_suffix("/revoke")
        .filter(|id| crate::domain::api_key::is_key_id(id))
}

/// The client id of `/admin/clients/{id}/delete`.
fn delete_target(path: &str) -> Option<&str> {
    path.strip_prefix("/admin/clients/")?
        .strip_suffix("/delete")
        .filter(|id| crate::domain::oidc_client::is_client_id(id))
}

fn is_browser_id(id: &str) -> bool {
    id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())
}

/// The failures a form shows in place; the rest get the failure page.
fn shown_in_place(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::InvalidRequest(_)
            | ApiError::InvalidCode
            | ApiError::WrongCode { .. }
            | ApiError::ExpiredCode
            | ApiError::TooManyAttempts
            | ApiError::RateLimited { .. }
            | ApiError::InvalidCredentials
            | ApiError::LoginLocked { .. }
            | ApiError::MailDeliveryFailed
            | ApiError::Unauthorized
    )
}
