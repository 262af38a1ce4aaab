//! The state every handler and worker shares, and the configuration it is
//! built from (read once at start-up by the CLI, passed down).

use std::path::PathBuf;
use std::sync::Arc;

use baobao_store::Store;

use crate::clock::{Clock, SIMULATED_NOW_SETTING, SimulatedClock, SystemClock};
use crate::gateway::{LedgerOnlyGateway, PaymentGateway, SimulatedGateway};
use crate::keys::SigningKeys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    System,
    Simulated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayMode {
    LedgerOnly,
    Simulated,
}

/// A request that takes longer is answered 503 (the app's timeout layer).
pub const REQUEST_TIMEOUT_SECONDS: u64 = 30;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub clock: ClockMode,
    pub gateway: GatewayMode,
    /// `smtp://host:port` of the relay emails go through; none: emails wait in the outbox.
    pub smtp_url: Option<String>,
    pub mail_from: String,
    /// Written notices received longer ago than this are refused.
    pub written_notice_age_days_max: u32,
    /// A ready export can be downloaded for this many days; then its file
    /// and key are destroyed by the billing run.
    pub export_days: u32,
    /// The support office's time zone, for "today" in the staff console.
    pub staff_time_zone: String,
    /// Sign-ups allowed per client address and hour (and as a burst).
    pub sign_ups_per_address_per_hour: u32,
    /// Sign-ins allowed per client address and minute (and as a burst).
    pub sign_ins_per_address_per_minute: u32,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// The provider: on every receipt, page footer and email.
    pub provider: baobao_domain::receipt::Provider,
    /// The portal's public address, for links in emails; none: no links.
    pub public_url: Option<String>,
    /// Each dispute level's first-response and resolution deadlines.
    pub dispute_deadlines: baobao_domain::dispute::Deadlines,
    /// After SIGTERM, how long requests in flight may take before the
    /// server stops anyway.
    pub shutdown_grace_seconds: u64,
    /// Where Prometheus scrapes `/metrics`; none: not served.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl ServerConfig {
    pub const MAIL_FROM_DEFAULT: &'static str = "baobao <no-reply@localhost>";
    pub const WRITTEN_NOTICE_AGE_DAYS_MAX_DEFAULT: u32 = 90;
    pub const EXPORT_DAYS_DEFAULT: u32 = 7;
    pub const SIGN_UPS_PER_ADDRESS_PER_HOUR_DEFAULT: u32 = 30;
    pub const SIGN_INS_PER_ADDRESS_PER_MINUTE_DEFAULT: u32 = 20;
    /// The request timeout and a little more: a request in flight finishes.
    pub const SHUTDOWN_GRACE_SECONDS_DEFAULT: u64 = REQUEST_TIMEOUT_SECONDS + 5;

    /// A configuration with no email, for tools and tests.
    pub fn new(data_dir: PathBuf, clock: ClockMode, gateway: GatewayMode) -> ServerConfig {
        ServerConfig {
            data_dir,
            clock,
            gateway,
            smtp_url: None,
            mail_from: Self::MAIL_FROM_DEFAULT.to_owned(),
            written_notice_age_days_max: Self::WRITTEN_NOTICE_AGE_DAYS_MAX_DEFAULT,
            export_days: Self::EXPORT_DAYS_DEFAULT,
            staff_time_zone: "UTC".to_owned(),
            sign_ups_per_address_per_hour: Self::SIGN_UPS_PER_ADDRESS_PER_HOUR_DEFAULT,
            sign_ins_per_address_per_minute: Self::SIGN_INS_PER_ADDRESS_PER_MINUTE_DEFAULT,
            trusted_proxies: Vec::new(),
            provider: baobao_domain::receipt::Provider::default(),
            public_url: None,
            dispute_deadlines: baobao_domain::dispute::Deadlines::default(),
            shutdown_grace_seconds: Self::SHUTDOWN_GRACE_SECONDS_DEFAULT,
            metrics_listen: None,
        }
    }
}

/// The store and everything else a handler or worker needs.
///
/// `AppState` dereferences to its `Parts`, so `state.clock` reads as
/// before; code that runs inside an open transaction takes `&Parts`
/// instead of `&AppState`, and so cannot reach the store's pool by type:
/// inside a transaction the only way to the database is the `Tx`.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    parts: Arc<Parts>,
}

/// Everything of `AppState` but the store.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub gateway: Arc<dyn PaymentGateway>,
    pub keys: Arc<SigningKeys>,
    pub config: Arc<ServerConfig>,
    pub vault: Arc<crate::vault::Vault>,
    pub mailer: Option<Arc<dyn crate::mail::Mailer>>,
    pub api_keys: Arc<crate::key_cache::ApiKeyCache>,
    pub entitlements: Arc<crate::key_cache::EntitlementCache>,
    pub address_limits: Arc<crate::limits::AddressLimits>,
    /// This process among the servers on the database: it claims
    /// Idempotency-Keys under this name and beats every second, so that a
    /// key it held when it died is freed at once (`idempotency`).
    pub process_id: String,
    /// The requests of this process holding each Idempotency-Key right now
    /// (scope and key): one of its own keys without an answer that no other
    /// request of it holds was left by a request that failed before its
    /// release (the database went away), and the retry may run at once.
    pub in_flight: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// How often a process writes its heartbeat.
pub const PROCESS_HEARTBEAT_MILLISECONDS: u64 = 1000;
/// A process that has not beaten for this long is gone.
pub const PROCESS_ALIVE_SECONDS: i64 = 5;

/// Writes this process's heartbeat while it runs.
async fn heartbeat(store: Store, process_id: String) {
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(PROCESS_HEARTBEAT_MILLISECONDS)).await;
        if let Err(error) = store.process_seen(&process_id, jiff::Timestamp::now()).await {
            tracing::warn!(%error, "this process's heartbeat could not be written");
        }
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.parts
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("database: {0}")]
    Store(#[from] baobao_store::StoreError),
    #[error(transparent)]
    Vault(#[from] crate::vault::VaultError),
    #[error("email: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("the stored simulated time {0:?} is not an instant")]
    SimulatedTime(String),
}

impl AppState {
    pub async fn new(store: Store, config: ServerConfig) -> Result<AppState, StartError> {
        let keys = SigningKeys::load_or_create(&config.data_dir)?;
        let vault = crate::vault::Vault::open(&config.data_dir)?;
        let clock: Arc<dyn Clock> = match config.clock {
            ClockMode::System => Arc::new(SystemClock),
            ClockMode::Simulated => {
                let start = match store.setting(SIMULATED_NOW_SETTING).await? {
                    Some(text) => text.parse().map_err(|_| StartError::SimulatedTime(text))?,
                    None => jiff::Timestamp::now(),
                };
                Arc::new(SimulatedClock::starting_at(start))
            }
        };
        let gateway: Arc<dyn PaymentGateway> = match config.gateway {
            GatewayMode::LedgerOnly => Arc::new(LedgerOnlyGateway),
            GatewayMode::Simulated => Arc::new(SimulatedGateway::default()),
        };
        let mailer: Option<Arc<dyn crate::mail::Mailer>> = match &config.smtp_url {
            Some(url) => Some(Arc::new(crate::mail::SmtpMailer::new(url, &config.mail_from)?)),
            None => None,
        };
        let address_limits = crate::limits::AddressLimits::new(
            config.sign_ups_per_address_per_hour,
            config.sign_ins_per_address_per_minute,
            config.trusted_proxies.clone(),
        );
        let parts = Parts {
            clock,
            gateway,
            keys: Arc::new(keys),
            config: Arc::new(config),
            vault: Arc::new(vault),
            mailer,
            api_keys: Arc::default(),
            entitlements: Arc::default(),
            address_limits: Arc::new(address_limits),
            process_id: format!("prc_{}", crate::random::random_token(12)),
            in_flight: std::sync::Mutex::default(),
        };
        // Named (and alive) before it claims anything.
        store.process_seen(&parts.process_id, jiff::Timestamp::now()).await?;
        tokio::spawn(heartbeat(store.clone(), parts.process_id.clone()));
        let follower = store.clone();
        tokio::spawn(async move { follower.follow_changes().await });
        Ok(AppState { store, parts: Arc::new(parts) })
    }
}
