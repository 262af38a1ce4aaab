//! Browser sessions: the session token in an HttpOnly cookie, CSRF tokens
//! on every form, and the locale a page is shown in.
//!
//! The session cookie carries the same bearer token the API uses (only its
//! SHA-256 is stored). A signed-in form's CSRF token is derived from the
//! session token, which a page on another site can never read; before sign
//! in, a random `baobao_csrf` cookie is echoed in the form (double submit).
//! Cookies are `SameSite=Lax` and `HttpOnly`, and `Secure` when the request
//! came over TLS (`X-Forwarded-Proto: https` from the proxy in front).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use baobao_domain::Locale;
use baobao_domain::ids::FamilyId;
use baobao_store::Guardian;
use sha2::{Digest, Sha256};

use baobao_domain::receipt::Provider;

use crate::auth::{Caller, Principal};
use crate::i18n::T;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "baobao_session";
pub const CSRF_COOKIE: &str = "baobao_csrf";
pub const LANG_COOKIE: &str = "baobao_lang";
pub const COOKIE_VALUE_CHARS_MAX: usize = 256;

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= COOKIE_VALUE_CHARS_MAX)
}

/// A `Set-Cookie` value; `max_age_seconds` 0 deletes it.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: &str, max_age_seconds: i64) -> String {
    let secure = if crate::headers::over_tls(headers) { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_seconds}{secure}")
}

fn derived_csrf(session_token: &str) -> String {
    hex::encode(&Sha256::digest(format!("csrf:{session_token}").as_bytes())[..16])
}

/// Everything a page needs about who is looking and in which language.
#[derive(Clone, Debug)]
pub struct PageContext {
    pub t: T,
    pub csrf: String,
    pub signed_in: bool,
    /// `Set-Cookie` values the response must carry (a fresh CSRF cookie).
    pub set_cookies: Vec<String>,
    pub path: String,
    /// A staff console page (its own navigation).
    pub console: bool,
    /// Who provides the service, for the footer.
    pub provider: Provider,
}

impl PageContext {
    pub fn lang_switch_href(&self) -> String {
        format!("/lang?to={}&next={}", self.t.other().tag(), url_escape(&self.path))
    }
}

pub fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A redirect target on this site: one `/`, then anything but a second
/// `/` or a `\`, with no control character or white space anywhere — as
/// written and after percent-decoding. Browsers drop tabs and newlines
/// from a `Location` and read `\` as `/`, so `/\t/evil.example` or
/// `/%5Cevil.example` would otherwise lead to another site.
pub fn is_local_path(path: &str) -> bool {
    fn safe(path: &str) -> bool {
        let mut chars = path.chars();
        chars.next() == Some('/')
            && !matches!(chars.next(), Some('/' | '\\'))
            && !path.chars().any(|c| c == '\\' || c.is_control() || c.is_whitespace())
    }
    path.len() <= REDIRECT_PATH_BYTES_MAX && safe(path) && percent_decoded(path).is_some_and(|decoded| safe(&decoded))
}

/// A redirect target longer than this is refused.
pub const REDIRECT_PATH_BYTES_MAX: usize = 2048;

/// `%XX` sequences decoded; `None` when they are malformed or do not decode to UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

/// The signed-in guardian, if the session cookie is valid.
/// The signed-in guardian if any, and the provider every page's footer names.
pub struct MaybeGuardian(pub Option<SignedInGuardian>, pub Provider);

#[derive(Clone, Debug)]
pub struct SignedInGuardian {
    pub guardian: Guardian,
    pub token: String,
}

impl SignedInGuardian {
    pub fn caller(&self) -> Caller {
        Caller::Guardian {
            guardian_id: self.guardian.id.clone(),
            family_id: self.guardian.family_id.clone(),
            locale: self.guardian.locale,
        }
    }

    pub fn family_id(&self) -> &FamilyId {
        &self.guardian.family_id
    }
}

async fn signed_in(state: &AppState, headers: &HeaderMap) -> Option<SignedInGuardian> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let Ok(Principal::Guardian(guardian)) = crate::auth::session_principal(state, &token).await else { return None };
    Some(SignedInGuardian { guardian, token })
}

impl FromRequestParts<AppState> for MaybeGuardian {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeGuardian(signed_in(state, &parts.headers).await, state.config.provider.clone()))
    }
}

/// The page context: locale from the switch cookie, else the guardian's
/// setting, else `Accept-Language`; the CSRF token for this visitor.
pub fn context(
    headers: &HeaderMap,
    path: &str,
    guardian: Option<&SignedInGuardian>,
    provider: &Provider,
) -> PageContext {
    let locale = cookie(headers, LANG_COOKIE)
        .and_then(|tag| Locale::parse(&tag))
        .or_else(|| guardian.map(|g| g.guardian.locale))
        .or_else(|| {
            headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).and_then(Locale::from_accept_language)
        })
        .unwrap_or_default();
    let mut set_cookies = Vec::new();
    let csrf = match guardian {
        Some(g) => derived_csrf(&g.token),
        None => match cookie(headers, CSRF_COOKIE) {
            Some(existing) => existing,
            None => {
                let fresh = crate::random::random_token(18);
                set_cookies.push(set_cookie(headers, CSRF_COOKIE, &fresh, 60 * 60 * 24));
                fresh
            }
        },
    };
    PageContext {
        t: T::new(locale),
        csrf,
        signed_in: guardian.is_some(),
        set_cookies,
        path: path.to_owned(),
        console: false,
        provider: provider.clone(),
    }
}

/// The staff console's session cookie (apart from a guardian's).
pub const STAFF_SESSION_COOKIE: &str = "baobao_staff_session";

/// A console page's context: the language from the switch or the
/// browser, the CSRF token derived from the staff session (or the
/// double-submit cookie before sign-in).
pub fn staff_context(headers: &HeaderMap, path: &str, staff_token: Option<&str>, provider: &Provider) -> PageContext {
    let mut page = context(headers, path, None, provider);
    if let Some(token) = staff_token {
        page.csrf = derived_csrf(token);
        page.set_cookies.clear();
        page.signed_in = true;
    }
    page.console = true;
    page
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_paths_on_this_site_are_redirect_targets() {
        for good in ["/", "/services", "/services/sub_1/cancel?step=2", "/receipts/rcp_1#top", "/caf%C3%A9"] {
            assert!(is_local_path(good), "{good}");
        }
        for bad in [
            "",
            "services",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%09/evil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "/ok/%0d%0aSet-Cookie:x",
            "/ok path",
            "/a%20b",
            "/%zz",
            "/%C0",
            "https://evil.example/",
            "\\evil.example",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
        assert!(!is_local_path(&format!("/{}", "a".repeat(super::REDIRECT_PATH_BYTES_MAX))));
    }
}
