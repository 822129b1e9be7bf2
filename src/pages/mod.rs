//! The HTML the worker serves to people: the hosted sign-up and sign-in
//! pages (`auth`), the operator's console (`console`, with its `chart`),
//! and a page per problem code (`problems`). Plain Rust like the rest:
//! `edge::pages` reads the request, calls the same service flows as the
//! JSON routes, and renders these.
//!
//! Templates are maud's: checked at compile time and escaped by default,
//! so no value reaches a page unescaped. No page has inline script or
//! style (`layout::CSP`); the one script, the console's copy button, is
//! served by the worker and the page works without it.

pub mod auth;
pub mod browser;
pub mod chart;
pub mod console;
pub mod factors;
pub mod layout;
pub mod problems;
