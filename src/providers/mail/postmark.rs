//! Postmark: `POST /email` with `X-Postmark-Server-Token`.

use super::{MailApi, Message, Sender};
use crate::providers::http_call::{names_a, HttpCall};
use serde_json::json;

pub struct Postmark;

impl MailApi for Postmark {
    fn name(&self) -> &'static str {
        "postmark"
    }

    fn default_url(&self) -> &'static str {
        "https://api.postmarkapp.com"
    }

    fn request(&self, api_url: &str, api_key: &str, from: &Sender, m: &Message) -> HttpCall {
        let body = json!({
            "From": from.formatted(),
            "To": m.to,
            "Subject": m.subject,
            "TextBody": m.text,
            "HtmlBody": m.html,
            "MessageStream": "outbound",
        });
        HttpCall {
            url: format!("{api_url}/email"),
            headers: vec![
                ("accept", "application/json".into()),
                ("content-type", "application/json".into()),
                ("x-postmark-server-token", api_key.to_owned()),
            ],
            body: body.to_string(),
        }
    }

    fn confirms(&self, body: &str) -> bool {
        names_a(body, "MessageID")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::mail::sample_message;

    #[test]
    fn request_shape() {
        let from = Sender::parse("a@acme.test").unwrap();
        let call = Postmark.request("http://pm", "pm-token", &from, &sample_message());
        assert_eq!(call.url, "http://pm/email");
        assert_eq!(call.header("x-postmark-server-token"), Some("pm-token"));
        assert_eq!(call.header("authorization"), None);
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(body["To"], "ann@example.com");
        assert_eq!(body["From"], "a@acme.test");
        assert_eq!(body["MessageStream"], "outbound");
        assert!(body["TextBody"].as_str().unwrap().contains("123456"));
    }
}
