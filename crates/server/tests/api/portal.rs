//! The portal's protections, checked at the HTTP level: cookie flags, CSRF
//! on every form, and the pause after repeated wrong passwords.

use baobao_store::Engine;
use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    session_cookies_are_http_only_same_site_and_secure_behind_tls,
    forms_without_a_matching_csrf_token_change_nothing,
    repeated_wrong_passwords_pause_the_account,
    double_clicking_subscribe_in_the_portal_subscribes_once_and_both_clicks_land_on_it,
    every_page_names_the_provider_and_how_to_reach_it,
    a_closed_accounts_certificate_opens_by_its_link_on_every_reload,
    anyone_can_check_a_receipt_by_its_number_and_signed_file,
    a_parent_removes_a_child_in_the_portal_after_a_deliberate_tick,
);

async fn every_page_names_the_provider_and_how_to_reach_it(engine: Engine) {
    let app = TestApp::spawn_configured(engine, |config| {
        config.provider = baobao_domain::receipt::Provider {
            legal_name: "Example Kids Ltd.".into(),
            support_email: Some("help@kids.example".into()),
            support_phone: Some("+86 21 5555 0100".into()),
            postal_address: Some("88 Example Road, Shanghai".into()),
            complaints: Some("the consumer mediation board".into()),
        };
    })
    .await;
    let client = client();
    for path in ["/login", "/signup", "/console/login"] {
        let page = client.get(format!("{}{path}", app.address)).send().await.unwrap().text().await.unwrap();
        for shown in [
            "Example Kids Ltd.",
            "mailto:help@kids.example",
            "+86 21 5555 0100",
            "88 Example Road",
            "the consumer mediation board",
        ] {
            assert!(page.contains(shown), "{path} does not show {shown}: {page}");
        }
    }
    let zh = client
        .get(format!("{}/login", app.address))
        .header("accept-language", "zh-CN")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(zh.contains("书面通知请寄：") && zh.contains("Example Kids Ltd."), "{zh}");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn cookie_value(cookies: &[String], name: &str) -> String {
    cookies
        .iter()
        .find_map(|c| c.strip_prefix(&format!("{name}=")).map(|rest| rest.split(';').next().unwrap().to_owned()))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

async fn session_cookies_are_http_only_same_site_and_secure_behind_tls(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.sign_up("parent@example.com").await;
    let client = client();
    let login = client.get(format!("{}/login", app.address)).header("x-forwarded-proto", "https").send().await.unwrap();
    let cookies = set_cookies(&login);
    let csrf = cookie_value(&cookies, "baobao_csrf");
    assert!(cookies[0].contains("HttpOnly") && cookies[0].contains("SameSite=Lax") && cookies[0].contains("Secure"));
    let signed_in = client
        .post(format!("{}/login", app.address))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("baobao_csrf={csrf}"))
        .form(&[
            ("email", "parent@example.com"),
            ("password", "a long password"),
            ("csrf", &csrf),
            ("next", "/services"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/services");
    let session = set_cookies(&signed_in).into_iter().find(|c| c.starts_with("baobao_session=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(session.contains(flag), "{flag} missing from {session}");
    }
    // Over plain HTTP (a local demo) the cookie cannot be Secure, or it would never come back.
    let plain = client.get(format!("{}/login", app.address)).send().await.unwrap();
    assert!(!set_cookies(&plain)[0].contains("Secure"));
    // A crafted `next` never leads off the site.
    let away = client
        .post(format!("{}/login", app.address))
        .header("cookie", format!("baobao_csrf={csrf}"))
        .form(&[
            ("email", "parent@example.com"),
            ("password", "a long password"),
            ("csrf", &csrf),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(away.headers()["location"], "/services");
}

async fn forms_without_a_matching_csrf_token_change_nothing(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    let client = client();
    let session = format!("baobao_session={}", parent.token);
    // Another site's form posting with the parent's cookie but no token.
    for (path, form) in [
        (format!("/services/{subscription_id}/cancel"), vec![("option", "now"), ("quote_id", "quo_x")]),
        (format!("/plans/{}", plan["id"].as_str().unwrap()), vec![("accept", "yes"), ("sha256", "x")]),
        ("/logout".to_owned(), vec![]),
    ] {
        let mut fields = form.clone();
        fields.push(("csrf", "forged"));
        let response = client
            .post(format!("{}{path}", app.address))
            .header("cookie", &session)
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        // In the guardian's own language (the helper signs parents up in zh-CN).
        assert!(response.text().await.unwrap().contains("此表单已过期"));
    }
    assert_eq!(app.subscription(&parent, &subscription_id).await["status"], "active");
    assert_eq!(
        app.get(&format!("/v1/families/{}", parent.family_id), Some(&parent.token)).await.status,
        StatusCode::OK
    );
}

async fn repeated_wrong_passwords_pause_the_account(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    app.sign_up("parent@example.com").await;
    for _ in 0..5 {
        let wrong = app
            .post("/v1/auth/sessions", None, json!({"email": "parent@example.com", "password": "guess guess guess"}))
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let paused = app
        .post("/v1/auth/sessions", None, json!({"email": "parent@example.com", "password": "a long password"}))
        .await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(paused.body["error"]["code"], "too_many_attempts");
    assert_eq!(paused.body["error"]["details"]["minutes"], 15);
    // Another account is not affected.
    app.sign_up("other@example.com").await;
    let other =
        app.post("/v1/auth/sessions", None, json!({"email": "other@example.com", "password": "a long password"})).await;
    assert_eq!(other.status, StatusCode::CREATED);
}

/// The value of a hidden input in a rendered form.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).unwrap_or_else(|| panic!("no {name} in the form")) + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

async fn double_clicking_subscribe_in_the_portal_subscribes_once_and_both_clicks_land_on_it(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let parent = app.sign_up("parent@example.com").await;
    let client = client();
    let session = format!("baobao_session={}", parent.token);
    let plan_path = format!("/plans/{}", plan["id"].as_str().unwrap());
    let plan_page = || async {
        let response = client.get(format!("{}{plan_path}", app.address)).header("cookie", &session).send().await;
        response.unwrap().text().await.unwrap()
    };
    let page = plan_page().await;
    let fields = [
        ("csrf", hidden(&page, "csrf")),
        ("sha256", hidden(&page, "sha256")),
        ("form_key", hidden(&page, "form_key")),
        ("accept", "yes".to_owned()),
    ];
    let click = || client.post(format!("{}{plan_path}", app.address)).header("cookie", &session).form(&fields).send();
    let (first, second, third) = tokio::join!(click(), click(), click());
    let locations: Vec<String> = [first, second, third]
        .into_iter()
        .map(|r| {
            let r = r.unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()["location"].to_str().unwrap().to_owned()
        })
        .collect();
    assert!(locations[0].starts_with("/services/sub_"), "{locations:?}");
    assert!(locations.iter().all(|l| *l == locations[0]), "{locations:?}");
    let statement = app.statement(&parent).await;
    assert_eq!(statement.iter().filter(|e| e["kind"] == "charge").count(), 1);
    // A fresh page is a fresh form: subscribing again is refused, not repeated.
    let again = plan_page().await;
    assert_ne!(hidden(&again, "form_key"), fields[2].1);
}

async fn a_closed_accounts_certificate_opens_by_its_link_on_every_reload(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"cooling_off_days": 0})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    let client = client();
    let session = format!("baobao_session={}", parent.token);
    let data = client.get(format!("{}/data", app.address)).header("cookie", &session).send().await.unwrap();
    let csrf = hidden(&data.text().await.unwrap(), "csrf");
    let deleted = client
        .post(format!("{}/data/deletion", app.address))
        .header("cookie", &session)
        .form(&[("csrf", csrf.as_str()), ("scope", "*"), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    assert!(set_cookies(&deleted).iter().any(|c| c.starts_with("baobao_session=;")), "signed out");
    let location = deleted.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/r/rcp_") && location.ends_with("?deleted=1"), "{location}");
    let link = location.trim_end_matches("?deleted=1").to_owned();

    // No session any more: the link opens the certificate, now and on every reload.
    for path in [location.as_str(), link.as_str(), link.as_str()] {
        let page = client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        let html = page.text().await.unwrap();
        assert!(html.contains("BB-") && html.contains(&format!("{link}/signed.json")), "{html}");
    }
    let json = client.get(format!("{}{link}/signed.json", app.address)).send().await.unwrap();
    assert_eq!(json.status(), StatusCode::OK);
    let document: serde_json::Value = json.json().await.unwrap();
    assert_eq!(document["kind"], "deletion_certificate");
    assert_eq!(document["body"]["account_closed"], true);
    app.assert_receipt_verifies(&document).await;

    // The token opens that receipt only; a guessed or altered one opens nothing.
    let receipt_id = document["id"].as_str().unwrap();
    let token = link.rsplit('/').next().unwrap();
    let other = app.get(&format!("/v1/families/{}/receipts", parent.family_id), Some(&parent.token)).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "the session ended with the account");
    let receipts = app.state.store.receipts_of(&parent.family_id.parse().unwrap()).await.unwrap();
    let another = receipts.iter().find(|r| r.id.as_str() != receipt_id).unwrap();
    let mut altered = token.to_owned().into_bytes();
    altered[0] = if altered[0] == b'A' { b'B' } else { b'A' };
    for path in [
        format!("/r/{}/{token}", another.id),
        format!("/r/{receipt_id}/{}", String::from_utf8(altered).unwrap()),
        format!("/r/{receipt_id}/"),
        format!("/r/rcp_nothing/{token}"),
        format!("/r/{receipt_id}/{token}x/signed.json"),
    ] {
        let response = client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

async fn check(app: &TestApp, locale: &str, number: &str, document: Option<Vec<u8>>) -> (StatusCode, String) {
    let mut form = reqwest::multipart::Form::new().text("number", number.to_owned());
    if let Some(document) = document {
        form = form.part("document", reqwest::multipart::Part::bytes(document).file_name("receipt.json"));
    }
    let response = client()
        .post(format!("{}/check", app.address))
        .header("accept-language", locale)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn anyone_can_check_a_receipt_by_its_number_and_signed_file(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let receipt = app.subscribe(&parent, &plan).await["receipt"].clone();
    let number = receipt["body"]["receipt_number"].as_str().unwrap().to_owned();
    let file = serde_json::to_vec_pretty(&receipt).unwrap();

    let (status, page) = check(&app, "en", &number, Some(file.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Genuine: we signed this document and still hold it unchanged."), "{page}");
    assert!(page.contains("It is in our public audit log at entry"), "{page}");
    let (_, page) = check(&app, "zh-CN", &number, Some(file.clone())).await;
    assert!(page.contains("真实有效") && !page.contains("Genuine"), "{page}");

    // Changed after signing: the signature says so, and so does our copy.
    let mut changed = receipt.clone();
    changed["body"]["price"]["amount_minor"] = json!(1);
    let (status, page) = check(&app, "en", &number, Some(serde_json::to_vec(&changed).unwrap())).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("cannot be confirmed") && page.contains("The signature does not match"), "{page}");
    assert!(page.contains("it differs from yours"), "{page}");
    // A genuine file under another number.
    let (_, page) = check(&app, "en", "BB-20270101-XXXXXXXX", Some(file.clone())).await;
    assert!(page.contains("is not the document") && page.contains("We hold no receipt"), "{page}");

    // What cannot be checked is refused with its reason, in the visitor's language.
    for (locale, number, document, words) in [
        ("en", number.as_str(), None, "Choose the receipt"),
        ("zh-CN", number.as_str(), None, "请选择回执的签名文件"),
        ("en", "", Some(file.clone()), "Enter the number printed on the receipt"),
        ("en", number.as_str(), Some(b"%PDF-1.4 not json".to_vec()), "not a signed receipt"),
        ("en", number.as_str(), Some(vec![b' '; 300 * 1024]), "too large"),
    ] {
        let (status, page) = check(&app, locale, number, document).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{words}");
        assert!(page.contains(words), "{words}: {page}");
    }
    let form = client().get(format!("{}/check", app.address)).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let footer = client().get(format!("{}/login", app.address)).send().await.unwrap().text().await.unwrap();
    assert!(footer.contains("href=\"/check\""), "every portal page links to the check");
}

async fn a_parent_removes_a_child_in_the_portal_after_a_deliberate_tick(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let child = app.add_child(&parent, "小明").await;
    let client = client();
    let session = format!("baobao_session={}", parent.token);
    let data = client.get(format!("{}/data", app.address)).header("cookie", &session).send().await.unwrap();
    let html = data.text().await.unwrap();
    assert!(html.contains(&format!("action=\"/data/children/{child}/remove\"")), "{html}");
    let csrf = hidden(&html, "csrf");
    let remove = |fields: Vec<(&'static str, String)>| {
        client
            .post(format!("{}/data/children/{child}/remove", app.address))
            .header("cookie", &session)
            .form(&fields)
            .send()
    };
    // Without the tick: the page again, the part open, nothing deleted.
    let unticked = remove(vec![("csrf", csrf.clone())]).await.unwrap();
    assert_eq!(unticked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = unticked.text().await.unwrap();
    assert!(page.contains("请勾选确认") && page.contains("<details open>"), "{page}");
    assert!(app.state.store.pending_child_deletion(&child.parse().unwrap()).await.unwrap().is_none());
    let forged = remove(vec![("csrf", "forged".into()), ("confirm", "yes".into())]).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let ticked = remove(vec![("csrf", csrf), ("confirm", "yes".into())]).await.unwrap();
    assert_eq!(ticked.status(), StatusCode::SEE_OTHER);
    let location = ticked.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/receipts/rcp_") && location.ends_with("?deleted=1"), "{location}");
    let certificate = client.get(format!("{}{location}", app.address)).header("cookie", &session).send().await.unwrap();
    let certificate = certificate.text().await.unwrap();
    assert!(certificate.contains("删除证明"), "{certificate}");
    let data = client.get(format!("{}/data", app.address)).header("cookie", &session).send().await.unwrap();
    assert!(!data.text().await.unwrap().contains("小明"), "the child is no longer listed");
}
