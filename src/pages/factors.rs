//! The pages of second factors: a sign-in's second step, setting up an
//! authenticator app (its QR code drawn here as SVG: no script, no image
//! request), the recovery codes shown once, and the account page's section.

use super::layout::{alert, csrf_field, document, Alert};
use crate::ports::store::FactorSummary;
use maud::{html, Markup, PreEscaped};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// The second step's form posts here, the ticket in a hidden field.
pub const MFA_PATH: &str = "/auth/mfa";
pub const TOTP_SETUP_PATH: &str = "/auth/account/totp";
pub const TOTP_CONFIRM_PATH: &str = "/auth/account/totp/confirm";
pub const TOTP_OFF_PATH: &str = "/auth/account/totp/off";
pub const RECOVERY_CODES_PATH: &str = "/auth/account/recovery-codes";

fn app_code_field(label: &str, hint: &str) -> Markup {
    html! {
        label for="code" { (label) }
        input #code type="text" name="code" autocomplete="one-time-code" inputmode="numeric"
            required maxlength="16" autocapitalize="off" spellcheck="false"
            aria-describedby="code-hint";
        p .hint #code-hint { (hint) }
    }
}

/// A sign-in's second step: the first factor was right.
pub fn second_step(
    site: &str,
    csrf: &str,
    action: &str,
    mfa_token: &str,
    alert_: Option<&Alert>,
    continues_to: Option<&str>,
) -> Markup {
    let body = html! {
        h1 { "Two-step sign-in" }
        @if let Some(app) = continues_to {
            p #continues-to { "to continue to " strong { (app) } }
        }
        (alert(alert_))
        p { "Enter the 6-digit code your authenticator app shows for " (site) "." }
        form #second-step method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="mfa_token" value=(mfa_token);
            (app_code_field("Code", "Lost the app? Enter one of your recovery codes instead (xxxxx-xxxxx)."))
            button type="submit" { "Continue" }
        }
        p .links { a href="/auth/sign-in" { "Start over" } }
    };
    document(site, "Two-step sign-in", html! {}, body)
}

/// The otpauth URI as a QR code, SVG, with no XML declaration, inside an
/// element that names it for screen readers.
pub fn qr_svg(uri: &str) -> Markup {
    let svg = match QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M) {
        Ok(code) => code
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        // An URI too long for a QR code: the key below still works.
        Err(_) => String::new(),
    };
    let svg = svg
        .split_once("?>")
        .map_or(svg.as_str(), |(_, s)| s)
        .to_owned();
    html! {
        div .qr role="img" aria-label="QR code of the setup key for your authenticator app" {
            (PreEscaped(svg))
        }
    }
}

/// What the setup page shows: the pending secret, until confirmed.
pub struct TotpSetupView<'a> {
    pub site: &'a str,
    pub csrf: &'a str,
    pub secret: &'a str,
    pub otpauth_uri: &'a str,
    pub alert: Option<Alert>,
}

/// Setting up an authenticator app: scan or type the key, then confirm
/// with the first code.
pub fn totp_setup(v: &TotpSetupView<'_>) -> Markup {
    let body = html! {
        h1 { "Set up an authenticator app" }
        (alert(v.alert.as_ref()))
        ol .steps {
            li { "Open your authenticator app (Google Authenticator, 1Password, Authy, Microsoft Authenticator…) and add an account." }
            li { "Scan this QR code, or type the setup key below." }
            li { "Enter the 6-digit code the app shows." }
        }
        (qr_svg(v.otpauth_uri))
        dl .facts {
            dt { "Setup key" }
            dd { code #totp-secret { (v.secret) } }
        }
        p .hint { a #otpauth-link href=(v.otpauth_uri) { "Open in an authenticator app on this device" } }
        form #totp-confirm method="post" action=(TOTP_CONFIRM_PATH) {
            (csrf_field(v.csrf))
            (app_code_field("Code from the app", "Six digits; a new one every 30 seconds."))
            button type="submit" { "Turn on" }
        }
        p .links { a href="/auth/account" { "Cancel" } }
    };
    document(v.site, "Set up an authenticator app", html! {}, body)
}

/// The recovery codes, shown this once.
pub fn recovery_codes(site: &str, codes: &[String]) -> Markup {
    let body = html! {
        h1 { "Save your recovery codes" }
        p { "If you lose your authenticator app, each of these codes signs you in once. Store them somewhere safe, like a password manager: they are not shown again." }
        ul #recovery-codes .codes {
            @for code in codes {
                li { code { (code) } }
            }
        }
        p .links { a #done href="/auth/account" { "I have saved them" } }
    };
    document(site, "Recovery codes", html! {}, body)
}

/// The account page's section on second factors.
pub fn account_section(csrf: &str, factors: &FactorSummary) -> Markup {
    html! {
        section #two-step aria-labelledby="two-step-heading" {
            h2 #two-step-heading { "Two-step sign-in" }
            @if factors.totp {
                p #totp-status { "On: an authenticator app gives the second step. "
                    (factors.recovery_codes_left) " recovery codes left." }
                form #recovery-codes-new method="post" action=(RECOVERY_CODES_PATH) {
                    (csrf_field(csrf))
                    label for="new-codes-code" { "Code from the app" }
                    input #new-codes-code type="text" name="code" autocomplete="one-time-code"
                        inputmode="numeric" required maxlength="16";
                    button .secondary type="submit" { "Make new recovery codes" }
                }
                form #totp-off method="post" action=(TOTP_OFF_PATH) {
                    (csrf_field(csrf))
                    label for="off-code" { "Code from the app, or a recovery code" }
                    input #off-code type="text" name="code" autocomplete="one-time-code"
                        required maxlength="16";
                    button .secondary type="submit" { "Turn off two-step sign-in" }
                }
            } @else {
                p #totp-status { "Off. Add an authenticator app, so that a password alone does not sign in." }
                form #totp-setup method="post" action=(TOTP_SETUP_PATH) {
                    (csrf_field(csrf))
                    button type="submit" { "Set up an authenticator app" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_inline_svg_without_a_declaration() {
        let m = qr_svg(
            "otpauth://totp/Acme:a%40b.co?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme",
        )
        .into_string();
        assert!(
            m.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{m}"
        );
        assert!(!m.contains("<?xml"));
        assert!(m.contains("role=\"img\"") && m.contains("aria-label"));
        // The secret is drawn, never written out in the SVG.
        assert!(!m.contains("GEZDGNBV"));
    }
}
