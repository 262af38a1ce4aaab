//! The `baobao` command: serve, migrate, staff, billing run, verify, demo.
//!
//! Configuration is one typed struct read once, from flags or `BAOBAO_*`
//! environment variables, and passed down. Every command exits non-zero
//! with a one-line reason on failure.

mod demo;
mod progress;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::{AppState, ServerConfig};
use baobao_store::Store;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "baobao",
    version,
    about = "Subscriptions for children's online services: ending one is as easy, fair and verifiable as starting one."
)]
struct Cli {
    /// Database URL: sqlite://PATH (created if missing) or postgres://…
    /// (DATABASE_URL is read too when BAOBAO_DATABASE is unset).
    #[arg(long, global = true, env = "BAOBAO_DATABASE")]
    database: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BAOBAO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Where the signing key and other files live.
    #[arg(long, env = "BAOBAO_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `system`, or `simulated` to let an admin set the time.
    #[arg(long, env = "BAOBAO_CLOCK", value_enum, default_value_t = Clock::System)]
    clock: Clock,
    /// `ledger` (record to the ledger only) or `simulated` (can be told to decline).
    #[arg(long, env = "BAOBAO_GATEWAY", value_enum, default_value_t = Gateway::Ledger)]
    gateway: Gateway,
    /// SMTP relay for email, `smtp://host:port`; without it, emails wait in the outbox.
    #[arg(long, env = "BAOBAO_SMTP_URL")]
    smtp_url: Option<String>,
    /// The sender of email.
    #[arg(long, env = "BAOBAO_MAIL_FROM", default_value = ServerConfig::MAIL_FROM_DEFAULT)]
    mail_from: String,
    /// Written notices received longer ago than this many days are refused.
    #[arg(long, env = "BAOBAO_WRITTEN_NOTICE_AGE_DAYS_MAX", default_value_t = ServerConfig::WRITTEN_NOTICE_AGE_DAYS_MAX_DEFAULT)]
    written_notice_age_days_max: u32,
    /// Days a ready export can be downloaded; then its file is destroyed.
    #[arg(long, env = "BAOBAO_EXPORT_DAYS", default_value_t = ServerConfig::EXPORT_DAYS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=365))]
    export_days: u32,
    /// The time zone of the support office: "today" in the staff console.
    #[arg(long, env = "BAOBAO_STAFF_TIME_ZONE", default_value = "UTC")]
    staff_time_zone: String,
    /// Sign-ups allowed per client address and hour (per server).
    #[arg(long, env = "BAOBAO_SIGN_UPS_PER_ADDRESS_PER_HOUR", default_value_t = ServerConfig::SIGN_UPS_PER_ADDRESS_PER_HOUR_DEFAULT)]
    sign_ups_per_address_per_hour: u32,
    /// Sign-ins allowed per client address and minute (per server).
    #[arg(long, env = "BAOBAO_SIGN_INS_PER_ADDRESS_PER_MINUTE", default_value_t = ServerConfig::SIGN_INS_PER_ADDRESS_PER_MINUTE_DEFAULT)]
    sign_ins_per_address_per_minute: u32,
    /// A reverse proxy whose X-Forwarded-For names the client (repeat or comma-separate).
    #[arg(long, env = "BAOBAO_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// The provider's legal name: on every receipt and email.
    #[arg(long, env = "BAOBAO_PROVIDER_NAME")]
    provider_name: Option<String>,
    /// The provider's support email address.
    #[arg(long, env = "BAOBAO_PROVIDER_EMAIL")]
    provider_email: Option<String>,
    /// The provider's support phone number.
    #[arg(long, env = "BAOBAO_PROVIDER_PHONE")]
    provider_phone: Option<String>,
    /// The postal address for written notices (letters).
    #[arg(long, env = "BAOBAO_PROVIDER_ADDRESS")]
    provider_address: Option<String>,
    /// Where complaints go when support did not settle them (mediation, a regulator).
    #[arg(long, env = "BAOBAO_PROVIDER_COMPLAINTS")]
    provider_complaints: Option<String>,
    /// The portal's public address (`https://…`), for links in emails.
    #[arg(long, env = "BAOBAO_PUBLIC_URL")]
    public_url: Option<String>,
    /// Dispute deadlines, hours to first response / to resolution, per level
    /// (others keep their defaults: support=24/168, supervisor=24/168,
    /// external_mediation=72/720, legal=168/1440, forwarded=168), e.g.
    /// `support=12/120,forwarded=168`.
    #[arg(long, env = "BAOBAO_DISPUTE_DEADLINES", value_parser = parse_deadlines)]
    dispute_deadlines: Option<baobao_domain::dispute::Deadlines>,
    /// After SIGTERM, seconds that requests in flight may take before the server stops anyway.
    #[arg(long, env = "BAOBAO_SHUTDOWN_GRACE_SECONDS", default_value_t = ServerConfig::SHUTDOWN_GRACE_SECONDS_DEFAULT, value_parser = clap::value_parser!(u64).range(0..=600))]
    shutdown_grace_seconds: u64,
    /// Serve Prometheus metrics at http://ADDRESS/metrics (keep it private: loopback or the monitoring network).
    #[arg(long, env = "BAOBAO_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
}

fn parse_deadlines(text: &str) -> Result<baobao_domain::dispute::Deadlines, String> {
    baobao_domain::dispute::Deadlines::default().with_overrides(text)
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Clock {
    System,
    Simulated,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Gateway {
    Ledger,
    Simulated,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the API server.
    Serve(ServeArgs),
    /// Apply pending database migrations.
    Migrate,
    /// Manage staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Billing: renewals, scheduled cancellations, fees and refunds.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Print the OpenAPI document (as served at /openapi.json).
    Openapi,
    /// Check a signed receipt, certificate or data export (ZIP) offline.
    Verify {
        /// The receipt (JSON) or export (ZIP) to check.
        file: PathBuf,
        /// A keys.json as published at /.well-known/baobao/keys.json.
        #[arg(long, conflicts_with = "data_dir")]
        keys: Option<PathBuf>,
        /// Or the server's data directory (its signing key).
        #[arg(long, env = "BAOBAO_DATA_DIR")]
        data_dir: Option<PathBuf>,
        /// Also prove the file is in this server's audit log (an inclusion
        /// proof against its signed tree head), e.g. https://baobao.example
        #[arg(long, conflicts_with = "proof")]
        server: Option<String>,
        /// Or prove it offline, from its proof of logging as downloaded
        /// (GET /v1/audit/documents/{sha256}/proof, "Proof of logging" on
        /// the receipt page).
        #[arg(long)]
        proof: Option<PathBuf>,
    },
    /// The audit log: check it whole against its signed tree heads.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the database while it runs (SQLite; for PostgreSQL, says how
    /// to use pg_dump). The copy holds no readable child's record: those are
    /// sealed under keys in the data directory's vault, which is not copied.
    Backup {
        /// The file to write (it must not exist yet).
        #[arg(long)]
        to: PathBuf,
    },
    /// The master key that wraps children's data keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Write a family's data export to a file (what `POST /v1/families/{id}/exports` builds).
    Export {
        /// The family (fam_…).
        #[arg(long)]
        family: String,
        /// Where to write the ZIP.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "BAOBAO_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
    /// Serve a demo with sample plans, a family and a child, on the embedded SQLite.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
    },
}

#[derive(Subcommand, Debug)]
enum StaffCommand {
    /// Create a staff account.
    Create {
        #[arg(long)]
        email: String,
        /// The password (or BAOBAO_STAFF_PASSWORD, which keeps it out of the process list).
        #[arg(long, env = "BAOBAO_STAFF_PASSWORD", hide_env_values = true)]
        password: String,
        /// agent, supervisor, finance, compliance or admin.
        #[arg(long)]
        role: String,
    },
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Recompute every leaf from the entries and every signed head's root;
    /// name the first leaf that was changed, deleted, reordered or cut off.
    Verify {
        /// A keys.json as published at /.well-known/baobao/keys.json.
        #[arg(long, conflicts_with = "data_dir")]
        keys: Option<PathBuf>,
        /// Or the server's data directory (its signing key).
        #[arg(long, env = "BAOBAO_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Watch a server's log from outside: keep the tree heads seen in a
    /// file and check each new one extends the last (run it on a schedule).
    Watch {
        /// The server, e.g. https://baobao.example
        url: String,
        /// Where the heads seen (and the server's key, as first seen) are kept.
        #[arg(long, default_value = "baobao-watch.json")]
        state: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Make a new master key current and re-wrap every data key with it (records are untouched).
    RotateMaster {
        #[arg(long, env = "BAOBAO_DATA_DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum BillingCommand {
    /// Run billing now, or at an earlier instant (--at RFC 3339).
    Run {
        #[arg(long)]
        at: Option<String>,
        #[command(flatten)]
        serve: ServeArgs,
    },
}

impl ServeArgs {
    fn config(&self) -> ServerConfig {
        let clock = match self.clock {
            Clock::System => ClockMode::System,
            Clock::Simulated => ClockMode::Simulated,
        };
        let gateway = match self.gateway {
            Gateway::Ledger => GatewayMode::LedgerOnly,
            Gateway::Simulated => GatewayMode::Simulated,
        };
        ServerConfig {
            smtp_url: self.smtp_url.clone(),
            mail_from: self.mail_from.clone(),
            written_notice_age_days_max: self.written_notice_age_days_max,
            export_days: self.export_days,
            staff_time_zone: self.staff_time_zone.clone(),
            sign_ups_per_address_per_hour: self.sign_ups_per_address_per_hour,
            sign_ins_per_address_per_minute: self.sign_ins_per_address_per_minute,
            trusted_proxies: self.trusted_proxy.clone(),
            provider: baobao_domain::receipt::Provider {
                legal_name: self.provider_name.clone().unwrap_or_default(),
                support_email: self.provider_email.clone(),
                support_phone: self.provider_phone.clone(),
                postal_address: self.provider_address.clone(),
                complaints: self.provider_complaints.clone(),
            },
            public_url: self.public_url.clone(),
            dispute_deadlines: self.dispute_deadlines.unwrap_or_default(),
            shutdown_grace_seconds: self.shutdown_grace_seconds,
            metrics_listen: self.metrics_listen,
            ..ServerConfig::new(self.data_dir.clone(), clock, gateway)
        }
    }
}

fn database_url(cli: &Cli) -> String {
    cli.database
        .clone()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .unwrap_or_else(|| "sqlite://baobao.db".to_owned())
}

async fn open_store(url: &str) -> Result<Store> {
    let store = Store::connect(url).await.context("cannot open the database")?;
    let applied = store.migrate().await.context("cannot migrate the database")?;
    for name in applied {
        eprintln!("baobao: applied migration {name}");
    }
    Ok(store)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let reason: Vec<String> = error.chain().map(|e| e.to_string()).collect();
            eprintln!("baobao: error: {}", reason.join(": "));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let url = database_url(&cli);
    match cli.command {
        Command::Serve(args) => {
            let store = open_store(&url).await?;
            let config = args.config();
            if !config.provider.is_set() {
                eprintln!(
                    "baobao: no provider configured (--provider-name, BAOBAO_PROVIDER_*): receipts and emails will not say who issued them"
                );
            }
            let state = AppState::new(store, config).await?;
            baobao_server::serve(state, args.listen, |addr| {
                eprintln!("baobao: serving on http://{addr} ({})", engine_name(&url));
            })
            .await
            .context("server failed")?;
        }
        Command::Migrate => {
            let store = Store::connect(&url).await.context("cannot open the database")?;
            let applied = store.migrate().await.context("cannot migrate the database")?;
            if applied.is_empty() {
                println!("schema is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
        }
        Command::Staff { command: StaffCommand::Create { email, password, role } } => {
            let store = open_store(&url).await?;
            let state = AppState::new(store, ServeArgs::default_config()).await?;
            let id = baobao_server::services::accounts::create_staff(&state, "operator", &email, &password, &role)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(baobao_server::messages::render(e.code, Default::default(), &e.details))
                })?;
            state.store.append_pending().await?;
            println!("created {role} {id}");
        }
        Command::Billing { command: BillingCommand::Run { at, serve } } => {
            let store = open_store(&url).await?;
            let state = AppState::new(store, serve.config()).await?;
            let now = state.clock.now();
            let at = match at {
                None => now,
                Some(text) => {
                    let at: jiff::Timestamp =
                        text.parse().with_context(|| format!("--at {text:?} is not an RFC 3339 instant"))?;
                    if at > now {
                        bail!("--at {at} is in the future (now is {now}); billing never runs ahead of the clock");
                    }
                    at
                }
            };
            let due = state.store.due_count(at).await?;
            eprintln!("baobao: billing at {at}: {due} subscription(s) due");
            let shown = progress::Progress::new("billing run", Some(u64::try_from(due).unwrap_or(0)), "subscriptions");
            let store = state.store.clone();
            let summary = progress::watching(shown, baobao_server::services::billing::run(&state, at), async || {
                let left = store.due_count(at).await.ok()?;
                u64::try_from(due.saturating_sub(left)).ok()
            })
            .await
            .map_err(|e| anyhow::anyhow!("billing run failed: {}", e.internal.unwrap_or_else(|| e.code.to_owned())))?;
            // The run's audit entries take their places in the log now,
            // whether or not a server's appender is running.
            state.store.append_pending().await?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&baobao_server::api::openapi_document())?);
        }
        Command::Verify { file, keys, data_dir, server, proof } => {
            let log = match (server, proof) {
                (Some(server), _) => verify::Log::Server(server),
                (None, Some(proof)) => verify::Log::Proof(proof),
                (None, None) => verify::Log::Unchecked,
            };
            verify::run(&file, keys.as_deref(), data_dir.as_deref(), log).await?
        }
        Command::Audit { command: AuditCommand::Verify { keys, data_dir } } => {
            let key_set = verify::key_set(keys.as_deref(), data_dir.as_deref())?;
            let store = open_store(&url).await?;
            eprintln!("baobao: recomputing the audit log from the database…");
            match baobao_server::services::audit_log::verify(&store, &key_set).await {
                Ok(report) => println!(
                    "OK: {} leaves, {} signed tree heads, every one consistent; root {}; {} entries committed and \
                     waiting for the appender",
                    report.leaves, report.heads, report.root_hash, report.pending
                ),
                Err(fault) => bail!("the audit log does NOT verify: {fault}"),
            }
        }
        Command::Audit { command: AuditCommand::Watch { url, state } } => watch(&url, &state).await?,
        Command::Backup { to } => {
            if url.starts_with("postgres") {
                bail!(
                    "a PostgreSQL database is backed up with its own tools: pg_dump --format=custom --file=baobao.dump \"$DATABASE_URL\" (restore with pg_restore --clean --dbname=…), then baobao audit verify against the restored copy"
                );
            }
            if to.exists() {
                bail!("{} exists already: choose a new file", to.display());
            }
            let store = Store::connect(&url).await.context("cannot open the database")?;
            store.append_pending().await.context("cannot append the audit log's pending entries")?;
            let source = url.trim_start_matches("sqlite:").trim_start_matches("//");
            let source = source.split('?').next().unwrap_or(source);
            let shown = progress::Progress::new("backup", file_size(std::path::Path::new(source)), "bytes");
            progress::watching(shown, store.backup_to(&to), async || file_size(&to))
                .await
                .with_context(|| format!("cannot write {}", to.display()))?;
            let bytes = std::fs::metadata(&to).map(|m| m.len()).unwrap_or_default();
            println!(
                "backed up to {} ({bytes} bytes); check it with: baobao audit verify --database sqlite://{} --data-dir DATA_DIR",
                to.display(),
                to.display()
            );
        }
        Command::Keys { command: KeysCommand::RotateMaster { data_dir } } => {
            let vault = baobao_server::vault::Vault::open(&data_dir)?;
            let before = vault.current_master_id();
            let (after, rewrapped) = vault.rotate_master()?;
            println!("master key {before} → {after}; {rewrapped} data key(s) re-wrapped; records untouched");
        }
        Command::Export { family, out, data_dir } => {
            let store = open_store(&url).await?;
            let config = ServerConfig::new(data_dir, ClockMode::System, GatewayMode::LedgerOnly);
            let state = AppState::new(store, config).await?;
            let family_id = baobao_domain::ids::FamilyId::parse(&family)?;
            state.store.family(&family_id).await.context("no such family")?;
            let shown = progress::Progress::new("export", None, "bytes");
            let written = baobao_server::services::exports::write_file(&state, &family_id, &out);
            let (sha256, size) = progress::watching(shown, written, async || file_size(&out))
                .await
                .map_err(|e| anyhow::anyhow!("export failed: {}", e.internal.unwrap_or_else(|| e.code.to_owned())))?;
            state.store.append_pending().await?;
            println!("wrote {} ({size} bytes, sha256 {sha256})", out.display());
        }
        Command::Demo { serve } => demo::run(&url, serve).await?,
    }
    Ok(())
}

/// A file's size now, for progress shown while it is written.
fn file_size(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// One run of `baobao audit watch`.
async fn watch(url: &str, path: &std::path::Path) -> Result<()> {
    use baobao_server::services::audit_log::{WatchState, watch_once};
    let mut state = match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str::<WatchState>(&text).with_context(|| format!("{} is damaged", path.display()))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            WatchState { server: url.to_owned(), ..WatchState::default() }
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if state.server.trim_end_matches('/') != url.trim_end_matches('/') {
        bail!("{} watches {}, not {url}: use another --state file", path.display(), state.server);
    }
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
    let head =
        watch_once(&client, &mut state).await.map_err(|fault| anyhow::anyhow!("the log is NOT consistent: {fault}"))?;
    let temporary = path.with_extension("json.partial");
    std::fs::write(&temporary, serde_json::to_vec_pretty(&state)?)?;
    std::fs::rename(&temporary, path)?;
    println!(
        "OK: {} entries, root {}, consistent with the {} head(s) kept in {}",
        head.tree_size,
        head.root_hash,
        state.heads.len(),
        path.display()
    );
    Ok(())
}

impl ServeArgs {
    fn default_config() -> ServerConfig {
        let data_dir =
            std::env::var_os("BAOBAO_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("./data"));
        ServerConfig::new(data_dir, ClockMode::System, GatewayMode::LedgerOnly)
    }
}

fn engine_name(url: &str) -> &'static str {
    if url.starts_with("sqlite:") { "SQLite" } else { "PostgreSQL" }
}
