//! What every page of the portal and the console shares: the page-shaped
//! failure (`PortalError`, shown as a page, never as JSON), rendering with
//! the page's cookies, and the small response helpers.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use baobao_domain::calendar::Calendar;
use jiff::Timestamp;

use crate::error::{ApiError, Shown};
use crate::messages;
use crate::portal::session::{self, PageContext};

/// What can go wrong on a page, shown as a page (never as JSON).
pub enum Failure {
    SignIn(String),
    Csrf(PageContext),
    Api(PageContext, ApiError),
}

/// Boxed, so that every page's `Result` stays small.
pub struct PortalError(Box<Failure>);

impl PortalError {
    pub fn sign_in(next: String) -> PortalError {
        PortalError(Box::new(Failure::SignIn(next)))
    }

    pub fn csrf(page: PageContext) -> PortalError {
        PortalError(Box::new(Failure::Csrf(page)))
    }

    pub fn api(page: PageContext, error: ApiError) -> PortalError {
        PortalError(Box::new(Failure::Api(page, error)))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    page: PageContext,
    message: String,
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match *self.0 {
            Failure::SignIn(next) => {
                Redirect::to(&format!("/login?next={}", session::url_escape(&next))).into_response()
            }
            Failure::Csrf(page) => {
                let message = page.t.get("error-csrf");
                render(StatusCode::FORBIDDEN, ErrorPage { page, message })
            }
            Failure::Api(page, error) => {
                let message = match error.shown() {
                    Shown::NotFound => page.t.get("error-not-found"),
                    Shown::Inline => messages::render(error.code, page.t.locale, &error.details),
                    Shown::Failure if error.code == "internal" => {
                        tracing::error!(internal = error.internal.as_deref().unwrap_or(""), "portal page failed");
                        page.t.arg("error-internal", "request_id", crate::random::random_token(6))
                    }
                    // Busy, or the database away: its own words ("try again in a moment").
                    Shown::Failure => messages::render(error.code, page.t.locale, &error.details),
                };
                let status = if error.shown() == Shown::NotFound { StatusCode::NOT_FOUND } else { error.status };
                render(status, ErrorPage { page, message })
            }
        }
    }
}

pub type PageResult = Result<Response, PortalError>;

pub fn render<P: Template + HasPage>(status: StatusCode, page: P) -> Response {
    let cookies = page.context().set_cookies.clone();
    let mut response = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(error) => {
            tracing::error!(%error, "template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    };
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn ok<P: Template + HasPage>(page: P) -> PageResult {
    Ok(render(StatusCode::OK, page))
}

pub trait HasPage {
    fn context(&self) -> &PageContext;
}

macro_rules! has_page {
    ($($page:ty),*) => { $(impl $crate::portal::page::HasPage for $page {
        fn context(&self) -> &$crate::portal::session::PageContext { &self.page }
    })* };
}
pub(crate) use has_page;

has_page!(ErrorPage);

impl PageContext {
    /// The token a submitted form must carry.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PortalError> {
        let matches = !self.csrf.is_empty()
            && submitted.len() == self.csrf.len()
            && submitted.bytes().zip(self.csrf.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if matches { Ok(()) } else { Err(PortalError::csrf(self.clone())) }
    }
}

pub fn api(page: &PageContext) -> impl Fn(ApiError) -> PortalError + '_ {
    move |error| PortalError::api(page.clone(), error)
}

/// Only paths on this site, so a crafted link cannot send anyone elsewhere.
pub fn local_path(next: Option<&str>, default: &str) -> String {
    match next {
        Some(path) if session::is_local_path(path) => path.to_owned(),
        _ => default.to_owned(),
    }
}

pub fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location.to_owned())]).into_response()
}

pub fn with_cookie(mut response: Response, cookie: String) -> Response {
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

pub fn local_time(calendar: &Calendar, instant: Timestamp) -> String {
    calendar.zoned(instant).strftime("%Y-%m-%d %H:%M").to_string()
}

/// A form sent as `multipart/form-data`: its text fields, and up to
/// `files_max` files under the name `evidence` (empty file inputs skipped;
/// more files than that are refused, as is a file over the limit).
pub async fn form_with_files(
    mut multipart: axum::extract::Multipart,
    files_max: usize,
) -> Result<(std::collections::HashMap<String, String>, Vec<(String, Vec<u8>)>), ApiError> {
    use crate::services::evidence::EVIDENCE_BYTES_MAX;
    let mut fields = std::collections::HashMap::new();
    let mut files = Vec::new();
    let too_large = || ApiError::unprocessable("evidence_too_large").with("max_bytes", EVIDENCE_BYTES_MAX);
    while let Some(field) = multipart.next_field().await.map_err(|_| too_large())? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "evidence" {
            let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
            let bytes = field.bytes().await.map_err(|_| too_large())?;
            if bytes.is_empty() {
                continue;
            }
            if files.len() == files_max {
                return Err(ApiError::unprocessable("too_many_evidence_files").with("max", files_max));
            }
            files.push((content_type, bytes.to_vec()));
        } else if fields.len() < FORM_FIELDS_MAX {
            fields.insert(name, field.text().await.unwrap_or_default());
        }
    }
    Ok((fields, files))
}

/// Text fields a multipart form may carry.
const FORM_FIELDS_MAX: usize = 32;
