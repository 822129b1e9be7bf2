//! The traits the flows keep their state behind (`Store` for D1, `Counters`
//! for KV, `Clock`), with the rules that decide what they hold. `edge`
//! implements them on Workers; `service::testkit` in memory.

pub mod clock;
pub mod human;
pub mod limits;
pub mod sealer;
pub mod signer;
pub mod store;
