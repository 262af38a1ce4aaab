//! Email through the outbox to a real SMTP listener (Python's aiosmtpd,
//! started by the test): written with the change, delivered once, in the
//! guardian's language, with the signed receipt attached; retried while the
//! relay is down; the address forgotten once delivered.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use baobao_server::keys::KeySet;
use baobao_server::receipts::{self, ReceiptDocument};
use baobao_server::services::delivery;
use baobao_store::Engine;
use serde_json::{Value, json};

use crate::helpers::TestApp;

baobao_store::on_both_engines!(
    emails_reach_the_guardian_once_in_their_language_with_the_signed_receipt,
    the_billing_run_reminds_before_every_renewal_once,
    a_reminder_comes_before_the_last_day_to_cancel_and_a_late_one_says_so,
    a_trial_shorter_than_the_lead_time_is_reminded_at_sign_up,
);

pub struct SmtpListener {
    process: Child,
    pub port: u16,
    maildir: std::path::PathBuf,
}

impl SmtpListener {
    pub fn start(port: u16, maildir: &std::path::Path) -> SmtpListener {
        let listener = SmtpListener {
            process: Command::new("python3")
                .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
                .arg(maildir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("python3 -m aiosmtpd (scripts/test installs it)"),
            port,
            maildir: maildir.to_owned(),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return listener;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("aiosmtpd did not start");
    }

    /// Stops the listener (dropping it kills and reaps the process).
    fn stop(self) -> (u16, std::path::PathBuf) {
        (self.port, self.maildir.clone())
    }

    pub fn messages(&self) -> Vec<Value> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/read_maildir.py");
        let output = Command::new("python3").arg(script).arg(&self.maildir).output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Drop for SmtpListener {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Delivers what is due `ahead_seconds` from now (real time, as the worker does).
pub async fn deliver(app: &TestApp, ahead_seconds: i64) -> delivery::DeliveryReport {
    let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_secs(ahead_seconds)).unwrap();
    delivery::deliver_due(&app.state, at).await.unwrap()
}

async fn emails_reach_the_guardian_once_in_their_language_with_the_signed_receipt(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let maildir = mail_dir.path().join("Maildir");
    let smtp = SmtpListener::start(free_port(), &maildir);
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let keys: KeySet = serde_json::from_value(app.get("/.well-known/baobao/keys.json", None).await.body).unwrap();
    let plan = app.create_plan(json!({})).await;
    let parent = app.sign_up("parent@example.com").await;
    let subscription_id = app.subscribe(&parent, &plan).await["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let confirmation = &messages[0];
    assert_eq!(confirmation["to"], "parent@example.com");
    assert_eq!(confirmation["subject"], "您已订阅 月度会员", "in the guardian's language");
    assert!(confirmation["text"].as_str().unwrap().contains("回执号 BB-2027"), "{}", confirmation["text"]);
    let attached: ReceiptDocument =
        serde_json::from_str(confirmation["attachments"][0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(attached.kind, "subscription");
    receipts::verify(&attached, &keys).unwrap();

    // Within the cooling-off period: ended at once, everything paid refunded.
    app.cancel(&parent, &subscription_id, json!({"option": "now"})).await;
    assert_eq!(deliver(&app, 0).await.delivered, 2, "the cancellation and the refund");
    assert_eq!(deliver(&app, 0).await, delivery::DeliveryReport::default(), "each event is sent once");
    let messages = smtp.messages();
    assert_eq!(messages.len(), 3);
    let received =
        messages.iter().find(|m| m["subject"].as_str().unwrap().starts_with("我们已收到您的取消申请")).unwrap();
    assert!(received["text"].as_str().unwrap().contains("此后不会再产生任何费用"), "{}", received["text"]);
    let refund = messages.iter().find(|m| m["subject"] == "月度会员 的退款").expect("a refund email");
    assert!(refund["text"].as_str().unwrap().contains("39.00"), "{}", refund["text"]);

    // The relay is down when the data is deleted: the certificate waits and is retried.
    let (port, maildir) = smtp.stop();
    let deleted =
        app.post(&format!("/v1/families/{}/deletion-requests", parent.family_id), Some(&parent.token), json!({})).await;
    assert_eq!(deleted.status, reqwest::StatusCode::CREATED);
    assert_eq!(deliver(&app, 0).await.retrying, 1);
    assert_eq!(deliver(&app, 0).await, delivery::DeliveryReport::default(), "not retried before its time");
    let smtp = SmtpListener::start(port, &maildir);
    assert_eq!(deliver(&app, 120).await.delivered, 1);
    let messages = smtp.messages();
    let certificate_mail =
        messages.iter().find(|m| m["subject"].as_str().unwrap().starts_with("孩子的数据已删除")).unwrap();
    // The account is closed and its address minimised, yet the certificate reached the guardian.
    assert_eq!(certificate_mail["to"], "parent@example.com");
    let certificate: ReceiptDocument =
        serde_json::from_str(certificate_mail["attachments"][0]["content"].as_str().unwrap()).unwrap();
    assert_eq!(certificate.kind, "deletion_certificate");
    receipts::verify(&certificate, &keys).unwrap();
    // The outbox kept no address once it delivered.
    let family_id = baobao_domain::ids::FamilyId::parse(&parent.family_id).unwrap();
    let log = app.state.store.outbox_of(&family_id).await.unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|m| m.status == "sent" && m.recipient.is_empty()), "{log:?}");
    assert_eq!(log.iter().find(|m| m.template == "deletion_certificate").unwrap().attempts, 2);
}

async fn the_billing_run_reminds_before_every_renewal_once(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    let plan = app.create_plan(json!({"reminder_days": 7, "notice_days": 3})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    deliver(&app, 0).await;
    // The first period ends 10 Feb 10:00 (Shanghai); the last day to cancel
    // is 7 Feb 10:00, and the reminder is due seven days before that: 31 Jan.
    app.set_clock("2027-01-31T01:59:59Z").await;
    assert_eq!(app.billing_run().await["reminders_sent"], 0);
    app.set_clock("2027-01-31T02:00:00Z").await;
    assert_eq!(app.billing_run().await["reminders_sent"], 1);
    assert_eq!(app.billing_run().await["reminders_sent"], 0, "once per period");
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    let reminder =
        smtp.messages().into_iter().find(|m| m["subject"].as_str().unwrap().contains("续费")).expect("a reminder");
    assert_eq!(reminder["subject"], "月度会员 将于 2027-02-10 10:00 续费");
    let text = reminder["text"].as_str().unwrap();
    assert!(text.contains("39.00 元") && text.contains("2027-02-07 10:00"), "{text}");
    // The next period gets its own reminder.
    app.set_clock("2027-03-05T00:00:00Z").await;
    let run = app.billing_run().await;
    assert_eq!((run["renewed"].as_i64(), run["reminders_sent"].as_i64()), (Some(1), Some(1)), "{run}");
    let audit = app.state.store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "reminder.sent").count(), 2);
}

async fn a_reminder_comes_before_the_last_day_to_cancel_and_a_late_one_says_so(engine: Engine) {
    let mail_dir = tempfile::tempdir().unwrap();
    let smtp = SmtpListener::start(free_port(), &mail_dir.path().join("Maildir"));
    let app = TestApp::spawn_with_smtp(engine, &format!("smtp://127.0.0.1:{}", smtp.port)).await;
    // Seven days' notice and a seven-day reminder: the reminder lands two
    // weeks before the renewal, a week before the last day to cancel.
    let plan = app.create_plan(json!({"reminder_days": 7, "notice_days": 7, "cooling_off_days": 0})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    deliver(&app, 0).await;
    // An hour before the deadline (3 Feb 10:00 Shanghai) the parent has been reminded.
    app.set_clock("2027-02-03T01:00:00Z").await;
    assert_eq!(app.billing_run().await["reminders_sent"], 1);
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    let on_time = smtp.messages().into_iter().find(|m| m["subject"].as_str().unwrap().contains("续费")).unwrap();
    assert!(on_time["text"].as_str().unwrap().contains("2027-02-03 10:00"), "{on_time}");

    // The next period's reminder is due 24 Feb, but no run comes until 5 March,
    // after that period's deadline (3 March): the email says what is true now.
    app.set_clock("2027-02-11T00:00:00Z").await;
    assert_eq!(app.billing_run().await["renewed"], 1);
    // The renewal's charge is told, with its receipt attached.
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    let paid = smtp.messages().into_iter().find(|m| m["subject"].as_str().unwrap().contains("付款")).unwrap();
    let text = paid["text"].as_str().unwrap();
    assert!(text.contains("39.00 元") && text.contains("2027-02-10 10:00 至 2027-03-10 10:00"), "{text}");
    assert!(text.contains("2027-03-10 10:00") && paid["attachments"].to_string().contains("receipt-BB-"), "{paid}");
    app.set_clock("2027-03-05T00:00:00Z").await;
    assert_eq!(app.billing_run().await["reminders_sent"], 1);
    assert_eq!(deliver(&app, 0).await.delivered, 1);
    let late = smtp
        .messages()
        .into_iter()
        .filter(|m| m["subject"].as_str().unwrap().contains("续费"))
        .find(|m| m["text"].as_str().unwrap().contains("已过"))
        .expect("a late reminder");
    let text = late["text"].as_str().unwrap();
    assert!(text.contains("2027-03-03 10:00") && text.contains("2027-04-10 10:00"), "{text}");
    assert!(text.contains("39.00"), "{text}");
}

async fn a_trial_shorter_than_the_lead_time_is_reminded_at_sign_up(engine: Engine) {
    let app = TestApp::spawn(engine).await;
    let plan = app.create_plan(json!({"trial_days": 5, "notice_days": 3, "reminder_days": 5})).await;
    let parent = app.sign_up("parent@example.com").await;
    app.subscribe(&parent, &plan).await;
    let rendered = app.queued_email(&parent, "renewal_reminder", baobao_domain::Locale::En).await;
    assert!(rendered.contains("free trial") && rendered.contains("becomes paid"), "{rendered}");
    assert_eq!(app.billing_run().await["reminders_sent"], 0, "once");
}
