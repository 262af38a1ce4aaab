//! The contracts others hold us to, as reviewed snapshots (`insta`): every
//! kind of receipt body, the OpenAPI document, and every email in both
//! languages. A change to any of them fails here until the new snapshot is
//! accepted (`cargo insta review`), so it is seen in review, not found by a
//! parent or an integrator.

use baobao_domain::policy::HoldCategory;
use baobao_domain::receipt::{
    CancellationReceipt, ChargeReceipt, Deleted, DeletionCertificate, DeletionScope, DisputeAbout, DisputeReceipt,
    EvidenceRef, FeeReceipt, FirstPeriod, Kept, MovementReceipt, PeriodRef, PlanName, Provider, ReceiptBody,
    RefundReceipt, SignedBody, SubscriptionReceipt, TermsRef, WithdrawalReceipt, WrittenNoticeRef,
};
use baobao_domain::{Currency, Locale, Money};
use baobao_server::keys::SigningKeys;
use baobao_server::mail::Letterhead;
use baobao_server::receipts::{self, ReceiptDocument};
use jiff::Timestamp;
use serde_json::json;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn cny(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::CNY).unwrap()
}

fn plan_name() -> PlanName {
    PlanName { zh_cn: "数学乐园 月度".into(), en: "Maths Garden, monthly".into() }
}

fn terms() -> TermsRef {
    TermsRef { policy_version: 2, policy_sha256: "9f2c".repeat(16) }
}

fn movement(note: &str, period_start: Option<Timestamp>) -> MovementReceipt {
    MovementReceipt {
        subscription_id: "sub_example".into(),
        plan_id: "pln_example".into(),
        plan_name: plan_name(),
        ledger_entry_id: "led_example".into(),
        period_start,
        note: note.into(),
        gateway_reference: "sim_ref_0001".into(),
    }
}

fn cancellation(option: &str, effective_at: &str) -> CancellationReceipt {
    CancellationReceipt {
        cancellation_id: "can_example".into(),
        subscription_id: "sub_example".into(),
        plan_id: "pln_example".into(),
        channel: "self_service".into(),
        option: option.into(),
        received_at: at("2027-01-20T04:00:00Z"),
        effective_at: at(effective_at),
        renewals_before_effective: 0,
        refund: cny(if option == "now" { 2650 } else { 0 }),
        fee: cny(0),
        export_until: at("2027-03-12T16:00:00Z"),
        delete_at: at("2027-03-12T16:00:00Z"),
        quote_id: Some("quo_example".into()),
        terms: terms(),
        agent: None,
        verification: None,
        written_notice: None,
    }
}

/// One body of every kind (and of every channel a cancellation takes).
fn examples() -> Vec<(&'static str, ReceiptBody)> {
    let support = CancellationReceipt {
        channel: "support".into(),
        agent: Some("staff:stf_example".into()),
        verification: Some("code".into()),
        ..cancellation("end_of_period", "2027-02-09T16:00:00Z")
    };
    let letter = CancellationReceipt {
        channel: "written_notice".into(),
        agent: Some("staff:stf_example".into()),
        written_notice: Some(WrittenNoticeRef {
            id: "wrn_example".into(),
            received_at: at("2027-01-18T16:00:00Z"),
            tracking_number: Some("EMS123456789CN".into()),
            evidence_sha256: "ab".repeat(32),
            evidence_type: "application/pdf".into(),
            evidence_bytes: 48213,
        }),
        ..cancellation("end_of_period", "2027-02-09T16:00:00Z")
    };
    vec![
        (
            "subscription",
            ReceiptBody::Subscription(SubscriptionReceipt {
                subscription_id: "sub_example".into(),
                plan_id: "pln_example".into(),
                plan_name: plan_name(),
                channel: "self_service".into(),
                accepted_by: "gdn_example".into(),
                signed_up_at: at("2027-01-09T16:00:00Z"),
                terms: terms(),
                price: cny(3900),
                period: baobao_domain::PeriodLength::Months(1),
                current_period: FirstPeriod {
                    start: at("2027-01-09T16:00:00Z"),
                    end: at("2027-02-09T16:00:00Z"),
                    is_trial: false,
                },
                first_charge: Some(cny(3900)),
            }),
        ),
        ("cancellation_end_of_period", ReceiptBody::Cancellation(cancellation("end_of_period", "2027-02-09T16:00:00Z"))),
        ("cancellation_now", ReceiptBody::Cancellation(cancellation("now", "2027-01-20T04:00:00Z"))),
        ("cancellation_support", ReceiptBody::Cancellation(support)),
        ("cancellation_written_notice", ReceiptBody::Cancellation(letter)),
        (
            "withdrawal",
            ReceiptBody::Withdrawal(WithdrawalReceipt {
                cancellation_id: "can_example".into(),
                subscription_id: "sub_example".into(),
                channel: "self_service".into(),
                withdrawn_at: at("2027-01-25T04:00:00Z"),
                cancellation_would_have_taken_effect_at: at("2027-02-09T16:00:00Z"),
                terms: terms(),
            }),
        ),
        (
            "charge",
            ReceiptBody::Charge(ChargeReceipt {
                subscription_id: "sub_example".into(),
                plan_id: "pln_example".into(),
                plan_name: plan_name(),
                ledger_entry_id: "led_example".into(),
                charge: cny(3900),
                current_period: PeriodRef { start: at("2027-02-09T16:00:00Z"), end: at("2027-03-09T16:00:00Z") },
                gateway_reference: Some("sim_ref_0002".into()),
            }),
        ),
        (
            "refund",
            ReceiptBody::Refund(RefundReceipt {
                refund: cny(2650),
                movement: movement("refund on cancellation, as quoted", None),
            }),
        ),
        (
            "refund_late_charge",
            ReceiptBody::Refund(RefundReceipt {
                refund: cny(3900),
                movement: movement(
                    "charge for a period after the cancellation took effect",
                    Some(at("2027-02-09T16:00:00Z")),
                ),
            }),
        ),
        (
            "fee",
            ReceiptBody::Fee(FeeReceipt { fee: cny(5000), movement: movement("early-termination fee, as quoted", None) }),
        ),
        (
            "deletion_certificate",
            ReceiptBody::DeletionCertificate(DeletionCertificate {
                deletion_id: "del_example".into(),
                scope: DeletionScope { service: "*".into(), child_id: None },
                cause: "request".into(),
                requested_at: at("2027-03-01T02:00:00Z"),
                performed_at: at("2027-03-01T02:00:00Z"),
                key_destroyed_at: at("2027-03-01T02:00:00Z"),
                data_keys_destroyed: 1,
                encryption: "XChaCha20-Poly1305 per (family, service) data key, destroyed: every copy, backups included, is unreadable".into(),
                deleted: vec![
                    Deleted { category: "child_records".into(), kind: Some("progress".into()), fields: None, count: 12, kept: None },
                    Deleted {
                        category: "guardian_personal_data".into(),
                        kind: None,
                        fields: Some(vec!["name".into(), "email".into(), "password".into()]),
                        count: 1,
                        kept: None,
                    },
                ],
                kept: vec![Kept {
                    category: HoldCategory::Ledger,
                    count: Some(3),
                    basis: "PRC Accounting Law art. 35".into(),
                    until: Some(at("2057-03-01T02:00:00Z")),
                    allowed_use: "storage only".into(),
                }],
                account_closed: true,
            }),
        ),
        (
            "dispute",
            ReceiptBody::Dispute(DisputeReceipt {
                dispute_id: "dsp_example".into(),
                dispute_kind: "charge_after_cancellation".into(),
                channel: "portal".into(),
                filed_at: at("2027-03-01T02:00:00Z"),
                about: DisputeAbout {
                    subscription_id: Some("sub_example".into()),
                    ledger_entry_id: Some("led_example".into()),
                    ..DisputeAbout::default()
                },
                description_sha256: "9f2c1e0d3b4a59687f8e9d0c1b2a39485766f5e4d3c2b1a0f9e8d7c6b5a49382".into(),
                evidence: vec![EvidenceRef {
                    sha256: "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a".into(),
                    content_type: "image/png".into(),
                    bytes: 48213,
                }],
                level: "support".into(),
                first_response_due: at("2027-03-02T02:00:00Z"),
                resolution_due: at("2027-03-08T02:00:00Z"),
                settled: Some("refunded".into()),
                refunds: vec!["led_refund_example".into()],
                agent: None,
                forwarded_by: None,
            }),
        ),
    ]
}

fn provider() -> Provider {
    Provider {
        legal_name: "上海宝宝学堂教育科技有限公司 (Baobao Learning Ltd.)".into(),
        support_email: Some("help@baobao.example".into()),
        support_phone: Some("+86 21 5555 0100".into()),
        postal_address: Some("上海市徐汇区示例路 88 号 200030".into()),
        complaints: Some("12315 (市场监管投诉热线 / consumer complaints hotline)".into()),
    }
}

fn document(body: ReceiptBody) -> ReceiptDocument {
    let keys = SigningKeys::from_secret([7; 32]);
    let signed = SignedBody {
        receipt_id: "rcp_example".into(),
        receipt_number: "BB-20270120-7K3M9QXA".into(),
        family_id: "fam_example".into(),
        issued_at: at("2027-01-20T04:00:00Z"),
        provider: Some(provider()),
        body,
    };
    receipts::sign(&keys, &signed).unwrap()
}

#[test]
fn every_receipt_body() {
    for (name, body) in examples() {
        let document = document(body.clone());
        assert_eq!(document.signed_body().unwrap().body, body, "{name} reads back as it was built");
        assert_eq!(receipts::verify(&document, &SigningKeys::from_secret([7; 32]).key_set()), Ok(()));
        insta::assert_json_snapshot!(format!("receipt_{name}"), document.body);
    }
}

#[test]
fn the_openapi_document() {
    insta::assert_json_snapshot!("openapi", baobao_server::api::openapi_document());
}

/// Every email a guardian can get, with the payload its service queues.
fn emails() -> Vec<(&'static str, &'static str, serde_json::Value)> {
    let plan = json!({"zh-CN": "数学乐园 月度", "en": "Maths Garden, monthly"});
    let zone = "Asia/Shanghai";
    let receipt = |name: &str| {
        let body = examples().into_iter().find(|(n, _)| *n == name).unwrap().1;
        serde_json::to_value(document(body)).unwrap()
    };
    let reminder = |variant: &str, cancel_by: &str| {
        json!({
            "plan": plan, "time_zone": zone, "renews_at": "2027-02-09T16:00:00Z", "price": cny(3900),
            "cancel_by": cancel_by, "ends_if_cancelled_now": "2027-03-09T16:00:00Z",
            "variant": variant, "subscription_id": "sub_example",
        })
    };
    let refunds = json!([{"amount": cny(2650), "period_start": null, "note": "refund on cancellation, as quoted", "reference": "sim_ref_0001"}]);
    vec![
        ("subscription_confirmed", "", json!({"receipt": receipt("subscription"), "plan": plan, "time_zone": zone})),
        (
            "cancellation_received",
            "",
            json!({"receipt": receipt("cancellation_end_of_period"), "plan": plan, "time_zone": zone, "ended": false}),
        ),
        (
            "cancellation_received",
            "ended",
            json!({"receipt": receipt("cancellation_now"), "plan": plan, "time_zone": zone, "ended": true}),
        ),
        ("renewal_reminder", "", reminder("on_time", "2027-02-02T16:00:00Z")),
        ("renewal_reminder", "late", reminder("late", "2027-02-02T16:00:00Z")),
        ("renewal_reminder", "trial", reminder("trial", "2027-02-02T16:00:00Z")),
        (
            "cancellation_effective",
            "",
            json!({"plan": plan, "time_zone": zone, "effective_at": "2027-02-09T16:00:00Z", "subscription_id": "sub_example", "fee": null, "variant": "on_time"}),
        ),
        (
            "cancellation_effective",
            "fee",
            json!({"plan": plan, "time_zone": zone, "effective_at": "2027-02-09T16:00:00Z", "subscription_id": "sub_example", "fee": cny(5000), "variant": "fee"}),
        ),
        (
            "refund_issued",
            "",
            json!({"plan": plan, "time_zone": zone, "refunds": refunds, "after_request": false, "subscription_id": "sub_example", "receipt": receipt("refund")}),
        ),
        (
            "refund_issued",
            "after_request",
            json!({"plan": plan, "time_zone": zone, "refunds": [{"amount": cny(3900), "period_start": "2027-02-09T16:00:00Z", "note": "charge for a period after the cancellation took effect", "reference": "sim_ref_0003"}], "after_request": true, "subscription_id": "sub_example", "receipt": receipt("refund_late_charge")}),
        ),
        (
            "refund_failed",
            "",
            json!({"plan": plan, "time_zone": zone, "refunds": [{"amount": cny(2650), "period_start": null}], "subscription_id": "sub_example"}),
        ),
        (
            "payment_received",
            "",
            json!({"plan": plan, "time_zone": zone, "renews_at": "2027-03-09T16:00:00Z", "subscription_id": "sub_example", "receipt": receipt("charge")}),
        ),
        (
            "fee_charged",
            "",
            json!({"plan": plan, "time_zone": zone, "subscription_id": "sub_example", "receipt": receipt("fee")}),
        ),
        ("verification_code", "", json!({"code": "482913", "valid_minutes": 10})),
        (
            "deletion_certificate",
            "",
            json!({"receipt": receipt("deletion_certificate"), "time_zone": zone, "variant": null}),
        ),
        (
            "deletion_certificate",
            "retention",
            json!({"receipt": receipt("deletion_certificate"), "time_zone": zone, "variant": "retention"}),
        ),
        (
            "dispute_filed",
            "settled",
            json!({"receipt": receipt("dispute"), "time_zone": zone, "dispute_id": "dsp_example", "dispute_kind": "charge_after_cancellation",
                "level": "support", "resolution_due": "2027-03-08T02:00:00Z", "outcome": "refunded", "variant": "settled",
                "dispute_link": "/d/dsp_example/token"}),
        ),
        (
            "dispute_filed",
            "open",
            json!({"receipt": receipt("dispute"), "time_zone": zone, "dispute_id": "dsp_example", "dispute_kind": "wrong_charge",
                "level": "support", "resolution_due": "2027-03-08T02:00:00Z", "outcome": null, "variant": "open",
                "dispute_link": "/d/dsp_example/token"}),
        ),
        (
            "dispute_message",
            "",
            json!({"time_zone": zone, "dispute_id": "dsp_example", "level": "support", "message": "We are checking the advert you sent.",
                "dispute_link": "/d/dsp_example/token"}),
        ),
        (
            "dispute_escalated",
            "",
            json!({"time_zone": zone, "dispute_id": "dsp_example", "level": "supervisor", "resolution_due": "2027-03-15T02:00:00Z",
                "message": "The parent asked for a supervisor.", "dispute_link": "/d/dsp_example/token"}),
        ),
        (
            "dispute_escalated",
            "overdue",
            json!({"time_zone": zone, "dispute_id": "dsp_example", "level": "supervisor", "resolution_due": "2027-03-15T02:00:00Z",
                "variant": "overdue", "dispute_link": "/d/dsp_example/token"}),
        ),
        (
            "dispute_resolved",
            "",
            json!({"time_zone": zone, "dispute_id": "dsp_example", "outcome": "upheld", "message": "The advert was wrong; we refunded the difference.",
                "dispute_link": "/d/dsp_example/token"}),
        ),
        ("dispute_guardian_wrote", "", json!({"time_zone": zone, "dispute_id": "dsp_example", "level": "support"})),
        ("dispute_code", "", json!({"code": "482913", "valid_minutes": 10})),
    ]
}

#[test]
fn every_email_in_both_languages() {
    for (template, variant, payload) in emails() {
        for locale in [Locale::En, Locale::ZhCn] {
            let (to, id) = ("parent@example.com", "<msg_example@baobao>");
            let provider = provider();
            let keys = baobao_server::keys::SigningKeys::from_secret([1; 32]);
            let letterhead =
                Letterhead { provider: &provider, public_url: Some("https://portal.example"), keys: &keys };
            let email = baobao_server::mail::render(template, locale, to, &payload, id, &letterhead);
            let attachments: Vec<&str> = email.attachments.iter().map(|(name, _)| name.as_str()).collect();
            let text = format!(
                "Subject: {}\nAttachments: {}\n\n{}",
                email.subject,
                if attachments.is_empty() { "-".to_owned() } else { attachments.join(", ") },
                email.text
            );
            assert!(
                !text.contains("{ $") && !text.contains("email-") && !text.contains("Unknown localization key"),
                "{template}/{variant}: unresolved text\n{text}"
            );
            // One language: the other's words appear only where the operator
            // or the parent typed them (the provider's details, the plan's
            // name in this language).
            let plan = payload["plan"][locale.tag()].as_str().unwrap_or_default();
            let typed = [
                provider.legal_name.as_str(),
                provider.complaints.as_deref().unwrap(),
                provider.postal_address.as_deref().unwrap(),
                plan,
                to,
                "https://portal.example",
                // What staff wrote to the parent, as they wrote it.
                payload["message"].as_str().unwrap_or_default(),
            ];
            let stray = crate::helpers::other_language(&email.subject, locale.tag(), &typed)
                .into_iter()
                .chain(crate::helpers::other_language(&email.text, locale.tag(), &typed))
                .collect::<Vec<_>>();
            assert!(stray.is_empty(), "{template}/{variant} in {}: {stray:?}\n{text}", locale.tag());
            let suffix = if variant.is_empty() { String::new() } else { format!("_{variant}") };
            insta::assert_snapshot!(format!("email_{template}{suffix}_{}", locale.tag()), text);
        }
    }
}
