//! SendGrid: `POST /v3/mail/send` with a bearer key.

use super::{MailApi, Message, Sender};
use crate::providers::http_call::HttpCall;
use serde_json::json;

pub struct SendGrid;

impl MailApi for SendGrid {
    fn name(&self) -> &'static str {
        "sendgrid"
    }

    fn default_url(&self) -> &'static str {
        "https://api.sendgrid.com"
    }

    fn request(&self, api_url: &str, api_key: &str, from: &Sender, m: &Message) -> HttpCall {
        let mut sender = json!({ "email": from.email });
        if let Some(name) = &from.name {
            sender["name"] = json!(name);
        }
        // SendGrid requires text/plain before text/html.
        let body = json!({
            "personalizations": [{ "to": [{ "email": m.to }] }],
            "from": sender,
            "subject": m.subject,
            "content": [
                { "type": "text/plain", "value": m.text },
                { "type": "text/html", "value": m.html },
            ],
        });
        HttpCall {
            url: format!("{api_url}/v3/mail/send"),
            headers: vec![
                ("content-type", "application/json".into()),
                ("authorization", format!("Bearer {api_key}")),
            ],
            body: body.to_string(),
        }
    }

    /// SendGrid answers 202 with an empty body: the status is the confirmation.
    fn confirms(&self, _body: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::mail::sample_message;

    #[test]
    fn request_shape() {
        let from = Sender::parse("Acme <a@acme.test>").unwrap();
        let call = SendGrid.request("http://sg", "SG.key", &from, &sample_message());
        assert_eq!(call.url, "http://sg/v3/mail/send");
        assert_eq!(call.header("authorization"), Some("Bearer SG.key"));
        let body: serde_json::Value = serde_json::from_str(&call.body).unwrap();
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "ann@example.com"
        );
        assert_eq!(
            body["from"],
            json!({"email": "a@acme.test", "name": "Acme"})
        );
        assert_eq!(body["content"][0]["type"], "text/plain");
        assert_eq!(body["content"][1]["type"], "text/html");
    }
}
