//! What the service sends through: mail APIs, Twilio, the message
//! templates, and the `Mailer`/`Texter` traits the flows send with. Each
//! provider builds an `HttpCall`; `edge` performs it.

pub mod http_call;
pub mod locale;
pub mod mail;
pub mod svix;
pub mod template;
pub mod text;
pub mod turnstile;
pub mod twilio;
