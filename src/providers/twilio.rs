//! Twilio's Messages API: the request for an SMS or WhatsApp message, and
//! the reading of its error answers.

use crate::providers::http_call::HttpCall;
use crate::providers::text::{TextChannel, TextMessage};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

#[derive(Clone, PartialEq, Eq)]
pub struct Twilio {
    pub api_url: String,
    pub account_sid: String,
    pub auth_token: String,
    /// `From` for SMS, or `MessagingServiceSid` when it starts with `MG`.
    pub sms_from: Option<String>,
    /// The WhatsApp sender, `+E164` (the `whatsapp:` prefix is added).
    pub whatsapp_from: Option<String>,
    /// An approved WhatsApp template (`HX…`) whose variable `{{1}}` is the
    /// code. WhatsApp accepts free-form text only inside a session the user
    /// opened, so production codes need one.
    pub whatsapp_content_sid: Option<String>,
}

impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Twilio({}, {}, <token>)", self.api_url, self.account_sid)
    }
}

impl Twilio {
    /// The sender for a channel, or what an operator must set.
    pub fn sender(&self, channel: TextChannel) -> Result<(&'static str, String), String> {
        match channel {
            TextChannel::Sms => match &self.sms_from {
                Some(s) if s.starts_with("MG") => Ok(("MessagingServiceSid", s.clone())),
                Some(s) => Ok(("From", s.clone())),
                None => Err(
                    "var TWILIO_FROM is not set (an SMS-capable number or a Messaging Service SID)"
                        .into(),
                ),
            },
            TextChannel::Whatsapp => match &self.whatsapp_from {
                Some(s) => Ok(("From", whatsapp(s))),
                None => {
                    Err("var TWILIO_WHATSAPP_FROM is not set (your WhatsApp sender number)".into())
                }
            },
        }
    }

    pub fn request(&self, m: &TextMessage) -> Result<HttpCall, String> {
        let (from_field, from) = self.sender(m.channel)?;
        let to = match m.channel {
            TextChannel::Sms => m.to.as_str().to_owned(),
            TextChannel::Whatsapp => whatsapp(m.to.as_str()),
        };
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("To", &to).append_pair(from_field, &from);
        match (m.channel, &self.whatsapp_content_sid) {
            (TextChannel::Whatsapp, Some(sid)) => {
                let variables = serde_json::json!({ "1": m.code }).to_string();
                form.append_pair("ContentSid", sid)
                    .append_pair("ContentVariables", &variables)
            }
            _ => form.append_pair("Body", &m.body),
        };
        if let Some(url) = &m.status_callback {
            form.append_pair("StatusCallback", url);
        }
        let body = form.finish();
        let credentials = STANDARD.encode(format!("{}:{}", self.account_sid, self.auth_token));
        Ok(HttpCall {
            url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                self.api_url, self.account_sid
            ),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("accept", "application/json".into()),
                ("authorization", format!("Basic {credentials}")),
            ],
            body,
        })
    }
}

/// Twilio's signature of a request it makes to us (`X-Twilio-Signature`):
/// HMAC-SHA1 under the auth token of the full URL it called, then each
/// form field's name and value, sorted by name (byte order), base64.
pub fn signature(auth_token: &str, url: &str, form: &[(String, String)]) -> String {
    use hmac::{Hmac, Mac};
    // An insertion sort: a form has a dozen fields, and the standard
    // sorts would add kilobytes of wasm for them.
    let mut fields: Vec<&(String, String)> = Vec::with_capacity(form.len());
    for field in form {
        let at = fields.partition_point(|f| *f <= field);
        fields.insert(at, field);
    }
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(url.as_bytes());
    for (k, v) in fields {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `given` is Twilio's signature of this request, compared in
/// constant time.
pub fn signed_by_twilio(
    auth_token: &str,
    url: &str,
    form: &[(String, String)],
    given: &str,
) -> bool {
    use subtle::ConstantTimeEq;
    !auth_token.is_empty()
        && bool::from(
            signature(auth_token, url, form)
                .as_bytes()
                .ct_eq(given.trim().as_bytes()),
        )
}

fn whatsapp(number: &str) -> String {
    match number.strip_prefix("whatsapp:") {
        Some(_) => number.to_owned(),
        None => format!("whatsapp:{number}"),
    }
}

/// Why Twilio refused a message, from its error body
/// (`{"code": 21211, "message": "...", "status": 400}`).
/// A created message resource names its `sid`.
pub fn confirms(body: &str) -> bool {
    crate::providers::http_call::names_a(body, "sid")
}

pub fn refusal(status: u16, body: &str) -> String {
    #[derive(Deserialize)]
    struct TwilioError {
        code: Option<u64>,
    }
    match serde_json::from_str::<TwilioError>(body).ok().and_then(|e| e.code) {
        Some(code) => format!(
            "Twilio refused the message with error {code} (HTTP {status}); see https://www.twilio.com/docs/api/errors/{code}"
        ),
        None => format!("Twilio answered HTTP {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::phone::Phone;

    fn twilio() -> Twilio {
        Twilio {
            api_url: "https://api.twilio.com".into(),
            account_sid: "AC123".into(),
            auth_token: "tok3n".into(),
            sms_from: Some("+15005550006".into()),
            whatsapp_from: Some("+14155238886".into()),
            whatsapp_content_sid: None,
        }
    }

    fn msg(channel: TextChannel) -> TextMessage {
        TextMessage {
            channel,
            to: Phone::parse("+14155550123").unwrap(),
            body: "123456 is your Acme code & more".into(),
            code: "123456".into(),
            status_callback: None,
        }
    }

    fn form(call: &HttpCall) -> Vec<(String, String)> {
        form_urlencoded::parse(call.body.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn sms_request_is_form_encoded_with_basic_auth() {
        let call = twilio().request(&msg(TextChannel::Sms)).unwrap();
        assert_eq!(
            call.url,
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert_eq!(call.header("authorization"), Some("Basic QUMxMjM6dG9rM24="));
        assert_eq!(
            call.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(
            form(&call),
            [
                ("To".into(), "+14155550123".into()),
                ("From".into(), "+15005550006".into()),
                ("Body".into(), "123456 is your Acme code & more".into()),
            ]
        );
        assert!(!format!("{call:?}").contains("QUMx"));
        assert!(!format!("{:?}", twilio()).contains("tok3n"));
    }

    #[test]
    fn whatsapp_addresses_are_prefixed() {
        let call = twilio().request(&msg(TextChannel::Whatsapp)).unwrap();
        let f = form(&call);
        assert_eq!(f[0], ("To".into(), "whatsapp:+14155550123".into()));
        assert_eq!(f[1], ("From".into(), "whatsapp:+14155238886".into()));
    }

    #[test]
    fn whatsapp_content_templates_carry_the_code_as_variable_1() {
        let t = Twilio {
            whatsapp_content_sid: Some("HX0123".into()),
            ..twilio()
        };
        let f = form(&t.request(&msg(TextChannel::Whatsapp)).unwrap());
        assert_eq!(
            f[2..],
            [
                ("ContentSid".into(), "HX0123".into()),
                ("ContentVariables".into(), r#"{"1":"123456"}"#.into()),
            ]
        );
        // SMS keeps its body.
        let f = form(&t.request(&msg(TextChannel::Sms)).unwrap());
        assert_eq!(f[2].0, "Body");
    }

    #[test]
    fn messaging_service_replaces_from() {
        let t = Twilio {
            sms_from: Some("MG0123".into()),
            ..twilio()
        };
        let f = form(&t.request(&msg(TextChannel::Sms)).unwrap());
        assert_eq!(f[1], ("MessagingServiceSid".into(), "MG0123".into()));
    }

    #[test]
    fn missing_senders_say_which_var() {
        let t = Twilio {
            sms_from: None,
            whatsapp_from: None,
            ..twilio()
        };
        assert!(t
            .request(&msg(TextChannel::Sms))
            .unwrap_err()
            .contains("TWILIO_FROM"));
        assert!(t
            .request(&msg(TextChannel::Whatsapp))
            .unwrap_err()
            .contains("TWILIO_WHATSAPP_FROM"));
    }

    /// Twilio's own worked example (its security documentation).
    #[test]
    fn signatures_match_twilios_example() {
        let form: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://example.com/myapp.php?foo=1&bar=2";
        assert_eq!(
            signature("12345", url, &form),
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        );
        let mut reversed = form.clone();
        reversed.reverse();
        assert!(signed_by_twilio(
            "12345",
            url,
            &reversed,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        assert!(!signed_by_twilio(
            "12346",
            url,
            &form,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        assert!(!signed_by_twilio(
            "12345",
            "https://example.com/myapp.php?foo=1",
            &form,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
        assert!(!signed_by_twilio(
            "",
            url,
            &form,
            &signature("", url, &form)
        ));
        let mut changed = form.clone();
        changed[2].1 = "1235".into();
        assert!(!signed_by_twilio(
            "12345",
            url,
            &changed,
            "L/OH5YylLD5NRKLltdqwSvS0BnU="
        ));
    }

    #[test]
    fn a_status_callback_is_asked_for_when_there_is_one() {
        let m = TextMessage {
            status_callback: Some(
                "https://otp.example.com/v1/hooks/twilio/status?send=ab12".into(),
            ),
            ..msg(TextChannel::Sms)
        };
        let f = form(&twilio().request(&m).unwrap());
        assert_eq!(
            f.last().unwrap(),
            &(
                "StatusCallback".into(),
                "https://otp.example.com/v1/hooks/twilio/status?send=ab12".into()
            )
        );
        assert!(!form(&twilio().request(&msg(TextChannel::Sms)).unwrap())
            .iter()
            .any(|(k, _)| k == "StatusCallback"));
    }

    #[test]
    fn refusals_name_the_twilio_error() {
        let r = refusal(
            400,
            r#"{"code": 21211, "message": "The 'To' number is not valid.", "status": 400}"#,
        );
        assert!(r.contains("21211") && r.contains("HTTP 400"));
        assert_eq!(refusal(503, "<html>"), "Twilio answered HTTP 503");
    }
}
