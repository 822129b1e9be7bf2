//! Resend: `POST /emails` with a bearer key.

use super::{MailApi, Message, Sender};
use crate::providers::http_call::{names_a, HttpCall};
use serde_json::json;

pub struct Resend;

impl MailApi for Resend {
    fn name(&self) -> &'static str {
        "resend"
    }

    fn default_url(&self) -> &'static str {
        "https://api.resend.com"
    }

    fn request(&self, api_url: &str, api_key: &str, from: &Sender, m: &Message) -> HttpCall {
        let body = json!({
            "from": from.formatted(),
            "to": [m.to],
            "subject": m.subject,
            "text": m.text,
            "html": m.html,
            "tags": [{"name": super::SEND_TAG, "value": m.idempotency_key}],
        });
        HttpCall {
            url: format!("{api_url}/emails"),
            headers: vec![
                ("content-type", "application/json".into()),
                ("authorization", format!("Bearer {api_key}")),
                ("idempotency-key", m.idempotency_key.clone()),
            ],
            body: body.to_string(),
        }
    }

    fn confirms(&self, body: &str) -> bool {
        names_a(body, "id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::mail::sample_message;

    #[test]
    fn request_shape() {
        let from = Sender::parse("Acme <no-reply@acme.test>").unwrap();
        let call = Resend.request("https://api.resend.com", "re_key", &from, &sample_message());
        assert_eq!(call.url, "https://api.resend.com/emails");
        assert_eq!(call.header("authorization"), Some("Bearer re_key"));
        assert_eq!(call.header("idempotency-key"), Some("code-abc"));
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(body["to"], json!(["ann@example.com"]));
        assert_eq!(body["from"], "Acme <no-reply@acme.test>");
        assert!(body["text"].as_str().unwrap().contains("123456"));
        assert!(body["html"].as_str().unwrap().contains("123456"));
    }
}
