//! HTTP plumbing that needs no runtime: the route table and its policies,
//! the body reader, one parser per request, CORS and request ids. `edge`
//! feeds it bytes and headers; the flows never see HTTP.

pub mod body;
pub mod oauth;
pub mod request_id;
pub mod requests;
pub mod routes;
