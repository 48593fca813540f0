//! `spamlens serve`: the HTTP classification service mail operators run next to their MTA or
//! webmail backend.
//!
//! Routes (the OpenAPI 3.1 document, generated from the handlers and the answer types, is served at
//! `/openapi.json`): `POST /v1/classify`, `POST /v1/scan` and `POST /v1/feedback` (whole emails,
//! see [`mail`]), `GET /v1/model`, `GET /metrics` (behind the optional bearer token), `GET /healthz`,
//! `GET /readyz`, `GET /openapi.json`, and with `--demo` the browser demo page at `/`.
//!
//! The listener is bound first (liveness answers at once) and the model loads in the background
//! (readiness answers 503 until it is in). Every request-level failure is a JSON error with a code;
//! per-image failures are reported inside the classify answer. SIGINT/SIGTERM stop accepting,
//! finish what is in flight, and exit 0.
//!
//! Modules: [`settings`] (flags), [`startup`] (state, loading, shutdown), [`router`] (routes and
//! middleware), [`handlers`], [`api`] (answer types), [`openapi`] (the document), [`body`],
//! [`input`] (classify bodies), [`mail`], [`inference`], [`metrics`], [`auth`], [`error`].

mod api;
mod auth;
mod body;
mod error;
mod handlers;
mod inference;
mod input;
mod mail;
mod metrics;
mod openapi;
mod router;
mod settings;
mod startup;

pub use auth::BearerToken;
pub use settings::ServeArgs;
pub use startup::run;
