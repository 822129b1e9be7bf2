//! The words of code messages: built-in defaults per purpose and language
//! (`locale`), overridable by the `TEMPLATES` var per purpose and per
//! language, with `{{code}}`, `{{minutes}}`, `{{app_name}}` and
//! `{{purpose}}` placeholders. Values are HTML-escaped in HTML parts.

use crate::domain::purpose::{AppPurpose, Purpose};
use crate::providers::locale::Locale;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const PLACEHOLDERS: [&str; 4] = ["code", "minutes", "app_name", "purpose"];
const MAX_TEMPLATE_BYTES: usize = 10_000;

/// Overrides for one purpose; a part left out keeps its default. The
/// top-level parts apply in every language; `locales` (keyed by language,
/// `fr`) replace them for that language, and may add languages the
/// service has no built-in words for.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub sms: Option<String>,
    #[serde(default)]
    pub locales: BTreeMap<String, Parts>,
}

/// The parts of one language's overrides.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Parts {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub sms: Option<String>,
}

/// Which part of a message.
#[derive(Debug, Clone, Copy)]
enum Part {
    Subject,
    Text,
    Html,
    Sms,
}

impl Parts {
    fn get(&self, part: Part) -> Option<&String> {
        match part {
            Part::Subject => self.subject.as_ref(),
            Part::Text => self.text.as_ref(),
            Part::Html => self.html.as_ref(),
            Part::Sms => self.sms.as_ref(),
        }
    }

    fn check(&self, at: &str) -> Result<(), String> {
        let parts = [
            ("subject", &self.subject, false),
            ("text", &self.text, true),
            ("html", &self.html, true),
            ("sms", &self.sms, true),
        ];
        for (part, template, needs_code) in parts {
            if let Some(t) = template {
                check(t, needs_code).map_err(|e| format!("var TEMPLATES: {at}.{part}: {e}"))?;
            }
        }
        Ok(())
    }
}

impl Overrides {
    fn parts(&self) -> Parts {
        Parts {
            subject: self.subject.clone(),
            text: self.text.clone(),
            html: self.html.clone(),
            sms: self.sms.clone(),
        }
    }

    /// The override of `part` in `language`, else the one for every language.
    fn part(&self, part: Part, language: &str) -> Option<&String> {
        self.locales
            .get(language)
            .and_then(|p| p.get(part))
            .or(match part {
                Part::Subject => self.subject.as_ref(),
                Part::Text => self.text.as_ref(),
                Part::Html => self.html.as_ref(),
                Part::Sms => self.sms.as_ref(),
            })
    }
}

/// Operator overrides keyed by purpose. `default` covers app purposes that
/// have no entry of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Templates(BTreeMap<String, Overrides>);

/// Which messages a code belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Kind<'a> {
    Account(Purpose),
    App(&'a AppPurpose),
}

impl Kind<'_> {
    fn purpose(&self) -> &str {
        match self {
            Kind::Account(p) => p.as_str(),
            Kind::App(p) => p.as_str(),
        }
    }
}

pub struct Values<'a> {
    pub code: &'a str,
    pub ttl_secs: u64,
    pub app_name: &'a str,
    /// The language asked for: a lower-case primary language subtag
    /// (`pt` for `pt-BR`), `en` when nobody asked.
    pub language: &'a str,
}

impl Values<'_> {
    /// The built-in words: the language's, else English.
    fn locale(&self) -> Locale {
        Locale::ALL
            .into_iter()
            .find(|l| l.tag() == self.language)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Templates {
    /// Parses and checks the `TEMPLATES` JSON: unknown purposes' names,
    /// unknown placeholders, and message bodies without `{{code}}` are refused.
    pub fn parse(json: &str) -> Result<Self, String> {
        let map: BTreeMap<String, Overrides> = serde_json::from_str(json).map_err(|e| {
            format!("var TEMPLATES must be a JSON object of purpose -> {{subject, text, html, sms}}: {e}")
        })?;
        for (purpose, o) in &map {
            if purpose != "default" && AppPurpose::parse(purpose).is_err() {
                return Err(format!(
                    "var TEMPLATES: `{purpose}` is not a purpose (a-z, 0-9, _; up to 32)"
                ));
            }
            o.parts().check(purpose)?;
            for (language, parts) in &o.locales {
                let ok = (2..=3).contains(&language.len())
                    && language.bytes().all(|b| b.is_ascii_lowercase());
                if !ok {
                    return Err(format!(
                        "var TEMPLATES: {purpose}.locales: `{language}` is not a language (2 or 3 lower-case letters, like `fr`)"
                    ));
                }
                parts.check(&format!("{purpose}.locales.{language}"))?;
            }
        }
        Ok(Self(map))
    }

    fn overrides(&self, kind: Kind<'_>) -> Option<&Overrides> {
        let own = self.0.get(kind.purpose());
        match kind {
            Kind::Account(_) => own,
            Kind::App(_) => own.or_else(|| self.0.get("default")),
        }
    }

    pub fn mail(&self, kind: Kind<'_>, v: &Values<'_>) -> RenderedMail {
        let o = self.overrides(kind);
        let part = |p: Part| o.and_then(|o| o.part(p, v.language)).cloned();
        let minutes = v.ttl_secs.div_ceil(60);
        let locale = v.locale();
        let words = locale.texts();
        let (subject, intro) = builtin(kind, locale);
        let expiry = match locale.is_one(minutes) {
            true => words.expiry_one,
            false => words.expiry_other,
        };
        let ignore = words.ignore;
        let text = part(Part::Text)
            .unwrap_or_else(|| format!("{intro}\n\n    {{{{code}}}}\n\n{expiry}\n\n{ignore}\n"));
        let html = part(Part::Html).unwrap_or_else(|| {
            let intro = intro.replace("{{app_name}}", "<strong>{{app_name}}</strong>");
            let lang = locale.tag();
            format!(
                "<!doctype html><html lang=\"{lang}\"><body style=\"font-family:-apple-system,Segoe UI,Roboto,sans-serif;color:#111;max-width:480px;margin:0 auto;padding:24px\">\
<p>{intro}</p>\
<p style=\"font-size:32px;font-weight:700;letter-spacing:6px;font-family:ui-monospace,Menlo,monospace;margin:24px 0\">{{{{code}}}}</p>\
<p>{expiry}</p>\
<p style=\"color:#666;font-size:13px\">{ignore}</p>\
</body></html>"
            )
        });
        let subject = part(Part::Subject).unwrap_or_else(|| subject.to_owned());
        let fill = |t: &str, html: bool| render(t, kind.purpose(), minutes, v, html);
        RenderedMail {
            subject: one_line(&fill(&subject, false)),
            text: fill(&text, false),
            html: fill(&html, true),
        }
    }

    /// The body of an SMS or WhatsApp message.
    pub fn text_message(&self, kind: Kind<'_>, v: &Values<'_>) -> String {
        let minutes = v.ttl_secs.div_ceil(60);
        let locale = v.locale();
        let default = match locale.is_one(minutes) {
            true => locale.texts().sms_one,
            false => locale.texts().sms_other,
        };
        let template = self
            .overrides(kind)
            .and_then(|o| o.part(Part::Sms, v.language))
            .map_or(default, String::as_str);
        render(template, kind.purpose(), minutes, v, false)
    }
}

/// A mail header's value: headers cannot hold line breaks, whatever a
/// template or a setting says.
pub fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// The default subject and opening line of each kind of code mail.
fn builtin(kind: Kind<'_>, locale: Locale) -> (&'static str, &'static str) {
    let t = locale.texts();
    match kind {
        Kind::Account(Purpose::VerifyEmail) => (t.verify_subject, t.verify_intro),
        Kind::Account(Purpose::ResetPassword) => (t.reset_subject, t.reset_intro),
        Kind::Account(Purpose::Login) => (t.login_subject, t.login_intro),
        Kind::App(_) => (t.app_subject, t.app_intro),
    }
}

fn check(template: &str, needs_code: bool) -> Result<(), String> {
    if template.len() > MAX_TEMPLATE_BYTES {
        return Err(format!("longer than {MAX_TEMPLATE_BYTES} bytes"));
    }
    let mut has_code = false;
    for name in placeholders(template) {
        match name {
            Ok("code") => has_code = true,
            Ok(n) if PLACEHOLDERS.contains(&n) => {}
            Ok(n) => {
                return Err(format!(
                    "unknown placeholder {{{{{n}}}}} (known: code, minutes, app_name, purpose)"
                ))
            }
            Err(()) => return Err("a `{{` is never closed".into()),
        }
    }
    if needs_code && !has_code {
        return Err("must contain {{code}}".into());
    }
    Ok(())
}

/// The names inside `{{ }}`, trimmed.
fn placeholders(t: &str) -> impl Iterator<Item = Result<&str, ()>> {
    t.split("{{")
        .skip(1)
        .map(|rest| match rest.split_once("}}") {
            Some((name, _)) => Ok(name.trim()),
            None => Err(()),
        })
}

fn render(template: &str, purpose: &str, minutes: u64, v: &Values<'_>, html: bool) -> String {
    let minutes = minutes.to_string();
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let value = match after[..end].trim() {
            "code" => v.code,
            "minutes" => &minutes,
            "app_name" => v.app_name,
            "purpose" => purpose,
            // `parse` refused unknown names; a default never has one.
            _ => "",
        };
        match html {
            true => out.push_str(&escape_html(value)),
            false => out.push_str(value),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
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

    fn values(app: &str) -> Values<'_> {
        Values {
            code: "123456",
            ttl_secs: 600,
            app_name: app,
            language: "en",
        }
    }

    #[test]
    fn defaults_carry_code_lifetime_app_and_ignore_line() {
        let t = Templates::default();
        for p in [Purpose::VerifyEmail, Purpose::ResetPassword, Purpose::Login] {
            let m = t.mail(Kind::Account(p), &values("Acme"));
            assert!(m.subject.starts_with("123456 is your Acme"));
            for body in [&m.text, &m.html] {
                assert!(body.contains("123456") && body.contains("10 minutes"));
                assert!(body.contains("Acme") && body.contains("didn't ask for this"));
            }
            assert!(
                m.text.contains("\n    123456\n"),
                "the code stands on its own line"
            );
        }
        let sms = t.text_message(Kind::Account(Purpose::Login), &values("Acme"));
        assert_eq!(
            sms,
            "123456 is your Acme code. It expires in 10 minutes. Don't share it."
        );
    }

    #[test]
    fn one_minute_is_singular() {
        let v = Values {
            ttl_secs: 60,
            ..values("Acme")
        };
        let t = Templates::default();
        let p = AppPurpose::parse("x").unwrap();
        assert!(t.mail(Kind::App(&p), &v).text.contains("in 1 minute and"));
        assert!(t.text_message(Kind::App(&p), &v).contains("in 1 minute."));
    }

    #[test]
    fn overrides_replace_only_the_parts_they_set() {
        let t = Templates::parse(
            r#"{"login": {"subject": "Sign in to {{app_name}}", "sms": "{{ code }} for {{purpose}}"},
                "default": {"text": "Code {{code}} ({{minutes}} min) for {{purpose}}"}}"#,
        )
        .unwrap();
        let m = t.mail(Kind::Account(Purpose::Login), &values("Acme"));
        assert_eq!(m.subject, "Sign in to Acme");
        assert!(m.text.contains("sign in to Acme"), "text keeps its default");
        let sms = t.text_message(Kind::Account(Purpose::Login), &values("Acme"));
        assert_eq!(sms, "123456 for login");
        let p = AppPurpose::parse("confirm_payment").unwrap();
        let m = t.mail(Kind::App(&p), &values("Acme"));
        assert_eq!(m.text, "Code 123456 (10 min) for confirm_payment");
        // `default` is for app purposes only.
        let m = t.mail(Kind::Account(Purpose::VerifyEmail), &values("Acme"));
        assert!(m.text.starts_with("Use this code to verify"));
    }

    #[test]
    fn overrides_per_language_win_over_the_ones_for_every_language() {
        let t = Templates::parse(
            r#"{"login": {"sms": "{{code}} login", "locales": {
                  "fr": {"sms": "{{code}} connexion"},
                  "it": {"subject": "{{code}} è il tuo codice"}}}}"#,
        )
        .unwrap();
        let kind = Kind::Account(Purpose::Login);
        let v = |language| Values {
            language,
            ..values("Acme")
        };
        assert_eq!(t.text_message(kind, &v("fr")), "123456 connexion");
        assert_eq!(t.text_message(kind, &v("de")), "123456 login");
        // A language without built-in words: its own override, English
        // built-ins for the rest.
        let m = t.mail(kind, &v("it"));
        assert_eq!(m.subject, "123456 è il tuo codice");
        assert!(m.text.starts_with("Use this code to sign in"));
        // Built-in words in the language when nothing overrides them.
        let m = t.mail(kind, &v("es"));
        assert!(
            m.subject.starts_with("123456") && m.text.contains("10 minutos"),
            "{}",
            m.text
        );
        for (json, why) in [
            (r#"{"login": {"locales": {"FR": {}}}}"#, "is not a language"),
            (
                r#"{"login": {"locales": {"fr": {"sms": "no code"}}}}"#,
                "login.locales.fr.sms",
            ),
            (
                r#"{"login": {"locales": {"fr": {"body": "{{code}}"}}}}"#,
                "unknown field",
            ),
        ] {
            let e = Templates::parse(json).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
    }

    #[test]
    fn values_are_escaped_in_html_and_subjects_stay_one_line() {
        let t = Templates::parse(r#"{"default": {"subject": "{{app_name}}\nBcc: x"}}"#).unwrap();
        let p = AppPurpose::parse("x").unwrap();
        let m = t.mail(Kind::App(&p), &values("<b>Evil & Co</b>"));
        assert!(m.html.contains("&lt;b&gt;Evil &amp; Co&lt;/b&gt;"));
        assert!(!m.html.contains("<b>Evil"));
        assert!(
            m.text.contains("<b>Evil & Co</b>"),
            "plain text is not escaped"
        );
        assert!(!m.subject.contains('\n'));
    }

    #[test]
    fn bad_templates_are_refused_with_the_reason() {
        for (json, why) in [
            ("[]", "JSON object"),
            (
                r#"{"login": {"text": "no code here"}}"#,
                "login.text: must contain {{code}}",
            ),
            (
                r#"{"login": {"sms": "{{code}} {{secret}}"}}"#,
                "unknown placeholder {{secret}}",
            ),
            (r#"{"login": {"html": "{{code"}}"#, "never closed"),
            (r#"{"Bad Purpose": {}}"#, "not a purpose"),
            (r#"{"login": {"body": "{{code}}"}}"#, "unknown field"),
        ] {
            let e = Templates::parse(json).unwrap_err();
            assert!(e.contains(why), "{json}: {e}");
        }
        assert!(Templates::parse(r#"{"login": {"subject": "Your code"}}"#).is_ok());
    }
}
