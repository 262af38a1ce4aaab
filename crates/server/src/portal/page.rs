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
