//! `TestApp`: a running server and a client with typed helpers.

use baobao_server::keys::KeySet;
use baobao_server::receipts::{self, ReceiptDocument};
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::{AppState, ServerConfig};
use baobao_store::Engine;
use baobao_store::testing::{TestDatabase, fresh_database};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Every story starts on 10 January 2027, 10:00 in Shanghai.
pub const START: &str = "2027-01-10T02:00:00Z";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub admin: String,
    pub db: TestDatabase,
    pub data_dir: tempfile::TempDir,
    pub state: AppState,
}

pub struct Guardian {
    pub token: String,
    pub family_id: String,
}

pub struct Response {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> TestApp {
        TestApp::spawn_configured(engine, |_| {}).await
    }

    /// A server whose email goes to the SMTP relay at `smtp_url`.
    pub async fn spawn_with_smtp(engine: Engine, smtp_url: &str) -> TestApp {
        TestApp::spawn_configured(engine, |config| config.smtp_url = Some(smtp_url.to_owned())).await
    }

    /// A server with its configuration changed by `configure`. Every story
    /// comes from 127.0.0.1, so the per-address limits are set high unless
    /// `configure` sets them.
    pub async fn spawn_configured(engine: Engine, configure: impl FnOnce(&mut ServerConfig)) -> TestApp {
        let db = fresh_database(engine).await;
        db.store.set_setting(baobao_server::clock::SIMULATED_NOW_SETTING, START).await.unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            sign_ups_per_address_per_hour: 100_000,
            sign_ins_per_address_per_minute: 100_000,
            ..ServerConfig::new(data_dir.path().to_owned(), ClockMode::Simulated, GatewayMode::Simulated)
        };
        configure(&mut config);
        let state = AppState::new(db.store.clone(), config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let app = baobao_server::app(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        baobao_server::services::accounts::create_staff(
            &state,
            "operator",
            "admin@test.example",
            "admin-password-1",
            "admin",
        )
        .await
        .unwrap();
        let mut app = TestApp {
            address,
            client: reqwest::Client::new(),
            admin: String::new(),
            db,
            data_dir,
            state: state.clone(),
        };
        let session = app
            .post(
                "/v1/auth/sessions",
                None,
                json!({"email": "admin@test.example", "password": "admin-password-1", "realm": "staff"}),
            )
            .await;
        assert_eq!(session.status, StatusCode::CREATED, "{}", session.body);
        app.admin = session.body["token"].as_str().unwrap().to_owned();
        app
    }

    /// Another server on the same database and data directory (as behind
    /// a load balancer); its address.
    pub async fn second_server(&self) -> String {
        let store = baobao_store::Store::connect(&self.db.url).await.unwrap();
        let config = ServerConfig {
            sign_ups_per_address_per_hour: 100_000,
            sign_ins_per_address_per_minute: 100_000,
            ..ServerConfig::new(self.data_dir.path().to_owned(), ClockMode::Simulated, GatewayMode::Simulated)
        };
        let state = AppState::new(store, config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let app = baobao_server::app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        address
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        lang: &str,
    ) -> Response {
        let mut request =
            self.client.request(method, format!("{}{path}", self.address)).header("accept-language", lang);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Response { status, body, headers }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.request(Method::POST, path, token, Some(body), "en").await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None, "en").await
    }

    pub async fn sign_up(&self, email: &str) -> Guardian {
        let response = self
            .post(
                "/v1/families",
                None,
                json!({"guardian": {"email": email, "password": "a long password", "name": "王芳", "locale": "zh-CN", "time_zone": "Asia/Shanghai"}}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        Guardian {
            token: response.body["token"].as_str().unwrap().to_owned(),
            family_id: response.body["family"]["id"].as_str().unwrap().to_owned(),
        }
    }

    /// A plan with DESIGN.md's fields; `overrides` replace the defaults.
    pub async fn create_plan(&self, overrides: Value) -> Value {
        let mut policy = json!({
            "price": {"amount_minor": 3900, "currency": "CNY"},
            "period": "P1M",
            "notice_days": 7,
            "cooling_off_days": 7,
            "allow_immediate": true,
            "refund_on_immediate": "prorated",
            "retention_days": 30,
        });
        for (key, value) in overrides.as_object().unwrap() {
            policy[key] = value.clone();
        }
        let response = self
            .post(
                "/v1/plans",
                Some(&self.admin),
                json!({"service": "edu", "name": {"zh-CN": "月度会员", "en": "Monthly"}, "policy": policy}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }

    pub async fn subscribe(&self, guardian: &Guardian, plan: &Value) -> Value {
        let response = self
            .post(
                "/v1/subscriptions",
                Some(&guardian.token),
                json!({"plan_id": plan["id"], "accept_policy_sha256": plan["policy"]["sha256"]}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }

    pub async fn set_clock(&self, now: &str) {
        let response = self.post("/v1/admin/clock", Some(&self.admin), json!({"now": now})).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }

    pub async fn billing_run(&self) -> Value {
        let response = self.post("/v1/admin/billing-runs", Some(&self.admin), json!({})).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body
    }

    pub async fn quote(&self, guardian: &Guardian, subscription_id: &str) -> Value {
        let response =
            self.get(&format!("/v1/subscriptions/{subscription_id}/cancellation-quote"), Some(&guardian.token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body
    }

    pub async fn cancel(&self, guardian: &Guardian, subscription_id: &str, body: Value) -> Response {
        self.post(&format!("/v1/subscriptions/{subscription_id}/cancellations"), Some(&guardian.token), body).await
    }

    pub async fn subscription(&self, guardian: &Guardian, subscription_id: &str) -> Value {
        let response = self.get(&format!("/v1/subscriptions/{subscription_id}"), Some(&guardian.token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body
    }

    pub async fn statement(&self, guardian: &Guardian) -> Vec<Value> {
        let response = self.get(&format!("/v1/families/{}/statement", guardian.family_id), Some(&guardian.token)).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
        response.body["entries"].as_array().unwrap().clone()
    }

    /// Checks a receipt against the published keys, as a parent's tool would.
    pub async fn assert_receipt_verifies(&self, receipt: &Value) {
        let keys: KeySet = serde_json::from_value(self.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
        let document: ReceiptDocument = serde_json::from_value(receipt.clone()).unwrap();
        receipts::verify(&document, &keys).unwrap();
    }
}

impl TestApp {
    /// The email of `template` queued for the family, rendered in `locale` as it would be sent.
    pub async fn queued_email(&self, guardian: &Guardian, template: &str, locale: baobao_domain::Locale) -> String {
        let family_id = baobao_domain::ids::FamilyId::parse(&guardian.family_id).unwrap();
        let outbox = self.state.store.outbox_of(&family_id).await.unwrap();
        let message = outbox.iter().find(|m| m.template == template).unwrap_or_else(|| panic!("no {template} email"));
        let payload: Value = serde_json::from_str(&message.payload).unwrap();
        baobao_server::mail::render(
            template,
            locale,
            "guardian@example.com",
            &payload,
            "<m@baobao>",
            &baobao_server::mail::Letterhead {
                provider: &self.state.config.provider,
                public_url: self.state.config.public_url.as_deref(),
                keys: &self.state.keys,
            },
        )
        .text
    }
}

/// The entries of `kind` in a statement.
pub fn entries<'a>(statement: &'a [Value], kind: &str) -> Vec<&'a Value> {
    statement.iter().filter(|e| e["kind"] == kind).collect()
}

pub fn amount(entry: &Value) -> i64 {
    entry["amount"]["amount_minor"].as_i64().unwrap()
}

pub fn option<'a>(quote: &'a Value, name: &str) -> &'a Value {
    quote["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["option"] == name)
        .unwrap_or_else(|| panic!("no {name} in {quote}"))
}

impl TestApp {
    /// An API key for an integrator of `service`.
    pub async fn api_key(&self, service: &str) -> String {
        let response = self
            .post("/v1/api-keys", Some(&self.admin), json!({"service": service, "name": format!("{service} app")}))
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body["key"].as_str().unwrap().to_owned()
    }

    /// A staff member's session token.
    pub async fn staff(&self, email: &str, role: &str) -> String {
        baobao_server::services::accounts::create_staff(&self.state, "operator", email, "staff-password-1", role)
            .await
            .unwrap();
        let session = self
            .post("/v1/auth/sessions", None, json!({"email": email, "password": "staff-password-1", "realm": "staff"}))
            .await;
        session.body["token"].as_str().unwrap().to_owned()
    }

    pub async fn add_child(&self, guardian: &Guardian, name: &str) -> String {
        let response = self
            .post(
                &format!("/v1/families/{}/children", guardian.family_id),
                Some(&guardian.token),
                json!({"name": name, "birth_date": "2019-05-01", "consent": true}),
            )
            .await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body["id"].as_str().unwrap().to_owned()
    }

    /// Asks for an export of the guardian's family and waits until it is built.
    pub async fn export_ready(&self, guardian: &Guardian) -> Value {
        let requested =
            self.post(&format!("/v1/families/{}/exports", guardian.family_id), Some(&guardian.token), json!({})).await;
        assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
        assert_eq!(requested.body["status"], "pending");
        let export_id = requested.body["id"].as_str().unwrap().to_owned();
        for _ in 0..400 {
            let status = self.get(&format!("/v1/exports/{export_id}"), Some(&guardian.token)).await.body;
            if status["status"] != "pending" {
                assert_eq!(status["status"], "ready", "{status}");
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the export {export_id} was not built in 10 s");
    }

    pub async fn write_record(&self, key: &str, child_id: &str, kind: &str, body: Value) -> Response {
        self.post(
            &format!("/v1/children/{child_id}/records"),
            Some(key),
            json!({"kind": kind, "recorded_at": "2027-01-09T08:00:00Z", "body": body}),
        )
        .await
    }
}

/// Phrases that read the same in every language: a command, format names.
const NEUTRAL_PHRASES: [&str; 4] = [
    "baobao verify receipt.json --keys keys.json --proof proof-of-logging.json",
    "baobao verify receipt.json --keys keys.json",
    "baobao verify",
    "JSON Lines",
];
/// Letters that are names in every language (formats, algorithms, units).
const NEUTRAL_WORDS: [&str; 21] = [
    "UTC", "JSON", "json", "jsonl", "CSV", "csv", "ZIP", "SHA", "Ed", "XChaCha", "Poly", "PDF", "JPEG", "PNG", "KiB",
    "MiB", "BB", "ed", "ID", "eml", "txt",
];

/// The extensions of the files an export holds and a receipt downloads as.
const FILE_EXTENSIONS: [&str; 5] = ["json", "jsonl", "csv", "html", "zip"];

/// The text a reader sees on a page: no tags, scripts or styles, and no
/// element marked as being in a language of its own (`lang="…"`, as the
/// language switch is), entities decoded.
pub fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        text.push(' ');
        let after = &rest[open..];
        let close = after.find('>').map_or(after.len(), |i| i + 1);
        let tag = &after[..close];
        let name: String = tag[1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
        let skip_to = |end: &str| after.find(end).map_or(after.len(), |i| i + end.len());
        let own_language = !name.is_empty() && name != "html" && tag.contains(" lang=\"");
        rest = if name == "script" || name == "style" || own_language {
            &after[skip_to(&format!("</{name}>"))..]
        } else {
            &after[close..]
        };
    }
    text.push_str(rest);
    text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&nbsp;", " ")
}

fn is_chinese(c: char) -> bool {
    matches!(c, '\u{3000}'..='\u{303f}' | '\u{4e00}'..='\u{9fff}' | '\u{ff00}'..='\u{ffef}')
}

/// A run of ASCII that reads the same in every language: an id, a receipt
/// number, a hash or signature, an address, a path or time-zone name, a
/// number, or format names.
fn neutral(run: &str) -> bool {
    let lower_id = run.split_once('_').is_some_and(|(prefix, rest)| {
        prefix.chars().all(|c| c.is_ascii_lowercase()) && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    // A hash, a signature, a gateway's reference (`sim:charge:sub_…:…`).
    let long_token = run.len() >= 16 && run.chars().all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c));
    // A file's name (`manifest.json`, `statement.csv`).
    let file_name = run.rsplit_once('.').is_some_and(|(_, extension)| FILE_EXTENSIONS.contains(&extension));
    lower_id
        || long_token
        || file_name
        || run.contains('@')
        || run.contains('/')
        || run.starts_with("BB-")
        || run.starts_with("ed25519-")
        || run
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|word| !word.is_empty())
            .all(|word| NEUTRAL_WORDS.contains(&word))
}

/// Words of the other language on a page or in an email meant for
/// `locale` (`zh-CN` or `en`), once what people typed (`typed`) is set
/// aside. Empty when the text speaks one language.
pub fn other_language(html: &str, locale: &str, typed: &[&str]) -> Vec<String> {
    let mut text = visible_text(html);
    let mut set_aside: Vec<&str> = typed.iter().copied().chain(NEUTRAL_PHRASES).filter(|s| !s.is_empty()).collect();
    set_aside.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for phrase in set_aside {
        text = text.replace(phrase, " ");
    }
    let mut stray = Vec::new();
    if locale == "en" {
        let mut run = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if is_chinese(c) {
                run.push(c);
            } else if !run.is_empty() {
                stray.push(std::mem::take(&mut run));
            }
        }
    } else {
        for run in text.split(|c: char| !(c.is_ascii_graphic()) || "()[]{},;\"'!?".contains(c)) {
            let run = run.trim_matches(|c: char| ".:".contains(c));
            if run.chars().any(|c| c.is_ascii_alphabetic()) && !neutral(run) {
                stray.push(run.to_owned());
            }
        }
    }
    stray.dedup();
    stray
}
