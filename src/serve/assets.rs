//! The pages: one HTML shell, one script and one style sheet, compiled into the binary (no
//! build step, nothing fetched from elsewhere). Every page path serves the same shell; the
//! script reads the path and draws the page from the JSON API.

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use super::App;

/// The HTML shell.
pub const INDEX_HTML: &str = include_str!("assets/index.html");
/// The script of every page.
pub const APP_JS: &str = include_str!("assets/app.js");
/// The style sheet.
pub const APP_CSS: &str = include_str!("assets/app.css");

/// The page paths.
pub const PAGES: &[&str] = &[
    "/",
    "/trajectories",
    "/trajectory",
    "/rejected",
    "/rounds",
    "/clusters",
    "/sql",
];

async fn shell() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        INDEX_HTML,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        APP_JS,
    )
}

async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

/// The routes of the pages and their assets.
pub fn routes() -> Router<Arc<App>> {
    let mut r = Router::new()
        // No icon: an empty answer keeps browsers from logging a missing one.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route("/assets/app.js", get(script))
        .route("/assets/app.css", get(style));
    for p in PAGES {
        r = r.route(p, get(shell));
    }
    r
}
