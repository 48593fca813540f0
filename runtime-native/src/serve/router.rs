//! The router: the routes (registered with their OpenAPI operations, so the two cannot drift), the
//! token guard, request metrics, JSON 404/405 answers and the panic guard.

use std::time::Instant;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::refuse;
use super::error::{ApiError, ErrorCode};
use super::handlers;
use super::openapi::{self, ApiDoc, OpenApiDocument};
use super::startup::Shared;

/// The open routes and those behind the token (each with its OpenAPI operation).
fn api_routes() -> (OpenApiRouter<Shared>, OpenApiRouter<Shared>) {
    let open = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::healthz))
        .routes(routes!(handlers::readyz))
        .routes(routes!(handlers::openapi));
    let protected = OpenApiRouter::new()
        .routes(routes!(handlers::classify))
        .routes(routes!(handlers::scan))
        .routes(routes!(handlers::feedback))
        .routes(routes!(handlers::model_info))
        .routes(routes!(handlers::metrics));
    (open, protected)
}

/// The paths of `router`'s operations.
fn paths(router: &OpenApiRouter<Shared>) -> Vec<String> {
    router.get_openapi().paths.paths.keys().cloned().collect()
}

/// The document a server with (`auth`) or without the token serves.
#[cfg(test)]
pub(super) fn document(auth: bool) -> OpenApi {
    let (open, protected) = api_routes();
    let protected_paths = paths(&protected);
    openapi::finish(open.merge(protected).into_openapi(), &protected_paths, auth)
}

/// The whole service over `state`, with the generated document at `/openapi.json`.
pub(super) fn router(state: Shared) -> Result<Router> {
    let (open, protected) = api_routes();
    let protected_paths = paths(&protected);
    let protected = protected
        .layer(DefaultBodyLimit::disable())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token));
    let (router, document): (Router<Shared>, OpenApi) = open.merge(protected).split_for_parts();
    let document = openapi::finish(document, &protected_paths, state.settings.token.is_some());
    let document = OpenApiDocument::new(&document).context("serialising the OpenAPI document")?;
    Ok(router
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(document))
        .layer(axum::middleware::from_fn_with_state(state.clone(), record_request))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::internal(ErrorCode::InternalError, "the server failed on this request").into_response()
}

async fn record_request(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_owned(),
        None if state.settings.demo.is_some() => "demo".to_owned(),
        None => "unmatched".to_owned(),
    };
    let response = next.run(request).await;
    state.metrics.request(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn require_token(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.settings.token {
        let presented = request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
        if !token.accepts(presented) {
            let message = if presented.is_some() {
                "the bearer token is wrong"
            } else {
                "this route needs Authorization: Bearer <token> (the server runs with --token-file)"
            };
            return refuse(request, ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)).await;
        }
    }
    next.run(request).await
}

async fn fallback(State(state): State<Shared>, request: Request) -> Response {
    if let Some(demo) = state.demo.get() {
        let result = tower::ServiceExt::oneshot(demo.clone(), request).await;
        return match result {
            Ok(response) => response,
            Err(never) => match never {},
        };
    }
    if state.settings.demo.is_some() {
        return ApiError::unavailable(ErrorCode::NotReady, "the demo is served once the model has loaded", 1)
            .into_response();
    }
    ApiError::not_found(request.uri().path()).into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}; see /openapi.json", request.method(), request.uri().path()),
    )
    .into_response()
}
