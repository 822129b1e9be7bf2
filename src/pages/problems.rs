//! A page per problem code: what a problem document's `type` points at
//! (`/problems/invalid-code`), so a developer who meets one can read what
//! it means and what to do.

use super::layout::document;
use maud::{html, Markup};

/// Every problem code, its title (as `ApiError::title` gives it) and what
/// to do about it. A test checks this list against the error enum.
pub const PROBLEMS: [(&str, &str, &str); 31] = [
    ("invalid_request", "Invalid request", "A field or query parameter is missing or malformed. The detail names it; fix the request and send it again."),
    ("invalid_code", "Invalid code", "The code does not match, or no code is pending for this address (never sent, already used, or replaced by a newer one). When the code was simply wrong, `attempts_left` says how many guesses it still takes."),
    ("expired_code", "Expired code", "The code was right but is past its lifetime. Ask for a new one. Hand-off codes live 60 seconds."),
    ("too_many_attempts", "Too many attempts", "The code took its last wrong guess and can no longer be used, even with the right value. Ask for a new code; resending does not give a code more guesses."),
    ("rate_limited", "Rate limited", "A send or request cap was reached. Wait the seconds in the Retry-After header, then try again."),
    ("invalid_credentials", "Invalid credentials", "The email or password is wrong, or the address is not verified yet. The answer is the same for an unknown, an unverified and a verified address, so it tells nobody which addresses have accounts. The owner of an unverified account who used the right password gets a fresh verification code by mail."),
    ("unauthorized", "Unauthorized", "The bearer token, API key or admin token is missing, wrong, expired or revoked."),
    ("login_locked", "Password sign-in locked", "Too many failed password sign-ins for this address, from anywhere: password sign-in is locked for the seconds in the Retry-After header, whatever the password, for unknown addresses alike. Sign-in with an emailed code (/v1/login/code) and password reset stay open. Each further failure after a lock doubles the next one, up to a day."),
    ("channel_not_allowed", "Channel not allowed", "This API key may not send on the channel asked for. An operator can create a key with that channel."),
    ("not_found", "Not found", "No route has this path, no API key has this id, the key has no such test recipient, or made no send with this id."),
    ("origin_not_allowed", "Origin not allowed", "A browser on this origin may not call the API. The operator lists allowed origins in CORS_ALLOWED_ORIGINS."),
    ("method_not_allowed", "Method not allowed", "The path exists but not with this method. The Allow header lists the methods it takes."),
    ("unsupported_media_type", "Unsupported media type", "The request body must be JSON, sent with Content-Type: application/json."),
    ("payload_too_large", "Payload too large", "The request body is larger than the service accepts. Send only the documented fields."),
    ("mail_delivery_failed", "Mail delivery failed", "The mail provider did not accept the message. Nothing was changed that blocks a retry."),
    ("sms_delivery_failed", "Message delivery failed", "Twilio did not accept the SMS. Nothing was changed that blocks a retry; the reason is in the service's log."),
    ("whatsapp_delivery_failed", "Message delivery failed", "Twilio did not accept the WhatsApp message. Nothing was changed that blocks a retry; the reason is in the service's log."),
    ("unavailable", "Service unavailable", "A secret, binding or the database schema is missing, or storage did not answer. The detail names a configuration problem; for storage, retry after the Retry-After seconds."),
    ("internal", "Internal error", "A bug or a platform failure. The request id in the X-Request-Id header finds it in the log."),
    ("country_not_allowed", "Country not allowed", "SMS and WhatsApp codes may go only to the countries the operator lists in SMS_ALLOWED_COUNTRIES, found from the number's calling code. Nothing was sent or counted."),
    ("turnstile_failed", "Turnstile check failed", "With TURNSTILE_SECRET set, sign-up, resend, password reset and code sign-in (and /v1/otp/send for keys marked turnstile_required) need a `turnstile_token` from the Turnstile widget. It was missing, or Cloudflare refused it: tokens work once and for 300 seconds. Get a fresh token and send again."),
    ("invalid_signature", "Invalid signature", "A provider's callback (Twilio's status callback, Resend's webhook) came without a valid signature. Check that PUBLIC_BASE_URL is exactly the URL the provider calls, and that TWILIO_AUTH_TOKEN or RESEND_WEBHOOK_SECRET is the provider's."),
    ("test_recipients_disabled", "Test recipients disabled", "Test recipients (fixed codes, nothing sent) are off when ENVIRONMENT=production, unless the operator sets ALLOW_TEST_RECIPIENTS=true."),
    ("too_many_test_recipients", "Too many test recipients", "An API key may have at most 50 test recipients. Remove one first."),
    ("mfa_required", "Second step required", "The password or emailed code was right, and the account has an authenticator app. No session was made: send `mfa_token` from this answer with a code from the app, or a recovery code, to POST /v1/login/mfa within 5 minutes. A wrong password never gets this answer."),
    ("invalid_mfa_token", "Invalid MFA token", "The `mfa_token` is unknown, older than 5 minutes, already used, used up by wrong codes, or was issued to the hosted pages rather than the API. Sign in again from the first step."),
    ("second_factor_locked", "Second step locked", "Too many wrong second-step codes for this account, from any sign-in: its second step is locked for the seconds in the Retry-After header, doubling with each further failure up to a day. Only someone who had the first factor could cause it."),
    ("fresh_sign_in_required", "Fresh sign-in required", "Setting up an authenticator app takes a session signed in within the last 10 minutes (by password, emailed code, or both factors), so that a session token someone took long ago cannot put their own app on the account. Sign in again and use the new session."),
    ("totp_already_enabled", "Authenticator app already on", "The account already has a confirmed authenticator app. Turn it off (DELETE /v1/me/totp with a code) before setting up another."),
    ("totp_not_enabled", "No authenticator app", "There is no pending authenticator app to confirm (start with POST /v1/me/totp), or no confirmed one to turn off or make recovery codes for."),
    ("csrf_failed", "Form refused", "A form of the hosted pages came from another site, or without this browser's form token. Nothing was done: reload the page and submit it again."),
];

/// The page for the code in `slug` (`invalid-code`), if there is one.
pub fn page(site: &str, slug: &str) -> Option<Markup> {
    let (code, title, text) = PROBLEMS
        .iter()
        .find(|(code, _, _)| code.replace('_', "-") == slug)?;
    Some(document(
        site,
        title,
        maud::html! {},
        html! {
            h1 { (title) }
            p { (text) }
            p .hint { "Problem code: " code { (code) } }
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    #[test]
    fn every_problem_code_has_a_page_with_its_title() {
        // OAuth's errors are answered as its RFCs say, with no page.
        let examples: Vec<ApiError> = ApiError::examples()
            .into_iter()
            .filter(|e| !matches!(e, ApiError::OAuth(_)))
            .collect();
        for e in &examples {
            let found = PROBLEMS.iter().find(|(code, _, _)| *code == e.code());
            assert_eq!(found.map(|(_, t, _)| *t), Some(e.title()), "{}", e.code());
            let slug = e
                .problem("")
                .type_uri
                .trim_start_matches("/problems/")
                .to_owned();
            assert!(page("Acme", &slug).is_some(), "{slug}");
        }
        for (code, _, _) in PROBLEMS {
            assert!(
                examples.iter().any(|e| e.code() == code),
                "{code} has no error"
            );
        }
        assert!(page("Acme", "no-such-problem").is_none());
        assert!(page("Acme", "invalid_code").is_none());
    }
}
