//! HTTP plumbing shared by Ledgerline's APIs: the one place errors become RFC 9457
//! problem+json responses, the JSON body extractor whose rejections speak that format,
//! and bearer-token authentication (JWT verification against a JWKS, and the `Caller`
//! extractor that also refuses tokens of disabled or deleted users).

pub mod auth;
pub mod json;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod serve;

pub use auth::{Authenticator, Caller};
pub use json::{AppForm, AppJson, AppQuery};
pub use problem::ApiError;
