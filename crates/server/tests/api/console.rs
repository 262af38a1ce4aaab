//! The staff console over HTTP, as a browser drives it: sign in, find a
//! family, send the guardian a code, cancel with it, register a written
//! notice with its scan (multipart), see the day's queue — with CSRF on
//! every form and roles checked like the API's.

use baobao_store::Engine;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    support_staff_work_a_case_through_the_console,
    a_parent_complains_in_the_portal_and_a_supervisor_decides_in_the_console,
    a_parent_whose_account_closed_complains_with_a_kept_receipt_in_the_portal,
);

struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder().redirect(Policy::none()).build().unwrap(),
            base: app.address.clone(),
            cookies: Vec::new(),
        }
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, path: &str) -> (StatusCode, String, String) {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (StatusCode, String, String) {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Sends with this browser's cookies and language; keeps what it sets.
    async fn send(&mut self, request: reqwest::RequestBuilder) -> (StatusCode, String, String) {
        let response =
            request.header("cookie", self.cookie_header()).header("accept-language", "en").send().await.unwrap();
        self.keep(&response);
        let status = response.status();
        let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
        (status, location, response.text().await.unwrap())
    }

    async fn sign_in(&mut self, email: &str) {
        let (_, _, page) = self.get("/console/login").await;
        let csrf = csrf_of(&page);
        let (status, location, _) = self
            .post(
                "/console/login",
                &[("email", email), ("password", "staff-password-1"), ("csrf", &csrf), ("next", "/console")],
            )
            .await;
        assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/console"));
    }
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn support_staff_work_a_case_through_the_console(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.set_clock("2027-01-20T03:00:00Z").await;
    app.staff("agent@example.com", "agent").await;
    app.staff("finance@example.com", "finance").await;

    let mut agent = Browser::new(&app);
    let (status, location, _) = agent.get("/console").await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/console/login?next=/console"));
    agent.sign_in("agent@example.com").await;

    let (status, _, found) = agent.get("/console?email=parent%40example.com").await;
    assert_eq!(status, StatusCode::OK);
    assert!(found.contains(&format!("/console/families/{}", parent.family_id)), "{found}");
    let (status, _, timeline) = agent.get(&format!("/console/families/{}", parent.family_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(timeline.contains("Cancel for the guardian") && timeline.contains("Monthly"), "{timeline}");

    // The code goes to the guardian; the agent enters what they read out.
    let (_, _, cancel_page) = agent.get(&format!("/console/subscriptions/{subscription_id}/cancel")).await;
    let csrf = csrf_of(&cancel_page);
    let (status, location, _) = agent
        .post(
            &format!("/console/families/{}/codes", parent.family_id),
            &[("csrf", &csrf), ("subscription_id", &subscription_id)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("sent=pa"), "{location}");
    let (_, _, cancel_page) = agent.get(&location).await;
    assert!(cancel_page.contains("Code sent to pa***@example.com"), "{cancel_page}");
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(&outbox.iter().find(|m| m.template == "verification_code").unwrap().payload).unwrap();
    let code = payload["code"].as_str().unwrap().to_owned();
    let quote_id = {
        let start = cancel_page.find("name=\"quote_id\" value=\"").unwrap() + "name=\"quote_id\" value=\"".len();
        cancel_page[start..].split('"').next().unwrap().to_owned()
    };
    let cancel_path = format!("/console/subscriptions/{subscription_id}/cancel");
    let (status, _, refused) = agent
        .post(
            &cancel_path,
            &[("csrf", &csrf), ("quote_id", &quote_id), ("option", "end_of_period"), ("verification_code", "000000")],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("tries left"), "{refused}");
    let (status, _, _) = agent
        .post(&cancel_path, &[("quote_id", &quote_id), ("option", "end_of_period"), ("verification_code", &code)])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, nothing changes");
    let (status, location, _) = agent
        .post(
            &cancel_path,
            &[("csrf", &csrf), ("quote_id", &quote_id), ("option", "end_of_period"), ("verification_code", &code)],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with(&format!("/console/families/{}?done=BB-", parent.family_id)), "{location}");
    let (_, _, timeline) = agent.get(&location).await;
    assert!(timeline.contains("Filed. Receipt number BB-") && timeline.contains("support"), "{timeline}");
    // One timeline, oldest first: the subscription's receipt before the cancellation request's.
    let subscribed_at = timeline.find("<td>Receipts</td>").expect("a receipt row");
    let requested_at = timeline.find("<td>Cancellation requests</td>").expect("a request row");
    assert!(timeline.contains("Timeline, oldest first") && subscribed_at < requested_at, "{timeline}");
    assert!(
        !cancel_page.contains("Your child") && !cancel_page.contains("Your options"),
        "staff pages speak of the guardian: {cancel_page}"
    );
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "pending_cancellation");

    // The guardian changes their mind; then their letter arrives.
    app.post(&format!("/v1/subscriptions/{subscription_id}/resume"), Some(&parent.token), json!({})).await;
    let (_, _, form) = agent.get(&format!("/console/subscriptions/{subscription_id}/written-notice")).await;
    let csrf = csrf_of(&form);
    let letter = b"%PDF-1.4\n% Please cancel. Wang Fang\n%%EOF\n".to_vec();
    let multipart = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("received_on", "2027-01-19")
        .text("sender", "Wang Fang")
        .text("tracking_number", "EMS0001")
        .text("option", "end_of_period")
        .part(
            "evidence",
            reqwest::multipart::Part::bytes(letter).file_name("letter.pdf").mime_str("application/pdf").unwrap(),
        );
    let registered = agent
        .client
        .post(format!("{}/console/subscriptions/{subscription_id}/written-notice", app.address))
        .header("cookie", agent.cookie_header())
        .multipart(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::SEE_OTHER, "{:?}", registered.text().await);
    let (_, _, queue) = agent.get("/console/written-notices?date=2027-01-20").await;
    assert!(queue.contains("Wang Fang") && queue.contains("EMS0001"), "{queue}");
    let cancellation = app.subscription(&parent, &subscription_id).await;
    assert_eq!(cancellation["status"], "pending_cancellation");

    // Finance sees the timeline but files nothing; a guardian's session is not a staff session.
    let mut finance = Browser::new(&app);
    finance.sign_in("finance@example.com").await;
    let (status, _, timeline) = finance.get(&format!("/console/families/{}", parent.family_id)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!timeline.contains("Cancel for the guardian"));
    let (status, _, _) = finance.get(&format!("/console/subscriptions/{subscription_id}/cancel")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let mut guardian = Browser::new(&app);
    guardian.cookies.push(("baobao_staff_session".to_owned(), parent.token.clone()));
    let (status, _, _) = guardian.get(&format!("/console/families/{}", parent.family_id)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

impl Browser {
    async fn multipart(&mut self, path: &str, form: reqwest::multipart::Form) -> (StatusCode, String, String) {
        let request = self.client.post(format!("{}{path}", self.base)).multipart(form);
        self.send(request).await
    }
}

async fn a_parent_complains_in_the_portal_and_a_supervisor_decides_in_the_console(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.staff("supervisor@example.com", "supervisor").await;
    let mut portal = Browser::new(&app);
    portal.cookies.push(("baobao_session".into(), parent.token.clone()));
    portal.cookies.push(("baobao_lang".into(), "en".into()));

    // "Something went wrong? Complain" on the subscription's page leads to the form about it.
    let (_, _, service) = portal.get(&format!("/services/{subscription_id}")).await;
    let link = format!("/disputes/new?subscription_id={subscription_id}");
    assert!(service.contains(&link), "{service}");
    let (status, _, form) = portal.get(&link).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains(&format!("name=\"subscription_id\" value=\"{subscription_id}\"")), "{form}");
    let csrf = csrf_of(&form);
    let screenshot = b"\x89PNG\r\n\x1a\nthe advert said 29".to_vec();
    let complaint = |csrf: &str| {
        reqwest::multipart::Form::new()
            .text("csrf", csrf.to_owned())
            .text("subscription_id", subscription_id.clone())
            .text("kind", "wrong_charge")
            .text("description", "The advert said 29 <b>yuan</b>, I was charged 39.")
            .part(
                "evidence",
                reqwest::multipart::Part::bytes(screenshot.clone())
                    .file_name("advert.png")
                    .mime_str("image/png")
                    .unwrap(),
            )
    };
    let (status, _, _) = portal.multipart("/disputes", complaint("forged")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no CSRF token, no complaint");
    assert_eq!(app.get("/v1/disputes", Some(&parent.token)).await.body, json!([]));
    let (status, location, _) = portal.multipart("/disputes", complaint(&csrf)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/disputes/dsp_") && location.ends_with("?new=1"), "{location}");
    let (_, _, page) = portal.get(&location).await;
    assert!(page.contains("Your complaint is made"), "{page}");
    assert!(page.contains("&#60;b&#62;yuan&#60;/b&#62;") && !page.contains("<b>yuan"), "escaped: {page}");
    assert!(page.contains("There is no cancellation on record for this subscription"), "{page}");
    let id = location.trim_start_matches("/disputes/").trim_end_matches("?new=1").to_owned();

    // The supervisor finds it first in the queue, answers and decides with a refund.
    let mut supervisor = Browser::new(&app);
    supervisor.sign_in("supervisor@example.com").await;
    let (_, _, queue) = supervisor.get("/console/disputes").await;
    assert!(queue.contains(&format!("/console/disputes/{id}")), "{queue}");
    let (_, _, case) = supervisor.get(&format!("/console/disputes/{id}")).await;
    let csrf = csrf_of(&case);
    let answer =
        reqwest::multipart::Form::new().text("csrf", csrf.clone()).text("text", "We are looking at the advert.");
    let (status, _, _) = supervisor.multipart(&format!("/console/disputes/{id}/messages"), answer).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let wrong = [("csrf", csrf.as_str()), ("outcome", "refunded"), ("refund", "ten"), ("explanation", "x")];
    let (status, _, refused) = supervisor.post(&format!("/console/disputes/{id}/resolve"), &wrong).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let decide = [
        ("csrf", csrf.as_str()),
        ("outcome", "refunded"),
        ("refund", "10.00"),
        ("explanation", "The advert said 29; we refund the difference."),
    ];
    let (status, _, _) = supervisor.post(&format!("/console/disputes/{id}/resolve"), &decide).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let refunds: Vec<i64> = crate::helpers::entries(&app.statement(&parent).await, "refund")
        .iter()
        .map(|e| crate::helpers::amount(e))
        .collect();
    assert_eq!(refunds, [1000]);

    // The parent reads the answer and the decision on the timeline, and downloads the dossier.
    let (_, _, page) = portal.get(&format!("/disputes/{id}")).await;
    for shown in [
        "We are looking at the advert.",
        "The advert said 29; we refund the difference.",
        "closed: refunded",
        "Refund of",
    ] {
        assert!(page.contains(shown), "{shown}: {page}");
    }
    let dossier = portal
        .client
        .get(format!("{}/disputes/{id}/dossier.zip", app.address))
        .header("cookie", portal.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(dossier.headers()["content-type"], "application/zip");
    // Another family's parent cannot open it.
    let other = app.sign_up("other@example.com").await;
    let mut stranger = Browser::new(&app);
    stranger.cookies.push(("baobao_session".into(), other.token.clone()));
    let (status, _, _) = stranger.get(&format!("/disputes/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Compliance counts it in the month's report, and downloads it as CSV.
    app.staff("compliance@example.com", "compliance").await;
    let mut compliance = Browser::new(&app);
    compliance.sign_in("compliance@example.com").await;
    let (status, _, report) = compliance.get("/console/disputes/report?month=2027-01").await;
    assert_eq!(status, StatusCode::OK);
    assert!(report.contains("a wrong charge") && report.contains("refunded"), "{report}");
    let (status, _, csv) = compliance.get("/console/disputes/report.csv?month=2027-01").await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.contains("2027-01,wrong_charge,refunded,1,0,0"), "{csv}");
    let (status, _, _) = supervisor.get("/console/disputes/report").await;
    assert!(status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND, "the report is compliance's: {status}");
}

async fn a_parent_whose_account_closed_complains_with_a_kept_receipt_in_the_portal(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscribed = app.subscribe(&parent, &plan).await;
    let number = subscribed["receipt"]["body"]["receipt_number"].as_str().unwrap().to_owned();
    let subscription_id = subscribed["subscription"]["id"].as_str().unwrap();
    assert_eq!(app.cancel(&parent, subscription_id, json!({"option": "now"})).await.status, StatusCode::CREATED);
    let deleted =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert!(deleted.status.is_success(), "{}", deleted.body);
    app.billing_run().await;

    let mut visitor = Browser::new(&app);
    let (status, _, page) = visitor.get(&format!("/complain?receipt={number}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(&number), "the number comes filled in from the receipt's link");
    let csrf = csrf_of(&page);
    let (status, _, page) = visitor
        .post("/complain/code", &[("csrf", &csrf), ("receipt_number", &number), ("email", "mum@example.net")])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("mu***@example.net"), "{page}");
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let outbox = app.state.store.outbox_of(&family_id).await.unwrap();
    let payload: serde_json::Value =
        serde_json::from_str(&outbox.iter().find(|m| m.template == "dispute_code").unwrap().payload).unwrap();
    let code = payload["code"].as_str().unwrap().to_owned();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf_of(&page))
        .text("receipt_number", number.clone())
        .text("email", "mum@example.net")
        .text("code", code)
        .text("kind", "data_not_deleted")
        .text("description", "Please confirm my son's data is gone.");
    let (status, location, body) = visitor.multipart("/complain", form).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.starts_with("/d/dsp_") && location.ends_with("?new=1"), "{location}");
    let (status, _, page) = visitor.get(&location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Your data was deleted on 2027-01-10"), "the certificate answers it: {page}");
    let (status, _, _) = visitor.get(&format!("{}/dossier.zip", location.trim_end_matches("?new=1"))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = visitor.get("/d/dsp_0000000000000000000000/forged").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
