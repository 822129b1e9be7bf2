//! Messages the service sends, and the trait any mail provider implements.

use crate::config::Config;
use crate::error::ApiResult;
use crate::purpose::Purpose;
use serde_json::json;

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
    /// Errors are `MailDeliveryFailed`; the provider's answer is logged, not returned.
    async fn send(&self, message: &Message) -> ApiResult<()>;
}

pub fn code_message(
    cfg: &Config,
    to: &str,
    purpose: Purpose,
    code: &str,
    ttl_secs: u64,
    idempotency_key: String,
) -> Message {
    let app = &cfg.app_name;
    let minutes = ttl_secs.div_ceil(60);
    let (subject, action) = match purpose {
        Purpose::VerifyEmail => (
            format!("{code} is your {app} verification code"),
            "verify your email address",
        ),
        Purpose::ResetPassword => (
            format!("{code} is your {app} password reset code"),
            "reset your password",
        ),
    };
    let text = format!(
        "Use this code to {action} for {app}:\n\n    {code}\n\nIt expires in {minutes} minutes and works once.\n\nIf you didn't ask for this, ignore this email: nothing changes without the code.\n"
    );
    let app_html = escape_html(app);
    let html = format!(
        "<!doctype html><html><body style=\"font-family:-apple-system,Segoe UI,Roboto,sans-serif;color:#111;max-width:480px;margin:0 auto;padding:24px\">\
<p>Use this code to {action} for <strong>{app_html}</strong>:</p>\
<p style=\"font-size:32px;font-weight:700;letter-spacing:6px;font-family:ui-monospace,Menlo,monospace;margin:24px 0\">{code}</p>\
<p>It expires in {minutes} minutes and works once.</p>\
<p style=\"color:#666;font-size:13px\">If you didn't ask for this, ignore this email: nothing changes without the code.</p>\
</body></html>"
    );
    Message {
        to: to.to_owned(),
        subject,
        text,
        html,
        idempotency_key,
    }
}

/// Sent instead of a code when someone registers an address that already
/// has an account: the owner learns of it, the requester learns nothing.
pub fn account_exists_message(cfg: &Config, to: &str, idempotency_key: String) -> Message {
    let app = &cfg.app_name;
    let text = format!(
        "Someone tried to create a {app} account with this email address, which already has one.\n\nIf it was you, sign in, or reset your password if you forgot it.\n\nIf you didn't ask for this, ignore this email: your account is unchanged.\n"
    );
    let html = format!(
        "<!doctype html><html><body style=\"font-family:-apple-system,Segoe UI,Roboto,sans-serif;color:#111;max-width:480px;margin:0 auto;padding:24px\">\
<p>Someone tried to create a <strong>{}</strong> account with this email address, which already has one.</p>\
<p>If it was you, sign in, or reset your password if you forgot it.</p>\
<p style=\"color:#666;font-size:13px\">If you didn't ask for this, ignore this email: your account is unchanged.</p>\
</body></html>",
        escape_html(app)
    );
    Message {
        to: to.to_owned(),
        subject: format!("Your {app} account"),
        text,
        html,
        idempotency_key,
    }
}

/// The JSON body of Resend's `POST /emails`.
pub fn resend_payload(from: &str, m: &Message) -> serde_json::Value {
    json!({ "from": from, "to": [m.to], "subject": m.subject, "text": m.text, "html": m.html })
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(app: &str) -> Config {
        Config::load(|k| match k {
            "APP_NAME" => Some(app.to_owned()),
            _ => None,
        })
        .unwrap()
    }

    fn acme_code(code: &str) -> Message {
        code_message(
            &cfg("Acme"),
            "a@example.com",
            Purpose::VerifyEmail,
            code,
            600,
            "k".into(),
        )
    }

    #[test]
    fn code_mail_has_code_lifetime_app_and_ignore_line_in_both_parts() {
        let m = acme_code("123456");
        for body in [&m.text, &m.html] {
            assert!(body.contains("123456"));
            assert!(body.contains("10 minutes"));
            assert!(body.contains("Acme"));
            assert!(body.contains("didn't ask for this"));
        }
        let r = code_message(
            &cfg("Acme"),
            "a@example.com",
            Purpose::ResetPassword,
            "654321",
            900,
            "k".into(),
        );
        assert!(r.subject.contains("password reset") && r.text.contains("15 minutes"));
    }

    #[test]
    fn app_name_is_escaped_in_html() {
        let m = code_message(
            &cfg("<b>Evil & Co</b>"),
            "a@example.com",
            Purpose::VerifyEmail,
            "1",
            60,
            "k".into(),
        );
        assert!(m.html.contains("&lt;b&gt;Evil &amp; Co&lt;/b&gt;"));
        assert!(!m.html.contains("<b>Evil"));
    }

    #[test]
    fn notice_has_no_code() {
        let m = account_exists_message(&cfg("Acme"), "a@example.com", "k".into());
        assert!(!m.text.chars().any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn resend_payload_shape() {
        let m = acme_code("123456");
        let p = resend_payload("Acme <no-reply@acme.test>", &m);
        assert_eq!(p["to"], json!(["a@example.com"]));
        assert_eq!(p["from"], "Acme <no-reply@acme.test>");
        assert!(p["html"].as_str().unwrap().contains("123456"));
    }

    #[test]
    fn debug_output_hides_bodies() {
        let m = acme_code("987654");
        let d = format!("{m:?}");
        assert!(!d.contains("a@example.com") && !d.contains("987654"));
    }
}
