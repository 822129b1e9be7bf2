//! What became of a send: the providers' reports (Twilio's status
//! callback, Resend's webhook), each checked against the provider's
//! signature and recorded in the audit trail under the send's id, and
//! `GET /v1/otp/{id}`, which reads them back for the app that sent it.

use super::Service;
use crate::domain::api_key::is_well_formed;
use crate::domain::audit::{Event, EventKind};
use crate::domain::channel::Channel;
use crate::domain::session::token_hash;
use crate::error::{ApiError, ApiResult};
use crate::ports::clock::{rfc3339, Clock};
use crate::ports::limits::Counters;
use crate::ports::store::{SendRecord, Store};
use crate::providers::mail::Mailer;
use crate::providers::text::Texter;
use crate::providers::twilio::signed_by_twilio;
use serde::Serialize;

/// A send's id: a code's, 32 lower-case hex characters.
fn is_send_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The reports worth keeping: whether the message reached the phone or
/// mailbox. The steps before (`queued`, `sent`…) are left out, so a
/// report's event is a final word.
fn final_status(status: &str) -> Option<&'static str> {
    match status {
        "delivered" => Some("delivered"),
        "undelivered" => Some("undelivered"),
        "failed" => Some("failed"),
        _ => None,
    }
}

/// `GET /v1/otp/{id}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SendReport {
    pub id: String,
    /// The channel that carried the code (`sms` after a WhatsApp fallback).
    pub channel: Option<String>,
    pub purpose: Option<String>,
    /// `pending`, `verified`, `used_up` (its guesses are spent),
    /// `expired`, or `closed` (replaced by a newer code, or cleaned up).
    pub status: &'static str,
    pub attempts_left: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// A test recipient's send: nothing went out.
    pub test: bool,
    pub delivery: Delivery,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Delivery {
    /// `sent` (the provider took it, no report yet), `delivered`,
    /// `undelivered`, `failed`, or `none` for a test recipient.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl<S: Store, K: Counters, M: Mailer, T: Texter, C: Clock> Service<'_, S, K, M, T, C> {
    /// Twilio's status callback for the send named in the URL's `send`.
    /// `url` is the one Twilio called, as `PUBLIC_BASE_URL` spells it: it
    /// signed that URL and every form field under the auth token.
    pub fn twilio_status(
        &self,
        url: &str,
        form: &[(String, String)],
        signature: Option<&str>,
    ) -> ApiResult<()> {
        let token = self.cfg.twilio_auth_token()?;
        if !signed_by_twilio(token, url, form, signature.unwrap_or_default()) {
            return Err(ApiError::InvalidSignature);
        }
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let send = url
            .split_once('?')
            .and_then(|(_, q)| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "send"))
            .map(|(_, v)| v.into_owned());
        let (Some(send), Some(status)) = (send, field("MessageStatus").and_then(final_status))
        else {
            return Ok(());
        };
        if !is_send_id(&send) {
            return Ok(());
        }
        let channel = match field("To").is_some_and(|to| to.starts_with("whatsapp:")) {
            true => Channel::Whatsapp,
            false => Channel::Sms,
        };
        let detail = field("ErrorCode")
            .filter(|c| !c.is_empty() && c.len() <= 16 && c.bytes().all(|b| b.is_ascii_digit()));
        self.record_delivery(&send, status, channel, detail);
        Ok(())
    }

    /// Resend's webhook: a Svix-signed event about one mail. The send is
    /// named by the mail's `otp_send` tag (`code-<id>`).
    pub fn resend_event(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
    ) -> ApiResult<()> {
        let secret = self.cfg.resend_webhook_secret()?;
        if !secret.verifies(id, timestamp, signatures, body, self.clock.now()) {
            return Err(ApiError::InvalidSignature);
        }
        // Read as a `Value`, whose parser the JSON routes already carry: a
        // typed struct would add a parser of its own to the wasm. Signed by
        // Resend but not what we expect: nothing to record.
        let Ok(event) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Ok(());
        };
        let status = match event["type"].as_str() {
            Some("email.delivered") => "delivered",
            Some("email.bounced") => "undelivered",
            Some("email.failed") => "failed",
            _ => return Ok(()),
        };
        let data = &event["data"];
        let send = data["tags"][crate::providers::mail::SEND_TAG]
            .as_str()
            .and_then(|v| v.strip_prefix("code-"))
            .filter(|s| is_send_id(s))
            .map(str::to_owned);
        let detail = data["bounce"]["type"]
            .as_str()
            .filter(|k| k.len() <= 32 && k.bytes().all(|b| b.is_ascii_alphanumeric()));
        if let Some(send) = send {
            self.record_delivery(&send, status, Channel::Email, detail);
        }
        Ok(())
    }

    fn record_delivery(
        &self,
        send: &str,
        status: &'static str,
        channel: Channel,
        detail: Option<&str>,
    ) {
        self.audit.record(Event {
            channel: Some(channel),
            send_id: Some(send.to_owned()),
            detail: detail.map(str::to_owned),
            ..Event::new(EventKind::CodeDelivery, status)
        });
    }

    /// `GET /v1/otp/{id}` for the app holding `bearer`: one round.
    pub async fn send_report(&self, bearer: &str, send_id: &str) -> ApiResult<SendReport> {
        if !is_well_formed(bearer) {
            return Err(ApiError::Unauthorized);
        }
        let (key, record) = match is_send_id(send_id) {
            true => self.store.send_record(&token_hash(bearer), send_id).await?,
            // No id of that shape was ever sent: only the key is looked up.
            false => (
                self.store.api_key_by_hash(&token_hash(bearer)).await?,
                SendRecord::default(),
            ),
        };
        key.ok_or(ApiError::Unauthorized)?;
        report(
            send_id,
            &record,
            self.cfg.otp_max_attempts,
            self.clock.now(),
        )
        .ok_or(ApiError::SendNotFound)
    }
}

/// The report of a send from its record; `None` when the key made no send
/// with this id (no `code_sent` of its own).
fn report(id: &str, r: &SendRecord, max_attempts: u32, now: u64) -> Option<SendReport> {
    // The trail is written after the answer: right after a send, its code
    // alone proves it.
    let sent = r
        .events
        .iter()
        .rfind(|e| e.event == "code_sent" && e.outcome == "sent");
    let (channel, purpose, test, sent_at) = match (sent, &r.code) {
        (Some(e), _) => (e.channel.clone(), e.purpose.clone(), e.test, e.at),
        (None, Some(c)) => (
            Some(c.channel.clone()),
            Some(c.purpose.clone()),
            c.test,
            now,
        ),
        (None, None) => return None,
    };
    let verified = r.events.iter().any(|e| e.event == "code_verified");
    let (status, attempts_left, expires_at) = match (verified, &r.code) {
        (true, _) => ("verified", 0, None),
        (false, Some(c)) => {
            let left = max_attempts.saturating_sub(c.attempts);
            let status = match (left, c.expires_at > now) {
                (0, _) => "used_up",
                (_, false) => "expired",
                _ => "pending",
            };
            (status, left, Some(rfc3339(c.expires_at)))
        }
        (false, None) => ("closed", 0, None),
    };
    // Reports can come twice or out of order: `delivered` is the last
    // word whenever it came; otherwise the latest report.
    let reports = || r.events.iter().filter(|e| e.event == "code_delivery");
    let report = reports()
        .find(|e| e.outcome == "delivered")
        .or_else(|| reports().next_back());
    let delivery = match (test, report) {
        (true, _) => Delivery {
            status: "none".into(),
            error_code: None,
            at: None,
        },
        (false, Some(e)) => Delivery {
            status: e.outcome.clone(),
            error_code: e.detail.clone(),
            at: Some(rfc3339(e.at)),
        },
        (false, None) => Delivery {
            status: "sent".into(),
            error_code: None,
            at: Some(rfc3339(sent_at)),
        },
    };
    Some(SendReport {
        id: id.to_owned(),
        channel,
        purpose,
        status,
        attempts_left,
        expires_at,
        test,
        delivery,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::{Alphabet, Code, CodeSpec};
    use crate::domain::purpose::AppPurpose;
    use crate::domain::recipient::Recipient;
    use crate::providers::svix::WebhookSecret;
    use crate::providers::twilio::signature;
    use crate::service::testkit::World;
    use crate::service::AppCode;
    use pollster::block_on;

    const BASE: &str = "https://otp.example.com";
    const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn world() -> World {
        World::new(&[
            ("TWILIO_ACCOUNT_SID", "AC123"),
            ("TWILIO_AUTH_TOKEN", "twilio-token"),
            ("TWILIO_FROM", "+15005550006"),
            ("PUBLIC_BASE_URL", BASE),
            ("RESEND_WEBHOOK_SECRET", WHSEC),
        ])
    }

    fn sms(to: &str) -> AppCode {
        AppCode::new(
            Recipient::parse(Channel::Sms, to).unwrap(),
            AppPurpose::parse("sign_in").unwrap(),
            CodeSpec::new(6, Alphabet::Digits).unwrap(),
            300,
        )
        .unwrap()
    }

    /// Stores the request's events, as the worker does after the answer.
    fn store_events(w: &World) {
        use crate::ports::store::AuditStore as _;
        let events = w.audit.take();
        block_on((&w.store).record_events(&events, "203.0.113.9", w.clock.0.get())).unwrap();
    }

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_signed_twilio_report_is_recorded_against_its_send_and_read_back() {
        let w = world();
        let (_, key) = w.api_key(&["sms"]);
        let svc = w.svc();
        let sent = block_on(svc.send_app_code(&key, &sms("+447700900123"))).unwrap();
        let callback = w.outbox.texts.borrow()[0].status_callback.clone().unwrap();
        assert_eq!(
            callback,
            format!("{BASE}/v1/hooks/twilio/status?send={}", sent.id)
        );
        store_events(&w);
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        assert_eq!((report.status, report.attempts_left), ("pending", 5));
        assert_eq!(report.delivery.status, "sent");
        assert_eq!(report.channel.as_deref(), Some("sms"));

        let fields = form(&[
            ("MessageSid", "SM1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
            ("To", "+447700900123"),
        ]);
        let good = signature("twilio-token", &callback, &fields);
        // A forged or replayed-elsewhere callback changes nothing.
        for (url, sig) in [
            (callback.as_str(), "bm9wZQ=="),
            (callback.as_str(), ""),
            ("https://evil.example/v1/hooks/twilio/status", good.as_str()),
        ] {
            assert_eq!(
                svc.twilio_status(url, &fields, Some(sig)).unwrap_err(),
                ApiError::InvalidSignature
            );
        }
        assert!(w.audit.take().is_empty());
        // Steps before the final word are not recorded.
        let queued = form(&[("MessageSid", "SM1"), ("MessageStatus", "sent")]);
        let sig = signature("twilio-token", &callback, &queued);
        svc.twilio_status(&callback, &queued, Some(&sig)).unwrap();
        assert!(w.audit.take().is_empty());
        svc.twilio_status(&callback, &fields, Some(&good)).unwrap();
        store_events(&w);
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        assert_eq!(report.delivery.status, "undelivered");
        assert_eq!(report.delivery.error_code.as_deref(), Some("30003"));

        // Another key never sees this send; an unknown id is 404.
        let (_, other) = w.api_key(&["sms"]);
        assert_eq!(
            block_on(svc.send_report(&other, &sent.id)).unwrap_err(),
            ApiError::SendNotFound
        );
        assert_eq!(
            block_on(svc.send_report(&key, "nope")).unwrap_err(),
            ApiError::SendNotFound
        );
        assert_eq!(
            block_on(svc.send_report("otpk_wrong", &sent.id)).unwrap_err(),
            ApiError::Unauthorized
        );

        // Verified: its status says so, and it takes no more guesses.
        let code = w.last_text_code();
        let req = sms("+447700900123");
        block_on(svc.verify_app_code(&key, &req.to, &req.purpose, &code)).unwrap();
        store_events(&w);
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        assert_eq!((report.status, report.attempts_left), ("verified", 0));
    }

    #[test]
    fn guesses_and_expiry_show_in_the_report() {
        let w = world();
        let (_, key) = w.api_key(&["sms"]);
        let svc = w.svc();
        let req = sms("+447700900123");
        let sent = block_on(svc.send_app_code(&key, &req)).unwrap();
        let wrong = Code::parse_any("000000").unwrap();
        let _ = block_on(svc.verify_app_code(&key, &req.to, &req.purpose, &wrong));
        store_events(&w);
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        let left = if w.last_text_code().expose() == "000000" {
            5
        } else {
            4
        };
        assert_eq!(report.attempts_left, left);
        w.advance(301);
        assert_eq!(
            block_on(svc.send_report(&key, &sent.id)).unwrap().status,
            "expired"
        );
        // A newer code closes the older send.
        w.advance(3_600);
        block_on(svc.send_app_code(&key, &req)).unwrap();
        store_events(&w);
        assert_eq!(
            block_on(svc.send_report(&key, &sent.id)).unwrap().status,
            "closed"
        );
    }

    #[test]
    fn resend_reports_are_svix_signed_and_name_their_send_by_tag() {
        let w = world();
        let svc = w.svc();
        let secret = WebhookSecret::parse(WHSEC).unwrap();
        let now = w.clock.0.get().to_string();
        let id = "a".repeat(32);
        let body = format!(
            r#"{{"type":"email.bounced","created_at":"x","data":{{"email_id":"e1","tags":{{"otp_send":"code-{id}"}},"bounce":{{"type":"Permanent"}}}}}}"#
        );
        let sig = secret.header("msg_1", &now, body.as_bytes());
        assert_eq!(
            svc.resend_event("msg_1", &now, "v1,AAAA", body.as_bytes())
                .unwrap_err(),
            ApiError::InvalidSignature
        );
        let stale = (w.clock.0.get() - 301).to_string();
        let stale_sig = secret.header("msg_1", &stale, body.as_bytes());
        assert_eq!(
            svc.resend_event("msg_1", &stale, &stale_sig, body.as_bytes())
                .unwrap_err(),
            ApiError::InvalidSignature
        );
        svc.resend_event("msg_1", &now, &sig, body.as_bytes())
            .unwrap();
        let events = w.audit.take();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::CodeDelivery);
        assert_eq!(events[0].outcome, "undelivered");
        assert_eq!(events[0].send_id.as_deref(), Some(id.as_str()));
        assert_eq!(events[0].detail.as_deref(), Some("Permanent"));
        // Without the secret, the webhook is off: 503 naming it.
        let off = World::new(&[]);
        let e = off
            .svc()
            .resend_event("msg_1", &now, &sig, body.as_bytes())
            .unwrap_err();
        assert!(matches!(&e, ApiError::Unavailable(d) if d.contains("RESEND_WEBHOOK_SECRET")));
    }

    #[test]
    fn a_send_is_found_before_its_trail_is_written_and_delivered_is_the_last_word() {
        let w = world();
        let (_, key) = w.api_key(&["sms"]);
        let svc = w.svc();
        let sent = block_on(svc.send_app_code(&key, &sms("+447700900123"))).unwrap();
        // The trail is written after the answer; the code proves the send.
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        assert_eq!(
            (report.status, report.channel.as_deref()),
            ("pending", Some("sms"))
        );
        store_events(&w);
        let callback = w.outbox.texts.borrow()[0].status_callback.clone().unwrap();
        for status in ["delivered", "undelivered"] {
            let fields = form(&[("MessageStatus", status), ("To", "+447700900123")]);
            let sig = signature("twilio-token", &callback, &fields);
            svc.twilio_status(&callback, &fields, Some(&sig)).unwrap();
        }
        store_events(&w);
        // A late or replayed report does not take `delivered` back.
        let report = block_on(svc.send_report(&key, &sent.id)).unwrap();
        assert_eq!(report.delivery.status, "delivered");
    }
}
