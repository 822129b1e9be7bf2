//! What every page shares: the document, the security headers' policy,
//! the stylesheet and the alerts.

use maud::{html, Markup, DOCTYPE};

/// The stylesheet, served at `STYLE_PATH` with the accent colour first.
pub const STYLE: &str = include_str!("style.css");
pub const STYLE_PATH: &str = "/assets/style.css";
/// The console's copy button; the page works without it.
pub const COPY_JS: &str = include_str!("copy.js");
pub const COPY_JS_PATH: &str = "/assets/copy.js";

/// The accent colour when `ACCENT_COLOR` is unset: 6.7:1 against white.
pub const DEFAULT_ACCENT: &str = "#1d4ed8";

/// The stylesheet as served: the operator's accent, then the rules.
pub fn stylesheet(accent: &str) -> String {
    format!(":root {{ --accent: {accent}; }}\n{STYLE}")
}

/// An `ACCENT_COLOR`: `#rgb` or `#rrggbb`, nothing a stylesheet could
/// read as more than a colour.
pub fn parse_accent(raw: &str) -> Result<String, String> {
    let hex = raw.strip_prefix('#').unwrap_or("");
    match (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(raw.to_ascii_lowercase()),
        false => Err(format!(
            "var ACCENT_COLOR must be a colour like #1d4ed8, not `{raw}`"
        )),
    }
}

/// The pages' Content-Security-Policy: nothing but this worker's own
/// stylesheet and script, no inline code, no framing, and forms that may
/// only post here (and to `client`: the origin of the redirect URI of the
/// OpenID Connect client the page signs in to, where a sign-in's redirect
/// goes, since Chromium applies `form-action` to a form's redirects too).
pub fn csp(client: Option<&str>, turnstile: bool) -> String {
    let form_action = match client {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    // The Turnstile widget is Cloudflare's script in Cloudflare's frame.
    let (script, frame) = match turnstile {
        true => (
            format!("'self' {TURNSTILE_ORIGIN}"),
            format!("frame-src {TURNSTILE_ORIGIN}; "),
        ),
        false => ("'self'".to_owned(), String::new()),
    };
    format!(
        "default-src 'none'; style-src 'self'; script-src {script}; img-src 'self'; {frame}\
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

pub const TURNSTILE_ORIGIN: &str = "https://challenges.cloudflare.com";

/// The Turnstile widget of a form that sends a code (`TURNSTILE_SITE_KEY`):
/// it puts its token in the form's `cf-turnstile-response` field.
pub fn turnstile_widget(site_key: Option<&str>) -> Markup {
    html! {
        @if let Some(key) = site_key {
            div .cf-turnstile data-sitekey=(key) {}
        }
    }
}

/// Cloudflare's script, on a page with a widget.
pub fn turnstile_script(site_key: Option<&str>) -> Markup {
    html! {
        @if site_key.is_some() {
            script src=(format!("{TURNSTILE_ORIGIN}/turnstile/v0/api.js")) async defer {}
        }
    }
}

/// A message shown in place: an error (`role="alert"`, read out at once)
/// or a notice (`role="status"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Error(String),
    Notice(String),
}

pub fn alert(alert: Option<&Alert>) -> Markup {
    html! {
        @match alert {
            Some(Alert::Error(text)) => div #error .alert.error role="alert" { (text) },
            Some(Alert::Notice(text)) => div #notice .alert.notice role="status" { (text) },
            None => {},
        }
    }
}

/// A whole page. `site` is the app's name, shown in the header and title.
pub fn document(site: &str, title: &str, header_extra: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site) }
                link rel="stylesheet" href=(STYLE_PATH);
            }
            body {
                header .site {
                    span .brand { (site) }
                    (header_extra)
                }
                main { (body) }
            }
        }
    }
}

/// The hidden field every form carries (`browser::check_form`).
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accent_is_a_colour_and_nothing_more() {
        assert_eq!(parse_accent("#1D4ED8"), Ok("#1d4ed8".into()));
        assert_eq!(parse_accent("#abc"), Ok("#abc".into()));
        for bad in [
            "1d4ed8",
            "#1d4ed",
            "red",
            "#1d4ed8; } body { display:none",
            "",
            "#ggg",
        ] {
            assert!(parse_accent(bad).is_err(), "{bad}");
        }
        assert!(stylesheet("#abc").starts_with(":root { --accent: #abc; }"));
    }

    #[test]
    fn the_policy_allows_no_inline_code_and_posts_only_here_and_to_the_apps() {
        let p = csp(None, false);
        assert!(p.contains("form-action 'self';"));
        let p = csp(Some("https://app.example.com"), false);
        assert!(p.contains("script-src 'self';") && !p.contains("unsafe"));
        assert!(p.contains("form-action 'self' https://app.example.com;"));
        assert!(p.contains("frame-ancestors 'none'") && p.starts_with("default-src 'none'"));
        assert!(!p.contains("frame-src"));
        let p = csp(None, true);
        assert!(p.contains("script-src 'self' https://challenges.cloudflare.com;"));
        assert!(
            p.contains("frame-src https://challenges.cloudflare.com;") && !p.contains("unsafe")
        );
    }

    #[test]
    fn values_are_escaped() {
        let page = document(
            "<b>Acme</b>",
            "x\"y",
            html! {},
            alert(Some(&Alert::Error("<script>".into()))),
        );
        let s = page.into_string();
        assert!(s.contains("&lt;b&gt;Acme&lt;/b&gt;") && s.contains("&lt;script&gt;"));
        assert!(!s.contains("<script>") && !s.contains("<b>"));
    }
}
