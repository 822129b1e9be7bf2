//! The pages people sign up and sign in with. Each form posts to its own
//! path (`edge::pages`), which runs the same flow as the JSON route and
//! answers with a redirect (POST-redirect-GET) or this page again with the
//! error in place.

use super::layout::{alert, csrf_field, document, turnstile_script, turnstile_widget, Alert};
use crate::error::ApiError;
use maud::{html, Markup};

/// What every auth page is drawn with.
pub struct View<'a> {
    /// `APP_NAME`.
    pub site: &'a str,
    /// This browser's form token.
    pub csrf: &'a str,
    /// The OpenID Connect authorization request (`oauth=`), carried by
    /// every link and form.
    pub query: &'a str,
    /// The address to fill in: the one typed last.
    pub email: &'a str,
    pub alert: Option<Alert>,
    /// Digits in an account code (`OTP_LENGTH`).
    pub code_length: usize,
    pub password_min: usize,
    /// `TURNSTILE_SITE_KEY`: the forms that send a code carry the widget.
    pub turnstile: Option<&'a str>,
    /// The name of the OpenID Connect client the person is signing in to.
    pub continues_to: Option<&'a str>,
}

/// The forms of the journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthPage {
    SignUp,
    Verify,
    SignIn,
    Code,
    Forgot,
    Reset,
}

impl AuthPage {
    pub fn path(self) -> &'static str {
        match self {
            Self::SignUp => "/auth/sign-up",
            Self::Verify => "/auth/verify",
            Self::SignIn => "/auth/sign-in",
            Self::Code => "/auth/code",
            Self::Forgot => "/auth/forgot",
            Self::Reset => "/auth/reset",
        }
    }

    pub fn from_path(path: &str) -> Option<Self> {
        [
            Self::SignUp,
            Self::Verify,
            Self::SignIn,
            Self::Code,
            Self::Forgot,
            Self::Reset,
        ]
        .into_iter()
        .find(|p| p.path() == path)
    }

    fn title(self) -> &'static str {
        match self {
            Self::SignUp => "Create your account",
            Self::Verify => "Verify your email",
            Self::SignIn => "Sign in",
            Self::Code => "Enter your sign-in code",
            Self::Forgot => "Reset your password",
            Self::Reset => "Choose a new password",
        }
    }
}

/// The notices a redirect can ask the next page to show (`?notice=`):
/// a fixed list, so a link cannot make the page say anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    CodeSent,
    Verified,
    VerifiedWithoutPassword,
    LoginCodeSent,
    ResetCodeSent,
    PasswordReset,
    SignedOut,
    /// The account's authenticator app was turned off.
    TotpOff,
}

impl Notice {
    const ALL: [Self; 8] = [
        Self::CodeSent,
        Self::Verified,
        Self::VerifiedWithoutPassword,
        Self::LoginCodeSent,
        Self::ResetCodeSent,
        Self::PasswordReset,
        Self::SignedOut,
        Self::TotpOff,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeSent => "code_sent",
            Self::Verified => "verified",
            Self::VerifiedWithoutPassword => "verified_without_password",
            Self::LoginCodeSent => "login_code_sent",
            Self::ResetCodeSent => "reset_code_sent",
            Self::PasswordReset => "password_reset",
            Self::SignedOut => "signed_out",
            Self::TotpOff => "totp_off",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == raw)
    }

    /// The sentence, about `email` when the notice names one.
    pub fn sentence(self, email: &str) -> String {
        let to = match email.is_empty() {
            true => "your address".to_owned(),
            false => email.to_owned(),
        };
        match self {
            Self::CodeSent => format!("We sent a code to {to}. Enter it below."),
            Self::Verified => "Your address is verified. Sign in to continue.".into(),
            Self::VerifiedWithoutPassword => format!(
                "Your address is verified, but we kept no password: this browser did not make the sign-up, or another sign-up also asked for {to}. Ask for a code below and choose yours."
            ),
            Self::LoginCodeSent => format!("If {to} has an account, we sent it a code."),
            Self::ResetCodeSent => {
                format!("If {to} has an account, we sent it a code to reset the password.")
            }
            Self::PasswordReset => {
                "Your password is changed and every session is signed out. Sign in with the new password.".into()
            }
            Self::SignedOut => "You are signed out.".into(),
            Self::TotpOff => {
                "Two-step sign-in is off: your password or an emailed code alone signs in.".into()
            }
        }
    }
}

/// What a person reads for a refused form: what happened and what to do.
pub fn sentence(e: &ApiError) -> String {
    match e {
        ApiError::WrongCode { attempts_left } => format!(
            "That code is wrong. {attempts_left} {} left.",
            if *attempts_left == 1 {
                "attempt"
            } else {
                "attempts"
            }
        ),
        ApiError::InvalidCode => {
            "That code is wrong or was already used. Ask for a new code below.".into()
        }
        ApiError::ExpiredCode => "This code has expired. Ask for a new code below.".into(),
        ApiError::MfaTokenInvalid => "This sign-in took too long or was already used.".into(),
        ApiError::SecondFactorLocked { retry_after_secs } => format!(
            "Too many wrong codes for this account. Try again in {} {}.",
            retry_after_secs.div_ceil(60),
            if retry_after_secs.div_ceil(60) == 1 { "minute" } else { "minutes" }
        ),
        ApiError::TotpAlreadyEnabled => "An authenticator app is already set up.".into(),
        ApiError::FreshSignInRequired => {
            "For your safety, setting up an authenticator app needs a recent sign-in: sign out, sign in again, and set it up then.".into()
        }
        ApiError::TotpNotEnabled => {
            "There is no authenticator app to confirm or turn off: set one up again.".into()
        }
        ApiError::TooManyAttempts => {
            "Too many wrong codes. This code can no longer be used: ask for a new code below."
                .into()
        }
        ApiError::RateLimited { retry_after_secs } => format!(
            "Too many requests. Try again in {retry_after_secs} {}.",
            if *retry_after_secs == 1 {
                "second"
            } else {
                "seconds"
            }
        ),
        ApiError::InvalidCredentials => {
            "The email or password is wrong. If you signed up and have not verified your address yet, we have emailed you a new code: enter it on the verify page.".into()
        }
        ApiError::LoginLocked { retry_after_secs } => format!(
            "Too many failed sign-ins for this address. Try again in {} {}, or use “Email me a code” or “Forgot your password?”, which still work.",
            retry_after_secs.div_ceil(60),
            if retry_after_secs.div_ceil(60) == 1 { "minute" } else { "minutes" }
        ),
        ApiError::InvalidRequest(detail) => field_sentence(detail),
        ApiError::MailDeliveryFailed => {
            "We could not send the email just now. Please try again in a moment.".into()
        }
        ApiError::Unauthorized => "Your session has ended. Please sign in again.".into(),
        _ => "Something went wrong on our side. Please try again in a moment.".into(),
    }
}

/// A parser's detail ("field `password` must be at least 8 characters")
/// as a person's sentence ("Password must be at least 8 characters.").
fn field_sentence(detail: &str) -> String {
    let rest = detail.strip_prefix("field ").unwrap_or(detail);
    let mut out = String::with_capacity(rest.len() + 1);
    let mut in_name = false;
    for c in rest.chars() {
        match c {
            '`' => in_name = !in_name,
            '_' if in_name => out.push(' '),
            c => out.push(c),
        }
    }
    let mut chars = out.chars();
    let mut sentence: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return "Please check the form.".into(),
    };
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}

fn email_field(value: &str) -> Markup {
    html! {
        label for="email" { "Email" }
        input #email type="email" name="email" value=(value) autocomplete="email"
            required maxlength="254" autocapitalize="off" spellcheck="false";
    }
}

fn password_field(name: &str, label: &str, autocomplete: &str, min: Option<usize>) -> Markup {
    html! {
        label for=(name) { (label) }
        @if let Some(min) = min {
            input id=(name) type="password" name=(name) autocomplete=(autocomplete) required
                minlength=(min) maxlength="1024" aria-describedby=(format!("{name}-hint"));
            p .hint id=(format!("{name}-hint")) { "At least " (min) " characters." }
        } @else {
            input id=(name) type="password" name=(name) autocomplete=(autocomplete) required
                maxlength="1024";
        }
    }
}

fn code_field(length: usize) -> Markup {
    html! {
        label for="code" { "Code" }
        input #code type="text" name="code" autocomplete="one-time-code" inputmode="numeric"
            pattern="[0-9]*" required minlength=(length) maxlength=(length)
            autocapitalize="off" spellcheck="false";
    }
}

/// A second form that asks for a fresh code, with the address hidden.
fn resend_form(v: &View<'_>, action: &str, extra: Option<(&str, &str)>) -> Markup {
    html! {
        form #resend method="post" action=(format!("{action}{}", v.query)) {
            (csrf_field(v.csrf))
            input type="hidden" name="email" value=(v.email);
            @if let Some((name, value)) = extra {
                input type="hidden" name=(name) value=(value);
            }
            (turnstile_widget(v.turnstile))
            button .secondary type="submit" { "Send a new code" }
        }
    }
}

fn link(v: &View<'_>, page: AuthPage, text: &str) -> Markup {
    html! { a href=(format!("{}{}", page.path(), v.query)) { (text) } }
}

/// One of the journey's pages.
pub fn render(page: AuthPage, v: &View<'_>) -> Markup {
    let action = format!("{}{}", page.path(), v.query);
    let body = html! {
        h1 { (page.title()) }
        @if let Some(app) = v.continues_to {
            p #continues-to { "to continue to " strong { (app) } }
        }
        (alert(v.alert.as_ref()))
        @match page {
            AuthPage::SignUp => {
                form #sign-up method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (password_field("password", "Password", "new-password", Some(v.password_min)))
                    (turnstile_widget(v.turnstile))
                    button type="submit" { "Create account" }
                }
                p .links { "Already have an account? " (link(v, AuthPage::SignIn, "Sign in")) }
            }
            AuthPage::Verify => {
                p { "Enter the code we emailed you." }
                form #verify method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (code_field(v.code_length))
                    button type="submit" { "Verify" }
                }
                (resend_form(v, "/auth/verify/resend", None))
                p .links { (link(v, AuthPage::SignIn, "Back to sign in")) }
            }
            AuthPage::SignIn => {
                form #sign-in method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (password_field("password", "Password", "current-password", None))
                    (turnstile_widget(v.turnstile))
                    button type="submit" name="via" value="password" { "Sign in" }
                    button .secondary type="submit" name="via" value="code" formnovalidate {
                        "Email me a code"
                    }
                }
                p .links {
                    (link(v, AuthPage::SignUp, "Create an account"))
                    " · "
                    (link(v, AuthPage::Forgot, "Forgot your password?"))
                    " · "
                    (link(v, AuthPage::Verify, "Verify your email"))
                }
            }
            AuthPage::Code => {
                p { "Enter the code we emailed you." }
                form #code-form method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (code_field(v.code_length))
                    button type="submit" { "Sign in" }
                }
                (resend_form(v, AuthPage::SignIn.path(), Some(("via", "code"))))
                p .links { (link(v, AuthPage::SignIn, "Use your password instead")) }
            }
            AuthPage::Forgot => {
                p { "We will email you a code to choose a new password." }
                form #forgot method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (turnstile_widget(v.turnstile))
                    button type="submit" { "Send reset code" }
                }
                p .links { (link(v, AuthPage::SignIn, "Back to sign in")) }
            }
            AuthPage::Reset => {
                p { "Enter the code we emailed you and a new password." }
                form #reset method="post" action=(action) {
                    (csrf_field(v.csrf))
                    (email_field(v.email))
                    (code_field(v.code_length))
                    (password_field("new_password", "New password", "new-password", Some(v.password_min)))
                    button type="submit" { "Set new password" }
                }
                (resend_form(v, AuthPage::Forgot.path(), None))
                p .links { (link(v, AuthPage::SignIn, "Back to sign in")) }
            }
        }
    };
    let body = html! { (body) (turnstile_script(v.turnstile)) };
    document(v.site, page.title(), html! {}, body)
}

/// The signed-in page: the account, `extra` (its second factors), and
/// an `alert` from a form of it.
pub struct AccountView<'a> {
    pub site: &'a str,
    pub csrf: &'a str,
    pub email: &'a str,
    pub verified: bool,
    pub since: &'a str,
    pub alert: Option<Alert>,
    pub extra: Markup,
}

pub fn account(v: &AccountView<'_>) -> Markup {
    let (site, csrf, email, verified, since) = (v.site, v.csrf, v.email, v.verified, v.since);
    let body = html! {
        h1 { "You are signed in" }
        (alert(v.alert.as_ref()))
        dl .facts {
            dt { "Email" }
            dd #account-email { (email) }
            dt { "Status" }
            dd { @if verified { "Verified" } @else { "Not verified" } }
            dt { "Member since" }
            dd { (since) }
        }
        (v.extra)
        form #sign-out method="post" action="/auth/sign-out" {
            (csrf_field(csrf))
            button type="submit" { "Sign out" }
        }
    };
    document(site, "Your account", html! {}, body)
}

/// RP-initiated logout without proof that the app's user is this
/// browser's: the person says whether to sign out. `action` carries the
/// app's request, so the sign-out goes on to where the app asked.
pub fn sign_out_confirm(site: &str, csrf: &str, action: &str) -> Markup {
    let body = html! {
        h1 { "Sign out?" }
        p { "An app asked to sign you out of " (site) "." }
        form #sign-out method="post" action=(action) {
            (csrf_field(csrf))
            button type="submit" { "Sign out" }
        }
    };
    document(site, "Sign out", html! {}, body)
}

/// What a self-registered client asks of the person, on its consent page.
pub struct ConsentView<'a> {
    pub site: &'a str,
    pub csrf: &'a str,
    /// Where the form posts: the authorization endpoint with the request.
    pub action: &'a str,
    /// The name the client gave itself: its claim, not ours.
    pub client_name: &'a str,
    /// The host the browser goes back to, which no one can fake.
    pub redirect_host: &'a str,
    pub email: &'a str,
    /// `offline_access`: it keeps access while the person is away.
    pub offline: bool,
    /// `email`: it reads the address.
    pub reads_email: bool,
}

/// The consent page: a client that registered itself names itself, so the
/// person is told what is known (where they will be sent) beside what is
/// claimed, and agrees or not, each time.
pub fn consent(v: &ConsentView<'_>) -> Markup {
    let body = html! {
        h1 { "Allow " (v.client_name) "?" }
        p #consent-app {
            "An app calling itself " strong { (v.client_name) } " wants you to sign in to it as " strong { (v.email) } ". "
            "It registered itself with " (v.site) ": its name is its own claim, which no one here has checked."
        }
        p #consent-host { "If you allow it, you go on to " strong { (v.redirect_host) } "." }
        ul #consent-scopes {
            li { "It learns who you are here (an account identifier)." }
            @if v.reads_email { li { "It reads your email address." } }
            @if v.offline { li { "It keeps access while you are away, until it lets go or you reset your password." } }
        }
        form #consent method="post" action=(v.action) {
            (csrf_field(v.csrf))
            button type="submit" name="decision" value="allow" { "Allow" }
            " "
            button type="submit" name="decision" value="deny" .secondary { "Cancel" }
        }
    };
    document(v.site, "Allow this app?", html! {}, body)
}

/// Where a browser would be sent at once for an operator's client, when
/// the client registered itself: the person follows the link or not
/// (RFC 9700 §4.11.2), so no one can use this site to bounce a browser
/// to an address of their choosing. `to` is the full URI, `host` its host.
pub fn leaving(site: &str, heading: &str, sentence: &str, to: &str, host: &str) -> Markup {
    let body = html! {
        h1 { (heading) }
        p #leaving-why { (sentence) }
        p #leaving-note {
            "The app registered itself with " (site) ", and no one here has checked it, so you go on only if you choose to."
        }
        p .links { a #leaving-link href=(to) { "Continue to " (host) } }
    };
    document(site, heading, html! {}, body)
}

/// A logout request naming an address to return to that its app did not
/// register: nothing is done, and nobody is sent there.
pub fn logout_refused(site: &str) -> Markup {
    let body = html! {
        h1 { "This sign-out link is not valid" }
        div #error .alert.error role="alert" {
            "The app asked to send you back to an address it did not register, so nothing was done. "
            "Go back to the app and sign out there again."
        }
    };
    document(site, "Sign-out link not valid", html! {}, body)
}

/// The answer to a form that failed the CSRF check: nothing was done.
pub fn refused(site: &str, back: &str) -> Markup {
    let body = html! {
        h1 { "This form could not be accepted" }
        div #error .alert.error role="alert" {
            "The form did not come from this site's own page in this browser, so nothing was done. "
            "If you filled it in yourself, go back, reload the page and try again."
        }
        p .links { a href=(back) { "Start again" } }
    };
    document(site, "Form refused", html! {}, body)
}

/// The answer to an authorization request naming no registered client,
/// or a redirect URI the client did not register: nothing is sent
/// anywhere, since the address could be anyone's.
pub fn authorize_refused(site: &str) -> Markup {
    let body = html! {
        h1 { "This sign-in link is not valid" }
        div #error .alert.error role="alert" {
            "The app that sent you here is not registered with this service, or asked to send you back to an address it did not register. "
            "Nothing was done. Go back to the app and try again; if it keeps happening, tell the app's developers."
        }
    };
    document(site, "Sign-in link not valid", html! {}, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(alert: Option<Alert>) -> View<'static> {
        View {
            site: "Acme",
            csrf: "tok",
            query: "?oauth=sealed.request",
            email: "ann@example.com",
            alert,
            code_length: 6,
            password_min: 8,
            turnstile: None,
            continues_to: None,
        }
    }

    #[test]
    fn fields_carry_the_autofill_hints() {
        let html = render(AuthPage::Reset, &view(None)).into_string();
        assert!(html.contains(r#"autocomplete="one-time-code""#));
        assert!(html.contains(r#"inputmode="numeric""#));
        assert!(html.contains(r#"name="new_password" autocomplete="new-password""#));
        assert!(html.contains(r#"autocomplete="email""#));
        let html = render(AuthPage::SignIn, &view(None)).into_string();
        assert!(html.contains(r#"autocomplete="current-password""#));
        assert!(html.contains(r#"action="/auth/sign-in?oauth=sealed.request""#));
        assert!(html.contains(r#"href="/auth/sign-up?oauth=sealed.request""#));
    }

    #[test]
    fn errors_are_alerts_and_every_code_page_offers_a_new_code() {
        let html = render(
            AuthPage::Code,
            &view(Some(Alert::Error(sentence(&ApiError::WrongCode {
                attempts_left: 1,
            })))),
        )
        .into_string();
        assert!(html.contains(r#"<div class="alert error" id="error" role="alert">That code is wrong. 1 attempt left.</div>"#)
            || html.contains(r#"id="error""#) && html.contains("That code is wrong. 1 attempt left."));
        for page in [AuthPage::Verify, AuthPage::Code, AuthPage::Reset] {
            assert!(
                render(page, &view(None))
                    .into_string()
                    .contains(r#"form id="resend""#),
                "{page:?}"
            );
        }
    }

    #[test]
    fn sentences_a_person_reads() {
        assert_eq!(
            sentence(&ApiError::WrongCode { attempts_left: 2 }),
            "That code is wrong. 2 attempts left."
        );
        assert_eq!(
            sentence(&ApiError::RateLimited {
                retry_after_secs: 42
            }),
            "Too many requests. Try again in 42 seconds."
        );
        assert_eq!(
            sentence(&ApiError::InvalidRequest(
                "field `new_password` must be at least 8 characters".into()
            )),
            "New password must be at least 8 characters."
        );
        assert!(sentence(&ApiError::Internal("d1: secret detail".into())).contains("our side"));
        assert!(sentence(&ApiError::ExpiredCode).contains("expired"));
    }

    #[test]
    fn notices_come_from_a_fixed_list() {
        for n in Notice::ALL {
            assert_eq!(Notice::parse(n.as_str()), Some(n));
        }
        assert_eq!(Notice::parse("<script>"), None);
        assert!(Notice::CodeSent.sentence("a@b.co").contains("a@b.co"));
    }
}
