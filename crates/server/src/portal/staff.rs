//! Who is signed in to the staff console: the staff member behind the
//! console's own session cookie, and `StaffPage`, the one way into a
//! console page (the console, the audit log's page, the disputes' pages).

use axum::http::HeaderMap;
use axum::response::Response;

use crate::auth::{Caller, Principal, Role};
use crate::portal::page::see_other;
use crate::portal::session::{self, PageContext, STAFF_SESSION_COOKIE};
use crate::state::AppState;

/// A signed-in staff member, from the console's cookie.
pub struct Staff {
    pub caller: Caller,
    pub role: Role,
    pub token: String,
}

async fn staff_of(state: &AppState, headers: &HeaderMap) -> Option<Staff> {
    let token = session::cookie(headers, STAFF_SESSION_COOKIE)?;
    let Ok(Principal::Staff(staff)) = crate::auth::session_principal(state, &token).await else { return None };
    Some(Staff { caller: Caller::Staff { staff_id: staff.id, role: staff.role }, role: staff.role, token })
}

/// The signed-in staff member and their page: the one way into a console
/// page. Without a staff session it answers with the console's sign-in
/// page, which comes back here afterwards (for a page that can be shown
/// again; a form post comes back to the console's home).
pub struct StaffPage {
    pub staff: Staff,
    pub page: PageContext,
}

impl axum::extract::FromRequestParts<AppState> for StaffPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let path = parts.uri.path().to_owned();
        let shown_again = parts.method == axum::http::Method::GET || !path.starts_with("/console/families/");
        let path = if shown_again && path != "/console/logout" { path } else { "/console".to_owned() };
        match staff_of(state, &parts.headers).await {
            Some(staff) => {
                let page = session::staff_context(&parts.headers, &path, Some(&staff.token), &state.config.provider);
                Ok(StaffPage { staff, page })
            }
            None => Err(see_other(&format!("/console/login?next={}", session::url_escape(&path)))),
        }
    }
}
