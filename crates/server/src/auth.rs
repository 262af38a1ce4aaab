//! Who is calling, and what they may do.
//!
//! Guardians and staff sign in with email and password (Argon2id, PHC
//! strings) and get a bearer token; only the token's SHA-256 is stored, so
//! a database leak yields no usable session. Every handler names the
//! callers it admits through `Caller`'s `require_*` functions — there is no
//! route whose rule is implicit. A guardian asking for another family's
//! anything gets 404, not 403, so ids of other families cannot be probed.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use baobao_domain::Locale;
use baobao_domain::ids::{ApiKeyId, FamilyId, GuardianId, StaffId};
use baobao_store::{Guardian, PrincipalKind, Staff, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::random::token_hash;
use crate::state::AppState;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 12;
pub const PASSWORD_CHARS_MIN: usize = 10;
pub const PASSWORD_CHARS_MAX: usize = 256;

pub use baobao_domain::roles::Role;

/// A signed-in caller. Extracting it from a request without valid
/// credentials is a 401, before anything else about the request is looked
/// at, so an anonymous caller learns nothing — not even whether an id exists.
#[derive(Clone, Debug)]
pub enum Caller {
    Guardian {
        guardian_id: GuardianId,
        family_id: FamilyId,
        locale: Locale,
    },
    Staff {
        staff_id: StaffId,
        role: Role,
    },
    /// A children's app, through an API key scoped to one service.
    Integrator {
        key_id: ApiKeyId,
        service: String,
    },
}

/// API keys start with this, so a token says which kind it is.
pub const API_KEY_PREFIX: &str = "bbk_";

impl Caller {
    /// The actor as written in the audit trail.
    pub fn actor(&self) -> String {
        match self {
            Caller::Guardian { guardian_id, .. } => format!("guardian:{guardian_id}"),
            Caller::Staff { staff_id, role } => format!("staff:{}:{staff_id}", role.as_str()),
            Caller::Integrator { key_id, service } => format!("integrator:{service}:{key_id}"),
        }
    }

    pub fn require_guardian(&self) -> ApiResult<(&GuardianId, &FamilyId)> {
        match self {
            Caller::Guardian { guardian_id, family_id, .. } => Ok((guardian_id, family_id)),
            Caller::Staff { .. } | Caller::Integrator { .. } => Err(ApiError::forbidden()),
        }
    }

    pub fn require_staff(&self, roles: &[Role]) -> ApiResult<(&StaffId, Role)> {
        match self {
            Caller::Staff { staff_id, role } if roles.contains(role) => Ok((staff_id, *role)),
            _ => Err(ApiError::forbidden()),
        }
    }

    /// Admits the family's own guardians and staff in `staff_roles`. A
    /// guardian of another family learns nothing: the thing is "not found".
    pub fn require_family(&self, family_id: &FamilyId, staff_roles: &[Role], resource: &'static str) -> ApiResult<()> {
        match self {
            Caller::Guardian { family_id: own, .. } if own == family_id => Ok(()),
            Caller::Guardian { .. } => Err(ApiError::not_found(resource)),
            Caller::Staff { role, .. } if staff_roles.contains(role) => Ok(()),
            Caller::Staff { .. } | Caller::Integrator { .. } => Err(ApiError::forbidden()),
        }
    }

    pub fn is_staff(&self) -> bool {
        matches!(self, Caller::Staff { .. })
    }

    /// The service an integrator's key is scoped to.
    pub fn require_integrator(&self) -> ApiResult<&str> {
        match self {
            Caller::Integrator { service, .. } => Ok(service),
            _ => Err(ApiError::forbidden()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(ApiError::unauthenticated)?;
        // The scheme is case-insensitive (RFC 9110 §11.1): `bearer`, `BEARER`.
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.trim_start().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(ApiError::unauthenticated)?;
        if token.starts_with(API_KEY_PREFIX) {
            let hash = token_hash(token);
            if let Some((key_id, service)) = state.api_keys.get(&hash) {
                return Ok(Caller::Integrator { key_id, service });
            }
            return match state.store.api_key_by_hash(&hash).await {
                Ok(key) => {
                    state.api_keys.put(hash, key.id.clone(), key.service.clone());
                    Ok(Caller::Integrator { key_id: key.id, service: key.service })
                }
                Err(StoreError::NotFound) => Err(ApiError::unauthenticated()),
                Err(other) => Err(other.into()),
            };
        }
        match session_principal(state, token).await? {
            Principal::Guardian(guardian) => {
                if let Some(saved_for) = parts.extensions.get::<SavedFor>() {
                    saved_for.set(&guardian.family_id);
                }
                Ok(Caller::Guardian {
                    guardian_id: guardian.id,
                    family_id: guardian.family_id,
                    locale: guardian.locale,
                })
            }
            Principal::Staff(staff) => Ok(Caller::Staff { staff_id: staff.id, role: staff.role }),
        }
    }
}

/// Who a session token belongs to.
pub enum Principal {
    Guardian(Guardian),
    Staff(Staff),
}

/// The guardian or staff member a live session token belongs to; 401 for
/// an unknown or expired token (only its SHA-256 is ever looked up).
pub async fn session_principal(state: &AppState, token: &str) -> ApiResult<Principal> {
    let session = match state.store.session(&token_hash(token), state.clock.wall_now()).await {
        Ok(session) => session,
        Err(StoreError::NotFound) => return Err(ApiError::unauthenticated()),
        Err(other) => return Err(other.into()),
    };
    match session.principal_kind {
        PrincipalKind::Guardian => {
            let guardian_id = GuardianId::parse(&session.principal_id).map_err(|_| ApiError::unauthenticated())?;
            let guardian = state.store.guardian(&guardian_id).await.map_err(|_| ApiError::unauthenticated())?;
            Ok(Principal::Guardian(guardian))
        }
        PrincipalKind::Staff => {
            let staff_id = StaffId::parse(&session.principal_id).map_err(|_| ApiError::unauthenticated())?;
            let staff = state.store.staff(&staff_id).await.map_err(|_| ApiError::unauthenticated())?;
            Ok(Principal::Staff(staff))
        }
    }
}

/// Ends a session: the token no longer signs anyone in.
pub async fn sign_out(state: &AppState, token: &str) -> ApiResult<()> {
    let mut tx = state.store.begin().await?;
    tx.delete_session(&token_hash(token)).await?;
    tx.commit().await?;
    Ok(())
}

/// Argon2 runs at most this many at once, on the blocking threads: each
/// takes tens of milliseconds of one core and 19 MiB, so a burst of
/// sign-ins queues here instead of stalling the async workers that serve
/// every other request (`/healthz` included).
pub const PASSWORD_HASHES_CONCURRENT_MAX: usize = 2;
static PASSWORD_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(PASSWORD_HASHES_CONCURRENT_MAX);

/// Runs `work` off the async workers, within the concurrency limit.
async fn password_work<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    let _permit = PASSWORD_WORK.acquire().await.map_err(|e| ApiError::internal(e.to_string()))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::internal(format!("password work failed: {e}")))
}

fn hash_now(password: &str) -> ApiResult<String> {
    let hashed: Result<PasswordHash, _> = Argon2::default().hash_password(password.as_bytes());
    hashed.map(|hash| hash.to_string()).map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordVerifier::<str>::verify_password(&Argon2::default(), password.as_bytes(), phc).is_ok()
}

/// Argon2id with the crate's default (OWASP-recommended) parameters.
pub async fn hash_password(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    password_work(move || hash_now(&password)).await?
}

pub async fn verify_password(password: &str, phc: &str) -> ApiResult<bool> {
    let (password, phc) = (password.to_owned(), phc.to_owned());
    password_work(move || verify_now(&password, &phc)).await
}

/// Spends the time of one verification when there is no account, so that
/// response times do not tell which emails are registered.
pub async fn verify_against_nothing(password: &str) -> ApiResult<()> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let password = password.to_owned();
    password_work(move || {
        let phc = DUMMY.get_or_init(|| hash_now("not a real password at all").unwrap_or_default());
        verify_now(&password, phc);
    })
    .await
}

pub fn check_password_strength(password: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
        return Err(ApiError::invalid_field("password", "chars_between")
            .with("min", PASSWORD_CHARS_MIN)
            .with("max", PASSWORD_CHARS_MAX));
    }
    Ok(())
}

/// Failed sign-ins allowed per account within the window, then a pause.
pub const LOGIN_FAILURES_MAX: i64 = 5;
pub const LOGIN_WINDOW_SECONDS: i64 = 15 * 60;

/// Slows down password guessing per account, in real time. The count is
/// kept in the database (as the SHA-256 of realm and email, never the
/// address), so a restart does not clear it and every server sees the
/// same five tries; guessing across many accounts from one address is
/// held back by the per-address limit on the sign-in routes.
pub struct LoginLimit<'a> {
    store: &'a baobao_store::Store,
    account_sha256: String,
    now: jiff::Timestamp,
}

impl<'a> LoginLimit<'a> {
    pub fn new(store: &'a baobao_store::Store, realm: &str, email: &str, now: jiff::Timestamp) -> LoginLimit<'a> {
        LoginLimit { store, account_sha256: token_hash(&format!("{realm}:{email}")), now }
    }

    fn window_began_after(&self) -> jiff::Timestamp {
        self.now.checked_sub(jiff::SignedDuration::from_secs(LOGIN_WINDOW_SECONDS)).unwrap_or(self.now)
    }

    /// `Err` with the minutes left while the account is paused; else
    /// whether earlier failures are on record (to clear on success).
    pub async fn check(&self) -> ApiResult<bool> {
        let recorded = self.store.login_failures(&self.account_sha256).await?;
        if let Some((failures, since)) = recorded
            && failures >= LOGIN_FAILURES_MAX
            && since >= self.window_began_after()
        {
            let left = LOGIN_WINDOW_SECONDS - (self.now.as_second() - since.as_second());
            return Err(ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "too_many_attempts")
                .with("minutes", (left + 59) / 60));
        }
        Ok(recorded.is_some())
    }

    pub async fn failed(&self) -> ApiResult<()> {
        Ok(self.store.record_login_failure(&self.account_sha256, self.now, self.window_began_after()).await?)
    }

    pub async fn succeeded(&self) -> ApiResult<()> {
        Ok(self.store.clear_login_failures(&self.account_sha256).await?)
    }
}

/// A request extension the caller's authentication fills in: the family
/// whose guardian made the request, so its saved response goes with the
/// family's personal data.
#[derive(Clone, Debug, Default)]
pub struct SavedFor(std::sync::Arc<std::sync::Mutex<Option<FamilyId>>>);

impl SavedFor {
    pub fn set(&self, family_id: &FamilyId) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(family_id.clone());
    }

    pub fn family(&self) -> Option<FamilyId> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Bits naming who may call a route, for `Allowed<…>`.
pub mod who {
    pub const GUARDIAN: u8 = 1;
    pub const AGENT: u8 = 2;
    pub const SUPERVISOR: u8 = 4;
    pub const FINANCE: u8 = 8;
    pub const COMPLIANCE: u8 = 16;
    pub const ADMIN: u8 = 32;
    pub const INTEGRATOR: u8 = 64;
    pub const STAFF: u8 = AGENT | SUPERVISOR | FINANCE | COMPLIANCE | ADMIN;
    pub const ANYONE_SIGNED_IN: u8 = GUARDIAN | STAFF | INTEGRATOR;
}

impl Caller {
    fn who(&self) -> u8 {
        match self {
            Caller::Guardian { .. } => who::GUARDIAN,
            Caller::Integrator { .. } => who::INTEGRATOR,
            Caller::Staff { role, .. } => match role {
                Role::Agent => who::AGENT,
                Role::Supervisor => who::SUPERVISOR,
                Role::Finance => who::FINANCE,
                Role::Compliance => who::COMPLIANCE,
                Role::Admin => who::ADMIN,
            },
        }
    }
}

/// A caller among `WHO`, checked before anything else of the request —
/// before the body is read — so every handler's signature says who may call
/// it: 401 without credentials, 403 for anyone not named. Which family's
/// data a guardian or staff member may touch is then the service's check.
pub struct Allowed<const WHO: u8>(pub Caller);

impl<const WHO: u8> FromRequestParts<AppState> for Allowed<WHO> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if WHO & caller.who() == 0 {
            return Err(ApiError::forbidden());
        }
        Ok(Allowed(caller))
    }
}

/// Staff roles that may look at a family's subscriptions and cancellations.
pub const STAFF_READERS: &[Role] = &[Role::Agent, Role::Supervisor, Role::Finance, Role::Compliance, Role::Admin];
/// Staff roles that may see quotes (agents quote on the phone).
pub const STAFF_QUOTERS: &[Role] = &Role::ALL;
/// Staff roles that file cancellations on a guardian's behalf.
pub const STAFF_FILERS: &[Role] = &[Role::Agent, Role::Supervisor];
