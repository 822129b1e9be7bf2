//! Mail: the messages the service sends, the trait the flows send through,
//! and the HTTP mail APIs, one file each behind `MailApi`.

mod postmark;
mod resend;
mod sendgrid;

use crate::domain::email::Email;
use crate::error::ApiResult;
use crate::providers::http_call::HttpCall;
use crate::providers::template::{escape_html, one_line, RenderedMail};

pub use postmark::Postmark;
pub use resend::Resend;
pub use sendgrid::SendGrid;

/// The Resend tag that names a mail's send (its `idempotency_key`,
/// `code-<id>`), which Resend's webhook events carry back.
pub const SEND_TAG: &str = "otp_send";

#[derive(Clone)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Lets the provider drop a duplicate if a send is retried.
    pub idempotency_key: String,
}

impl std::fmt::Debug for Message {
    // Bodies carry codes: keep them out of debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Message(<redacted>)")
    }
}

#[allow(async_fn_in_trait)]
pub trait Mailer {
    /// Checked before a flow writes anything, so a missing key or binding
    /// fails closed with 503 instead of half-way through.
    fn ready(&self) -> ApiResult<()>;
    /// Errors are `MailDeliveryFailed`; the provider's answer is logged, not returned.
    async fn send(&self, message: &Message) -> ApiResult<()>;
}

/// An HTTP mail API. Adding a provider is a file implementing this, and a
/// line in `APIS`.
pub trait MailApi: Sync {
    /// The `MAIL_PROVIDER` value that selects it.
    fn name(&self) -> &'static str;
    fn default_url(&self) -> &'static str;
    fn request(&self, api_url: &str, api_key: &str, from: &Sender, m: &Message) -> HttpCall;
    /// Whether a 2xx body confirms the message was accepted.
    fn confirms(&self, body: &str) -> bool;
}

pub const APIS: [&dyn MailApi; 3] = [&Resend, &Postmark, &SendGrid];

/// `MAIL_FROM`: `addr@example.com` or `Display Name <addr@example.com>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: Option<String>,
    pub email: String,
}

impl Sender {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let bad = || {
            format!("var MAIL_FROM must be `addr@example.com` or `Name <addr@example.com>`, not `{raw}`")
        };
        let raw = raw.trim();
        let (name, addr) = match raw.strip_suffix('>').and_then(|r| r.rsplit_once('<')) {
            Some((name, addr)) => (Some(name.trim().trim_matches('"').trim()), addr),
            None => (None, raw),
        };
        let email = Email::parse(addr).map_err(|_| bad())?;
        let name = name.filter(|n| !n.is_empty());
        if name.is_some_and(|n| n.chars().any(|c| c.is_control() || "<>\"".contains(c))) {
            return Err(bad());
        }
        Ok(Self {
            name: name.map(str::to_owned),
            email: email.as_str().to_owned(),
        })
    }

    /// RFC 5322 form, as Resend and Postmark take it. A name with
    /// specials such as `,` or `.` must be quoted.
    pub fn formatted(&self) -> String {
        match &self.name {
            Some(n) if n.contains(|c| "()<>[]:;@\\,.".contains(c)) => {
                format!("\"{n}\" <{}>", self.email)
            }
            Some(n) => format!("{n} <{}>", self.email),
            None => self.email.clone(),
        }
    }
}

pub fn code_message(to: &str, rendered: RenderedMail, idempotency_key: String) -> Message {
    Message {
        to: to.to_owned(),
        subject: rendered.subject,
        text: rendered.text,
        html: rendered.html,
        idempotency_key,
    }
}

/// What an account's owner is told by mail: instead of a code when
/// someone registers the address (the owner learns of it, the requester
/// learns nothing), and of every change to the account's second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The address already has a verified account.
    AccountExists,
    /// An earlier registration of the address is still waiting for its
    /// code, and keeps its password: a code for this one could verify a
    /// password the owner never chose (account pre-hijacking).
    RegistrationPending,
    /// An authenticator app now guards the account.
    TotpEnabled,
    /// The account's authenticator app was turned off.
    TotpDisabled,
    /// A recovery code signed in; this many are left.
    RecoveryCodeUsed { left: u32 },
    /// New recovery codes replaced the old ones.
    RecoveryCodesReplaced,
}

/// `app` is the `APP_NAME` the notice is signed with.
pub fn notice_message(app: &str, to: &str, notice: Notice, idempotency_key: String) -> Message {
    let (subject, lines): (String, [String; 3]) = match notice {
        Notice::AccountExists => (
            format!("Your {app} account"),
            [
                format!("Someone tried to create an account on {app} with this email address, which already has one."),
                "If it was you, sign in, or reset your password if you forgot it.".into(),
                "If you didn't ask for this, ignore this email: your account is unchanged.".into(),
            ],
        ),
        Notice::RegistrationPending => (
            format!("Your {app} sign-up is already waiting"),
            [
                format!("Someone asked to create an account on {app} with this email address, but an earlier sign-up for it is still waiting for its verification code. Nothing was changed and no new code was sent."),
                "You can still enter the code from that email. Because two sign-ups asked for this address, it keeps a password only if you enter it in the browser you first signed up in (or an app sends your password with it); otherwise your address is verified with no password, and you choose one with \"Forgot your password?\".".into(),
                "If you didn't ask for any of this, ignore this email.".into(),
            ],
        ),
        Notice::TotpEnabled => (
            format!("Two-step sign-in is on for your {app} account"),
            [
                format!("An authenticator app now gives the second step of every sign-in to your {app} account."),
                "Keep your recovery codes somewhere safe: each one signs you in once if you lose the app.".into(),
                "If you didn't do this, reset your password now and contact support: someone signed in to your account.".into(),
            ],
        ),
        Notice::TotpDisabled => (
            format!("Two-step sign-in was turned off on your {app} account"),
            [
                format!("The authenticator app no longer guards your {app} account, and its recovery codes no longer work."),
                "Signing in now takes only your password or an emailed code.".into(),
                "If you didn't do this, reset your password now and contact support.".into(),
            ],
        ),
        Notice::RecoveryCodeUsed { left } => (
            format!("A recovery code signed in to your {app} account"),
            [
                format!("One of your recovery codes was just used to sign in to your {app} account. {left} of them are left."),
                "If you lost your authenticator app, set it up again from your account page, which also gives you new recovery codes.".into(),
                "If you didn't do this, reset your password now and contact support: someone has your password and a recovery code.".into(),
            ],
        ),
        Notice::RecoveryCodesReplaced => (
            format!("New recovery codes for your {app} account"),
            [
                format!("New recovery codes were made for your {app} account; the old ones no longer work."),
                "Keep the new ones somewhere safe: each one signs you in once if you lose your authenticator app.".into(),
                "If you didn't do this, reset your password now and contact support.".into(),
            ],
        ),
    };
    let text = format!("{}\n\n{}\n\n{}\n", lines[0], lines[1], lines[2]);
    let html = format!(
        "<!doctype html><html><body style=\"font-family:-apple-system,Segoe UI,Roboto,sans-serif;color:#111;max-width:480px;margin:0 auto;padding:24px\">\
<p>{}</p><p>{}</p><p style=\"color:#666;font-size:13px\">{}</p></body></html>",
        escape_html(&lines[0]),
        escape_html(&lines[1]),
        escape_html(&lines[2]),
    );
    Message {
        to: to.to_owned(),
        subject: one_line(&subject),
        text,
        html,
        idempotency_key,
    }
}

#[cfg(test)]
pub(crate) fn sample_message() -> Message {
    Message {
        to: "ann@example.com".into(),
        subject: "123456 is your Acme code".into(),
        text: "Here is your code:\n\n    123456\n".into(),
        html: "<p>123456</p>".into(),
        idempotency_key: "code-abc".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_parsing() {
        let s = Sender::parse("Acme <No-Reply@Acme.test>").unwrap();
        assert_eq!(s.name.as_deref(), Some("Acme"));
        assert_eq!(s.email, "no-reply@acme.test");
        assert_eq!(s.formatted(), "Acme <no-reply@acme.test>");
        let s = Sender::parse("\"Acme, Inc.\" <a@acme.test>").unwrap();
        assert_eq!(s.name.as_deref(), Some("Acme, Inc."));
        assert_eq!(s.formatted(), "\"Acme, Inc.\" <a@acme.test>");
        let s = Sender::parse("a@acme.test").unwrap();
        assert_eq!((s.formatted(), s.name), ("a@acme.test".into(), None));
        for bad in [
            "",
            "Acme",
            "Acme <>",
            "Acme <a@acme.test",
            "A\r\nBcc: x <a@acme.test>",
        ] {
            assert!(Sender::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn notices_have_no_code() {
        for notice in [
            Notice::AccountExists,
            Notice::RegistrationPending,
            Notice::TotpEnabled,
            Notice::TotpDisabled,
            Notice::RecoveryCodeUsed { left: 9 },
            Notice::RecoveryCodesReplaced,
        ] {
            let m = notice_message("Acme", "a@example.com", notice, "k".into());
            // The one number a notice may carry: the recovery codes left.
            let text = m.text.replace("9 of them", "");
            assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
            assert!(m.text.contains("Acme") && m.subject.contains("Acme"));
        }
    }

    #[test]
    fn the_app_name_cannot_break_a_notice_subject() {
        for notice in [Notice::AccountExists, Notice::RegistrationPending] {
            let m = notice_message(
                "Acme\r\nBcc: x@evil.test",
                "a@example.com",
                notice,
                "k".into(),
            );
            assert!(!m.subject.contains(['\r', '\n']), "{:?}", m.subject);
            assert!(m.html.contains("Acme"));
        }
    }

    #[test]
    fn every_api_has_a_distinct_name() {
        let mut names: Vec<_> = APIS.iter().map(|a| a.name()).collect();
        names.dedup();
        assert_eq!(names, ["resend", "postmark", "sendgrid"]);
    }

    #[test]
    fn debug_output_hides_bodies() {
        let d = format!("{:?}", sample_message());
        assert!(!d.contains("ann@example.com") && !d.contains("123456"));
    }
}
