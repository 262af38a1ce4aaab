//! Every route × every kind of caller: who is let in, who is turned away,
//! and how. The table below is written independently of the code; a route
//! in `/openapi.json` without a row fails the test, so no route can be added
//! without saying who may call it.

use std::collections::BTreeSet;

use baobao_store::Engine;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(every_route_admits_exactly_the_callers_it_names);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Who {
    Anonymous,
    Guardian,
    OtherGuardian,
    Agent,
    Supervisor,
    Finance,
    Compliance,
    Admin,
    Integrator,
}

use Who::*;

const EVERYONE: &[Who] =
    &[Anonymous, Guardian, OtherGuardian, Agent, Supervisor, Finance, Compliance, Admin, Integrator];
const STAFF: &[Who] = &[Agent, Supervisor, Finance, Compliance, Admin];

/// What the family's own guardian may do, others of their kind get 404 for.
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) allowed: Vec<Who>,
    /// Scoped to one family: another family's guardian is told "not found".
    family_scoped: bool,
}

fn route(method: Method, path: &'static str, allowed: &[Who], family_scoped: bool) -> Route {
    Route { method, path, allowed: allowed.to_vec(), family_scoped }
}

fn with(base: &[Who], more: &[Who]) -> Vec<Who> {
    base.iter().chain(more).copied().collect()
}

pub(crate) fn table() -> Vec<Route> {
    let guardians = [Guardian, OtherGuardian];
    let g_staff = with(&guardians, STAFF);
    vec![
        route(Method::POST, "/v1/auth/sessions", EVERYONE, false),
        route(Method::POST, "/v1/families", EVERYONE, false),
        route(Method::GET, "/v1/plans", EVERYONE, false),
        route(Method::GET, "/v1/plans/{id}", EVERYONE, false),
        route(Method::GET, "/.well-known/baobao/keys.json", EVERYONE, false),
        route(Method::GET, "/healthz", EVERYONE, false),
        // The audit log is for anyone to watch.
        route(Method::GET, "/v1/audit/tree-head", EVERYONE, false),
        route(Method::GET, "/v1/audit/proofs/inclusion", EVERYONE, false),
        route(Method::GET, "/v1/audit/proofs/consistency", EVERYONE, false),
        route(Method::GET, "/v1/audit/documents/{sha256}", EVERYONE, false),
        route(Method::GET, "/v1/audit/documents/{sha256}/proof", EVERYONE, false),
        route(Method::GET, "/v1/audit/entries", &with(&guardians, &[Compliance, Admin]), false),
        route(Method::GET, "/readyz", EVERYONE, false),
        route(Method::POST, "/v1/plans", &[Admin], false),
        route(Method::POST, "/v1/plans/{id}/policies", &[Admin], false),
        route(Method::POST, "/v1/api-keys", &[Admin], false),
        route(Method::GET, "/v1/admin/clock", &[Admin], false),
        route(Method::POST, "/v1/admin/clock", &[Admin], false),
        route(Method::POST, "/v1/admin/billing-runs", &[Admin], false),
        route(Method::POST, "/v1/admin/gateway", &[Admin], false),
        route(Method::GET, "/v1/families/{id}", &g_staff, true),
        route(Method::GET, "/v1/families/{id}/subscriptions", &g_staff, true),
        route(Method::GET, "/v1/families/{id}/receipts", &g_staff, true),
        route(Method::GET, "/v1/families/{id}/statement", &with(&guardians, &[Finance]), true),
        route(
            Method::GET,
            "/v1/families/{id}/children",
            &with(&guardians, &[Agent, Supervisor, Compliance, Admin]),
            true,
        ),
        route(Method::POST, "/v1/families/{id}/children", &guardians, true),
        route(Method::GET, "/v1/families/{id}/exports", &guardians, true),
        route(Method::POST, "/v1/families/{id}/exports", &guardians, true),
        route(Method::POST, "/v1/families/{id}/deletion-requests", &guardians, true),
        route(Method::POST, "/v1/subscriptions", &guardians, false),
        route(Method::GET, "/v1/subscriptions/{id}", &g_staff, true),
        // DESIGN.md gives the quote to guardians and staff: finance and
        // compliance answer "what would leaving cost" too.
        route(Method::GET, "/v1/subscriptions/{id}/cancellation-quote", &g_staff, true),
        route(Method::POST, "/v1/subscriptions/{id}/cancellations", &with(&guardians, &[Agent, Supervisor]), true),
        route(Method::POST, "/v1/subscriptions/{id}/resume", &guardians, true),
        route(Method::GET, "/v1/cancellations/{id}", &g_staff, true),
        route(Method::GET, "/v1/receipts/{id}", &g_staff, true),
        route(Method::GET, "/v1/children/{id}/records", &with(&guardians, &[Compliance]), true),
        route(Method::POST, "/v1/children/{id}/records", &[Integrator], false),
        route(Method::GET, "/v1/exports/{id}", &guardians, true),
        route(Method::GET, "/v1/exports/{id}/download", &guardians, true),
        route(Method::GET, "/v1/deletion-requests/{id}", &with(&guardians, &[Compliance]), true),
        route(Method::GET, "/v1/deletion-certificates/{id}", &with(&guardians, &[Compliance]), true),
        route(Method::GET, "/v1/entitlements", &[Integrator], false),
        route(Method::GET, "/v1/families", STAFF, false),
        route(Method::POST, "/v1/families/{id}/verification-codes", &[Agent, Supervisor], false),
        route(Method::POST, "/v1/written-notices", &[Agent, Supervisor], false),
        route(Method::GET, "/v1/written-notices", &[Agent, Supervisor, Compliance, Admin], false),
        route(Method::GET, "/v1/written-notices/{id}/evidence", &[Agent, Supervisor, Compliance], false),
        route(Method::POST, "/v1/staff", &[Admin], false),
        route(Method::POST, "/v1/webhook-endpoints", &[Admin], false),
        route(Method::GET, "/v1/webhook-endpoints", STAFF, false),
        route(Method::GET, "/v1/webhook-endpoints/{id}/deliveries", STAFF, false),
        route(Method::GET, "/v1/finance/failed-payments", &[Finance, Admin], false),
        // Disputes: the family's guardians and the staff who answer them;
        // every staff role reads them; compliance and admin report on them.
        route(Method::POST, "/v1/disputes", &with(&guardians, &[Agent, Supervisor, Compliance]), false),
        route(Method::GET, "/v1/disputes", &g_staff, false),
        route(Method::GET, "/v1/disputes/{id}", &g_staff, true),
        route(Method::POST, "/v1/disputes/{id}/messages", &with(&guardians, &[Agent, Supervisor, Compliance]), true),
        route(Method::POST, "/v1/disputes/{id}/escalate", &with(&guardians, &[Agent, Supervisor, Compliance]), true),
        route(Method::POST, "/v1/disputes/{id}/resolve", &with(&guardians, &[Agent, Supervisor, Compliance]), true),
        route(Method::GET, "/v1/disputes/{id}/evidence/{sha256}", &g_staff, true),
        route(Method::GET, "/v1/disputes/{id}/dossier", &g_staff, true),
        route(Method::GET, "/v1/families/{id}/disputes", &g_staff, true),
        // After the account closed: with a kept receipt and a code, anyone.
        route(Method::POST, "/v1/disputes/codes", EVERYONE, false),
        route(Method::POST, "/v1/disputes/by-receipt", EVERYONE, false),
        route(Method::GET, "/v1/reports/disputes", &[Compliance, Admin], false),
        // Signing out ends the session it is called with: tested on its own in access.rs.
        route(Method::DELETE, "/v1/auth/sessions/current", &with(&guardians, &with(STAFF, &[Integrator])), false),
    ]
}

/// A family with every kind of thing a route can name (a plan, a
/// subscription and its receipt, a child, a cancellation, an export, a
/// deletion and its certificate, a webhook endpoint, a dispute with
/// evidence), another family, and a token for every kind of caller.
pub(crate) struct Fixture {
    tokens: Vec<(Who, String)>,
    family_id: String,
    plan_id: String,
    subscription_id: String,
    cancellation_id: String,
    receipt_id: String,
    child_id: String,
    export_id: String,
    deletion_id: String,
    certificate_id: String,
    endpoint_id: String,
    dispute_id: String,
    evidence_sha256: String,
}

impl Fixture {
    pub(crate) async fn new(app: &TestApp) -> Fixture {
        let plan = app.create_plan(json!({})).await;
        let plan_id = plan["id"].as_str().unwrap().to_owned();
        let play = app
            .post(
                "/v1/plans",
                Some(&app.admin),
                json!({"service": "play", "name": {"zh-CN": "游戏", "en": "Play"}, "policy": {"price": {"amount_minor": 900, "currency": "CNY"}, "period": "P1M", "retention_days": 30}}),
            )
            .await;
        assert_eq!(play.status, StatusCode::CREATED, "{}", play.body);
        let owner = app.sign_up("owner@example.com").await;
        let other = app.sign_up("other@example.com").await;
        let subscribed = app.subscribe(&owner, &plan).await;
        let subscription_id = subscribed["subscription"]["id"].as_str().unwrap().to_owned();
        let receipt_id = subscribed["receipt"]["id"].as_str().unwrap().to_owned();
        let child_id = app.add_child(&owner, "小明").await;
        let integrator = app.api_key("edu").await;
        app.set_clock("2027-01-20T00:00:00Z").await;
        let cancelled = app.cancel(&owner, &subscription_id, json!({"option": "end_of_period"})).await;
        let cancellation_id = cancelled.body["cancellation"]["id"].as_str().unwrap().to_owned();
        let export_id = app
            .post(&format!("/v1/families/{}/exports", owner.family_id), Some(&owner.token), json!({}))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let deletion = app
            .post(
                &format!("/v1/families/{}/deletion-requests", owner.family_id),
                Some(&owner.token),
                json!({"service": "play"}),
            )
            .await;
        let deletion_id = deletion.body["id"].as_str().unwrap().to_owned();
        let certificate_id = deletion.body["certificate_id"].as_str().unwrap().to_owned();
        let endpoint_id = app
            .post(
                "/v1/webhook-endpoints",
                Some(&app.admin),
                json!({"service": "edu", "url": "http://127.0.0.1:9/hook"}),
            )
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let evidence = "Tracking number SF1234567890, posted 2027-01-18";
        let dispute = app
            .post(
                "/v1/disputes",
                Some(&owner.token),
                json!({"kind": "other", "subscription_id": subscription_id, "description": "A question for a person.",
                    "evidence": [{"content_type": "text/plain", "content_base64": base64::engine::general_purpose::STANDARD.encode(evidence)}]}),
            )
            .await;
        assert_eq!(dispute.status, StatusCode::CREATED, "{}", dispute.body);
        let dispute_id = dispute.body["dispute"]["id"].as_str().unwrap().to_owned();
        let evidence_sha256 = dispute.body["evidence"][0]["sha256"].as_str().unwrap().to_owned();
        let mut tokens = vec![
            (Guardian, owner.token.clone()),
            (OtherGuardian, other.token.clone()),
            (Admin, app.admin.clone()),
            (Integrator, integrator),
        ];
        for (who, role) in
            [(Agent, "agent"), (Supervisor, "supervisor"), (Finance, "finance"), (Compliance, "compliance")]
        {
            tokens.push((who, app.staff(&format!("{role}@example.com"), role).await));
        }
        Fixture {
            tokens,
            family_id: owner.family_id,
            plan_id,
            subscription_id,
            cancellation_id,
            receipt_id,
            child_id,
            export_id,
            deletion_id,
            certificate_id,
            endpoint_id,
            dispute_id,
            evidence_sha256,
        }
    }

    /// A caller's token; none for the anonymous.
    pub(crate) fn token(&self, who: Who) -> Option<&str> {
        self.tokens.iter().find(|(w, _)| *w == who).map(|(_, t)| t.as_str())
    }

    /// The route's path with this fixture's ids in it.
    pub(crate) fn path(&self, route: &Route) -> String {
        let f = self;
        let path = route
            .path
            .replace("/v1/families/{id}", &format!("/v1/families/{}", f.family_id))
            .replace("/v1/plans/{id}", &format!("/v1/plans/{}", f.plan_id))
            .replace("/v1/subscriptions/{id}", &format!("/v1/subscriptions/{}", f.subscription_id))
            .replace("/v1/cancellations/{id}", &format!("/v1/cancellations/{}", f.cancellation_id))
            .replace("/v1/receipts/{id}", &format!("/v1/receipts/{}", f.receipt_id))
            .replace("/v1/children/{id}", &format!("/v1/children/{}", f.child_id))
            .replace("/v1/exports/{id}", &format!("/v1/exports/{}", f.export_id))
            .replace("/v1/deletion-requests/{id}", &format!("/v1/deletion-requests/{}", f.deletion_id))
            .replace("/v1/deletion-certificates/{id}", &format!("/v1/deletion-certificates/{}", f.certificate_id))
            .replace("/v1/entitlements", &format!("/v1/entitlements?family_id={}&service=edu", f.family_id))
            .replace("/v1/webhook-endpoints/{id}", &format!("/v1/webhook-endpoints/{}", f.endpoint_id))
            .replace(
                "/v1/disputes/{id}/evidence/{sha256}",
                &format!("/v1/disputes/{}/evidence/{}", f.dispute_id, f.evidence_sha256),
            )
            .replace("/v1/disputes/{id}", &format!("/v1/disputes/{}", f.dispute_id));
        if route.method == Method::GET && path == "/v1/families" {
            "/v1/families?email=owner@example.com".to_owned()
        } else {
            path
        }
    }
}

async fn every_route_admits_exactly_the_callers_it_names(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let fixture = Fixture::new(&app).await;

    // Every documented route has a row, and every row is a documented route.
    let document = app.get("/openapi.json", None).await.body;
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| item.as_object().unwrap().keys().map(move |m| format!("{} {path}", m.to_uppercase())))
        .collect();
    let routes = table();
    let tabled: BTreeSet<String> = routes.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    assert_eq!(documented, tabled, "routes and the authorization table differ");

    for route in routes.iter().filter(|r| r.method != Method::DELETE) {
        let path = fixture.path(route);
        for who in EVERYONE {
            let token = fixture.token(*who);
            let body = (route.method == Method::POST).then(|| json!({}));
            let response = app.request(route.method.clone(), &path, token, body, "en").await;
            let status = response.status;
            let label = format!("{} {} as {who:?}: {status} {}", route.method, route.path, response.body);
            let allowed = route.allowed.contains(who);
            match (who, allowed) {
                // Another family's data: "not found" — or, for a write whose
                // (deliberately empty) body is refused first, 422; neither tells
                // anything or changes anything. access.rs sends valid bodies: 404.
                (OtherGuardian, true) if route.family_scoped => {
                    assert!(status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY, "{label}")
                }
                (_, true) => assert!(status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN, "{label}"),
                (Anonymous, false) => assert_eq!(status, StatusCode::UNAUTHORIZED, "{label}"),
                (_, false) => assert_eq!(status, StatusCode::FORBIDDEN, "{label}"),
            }
            assert!(status.is_success() || status.is_client_error(), "{label}");
        }
    }
}
