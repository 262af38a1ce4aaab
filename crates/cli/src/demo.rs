//! `baobao demo`: the server on the embedded SQLite with sample data — a
//! monthly plan with notice and cooling-off, a plan with a twelve-month
//! commitment and an early-termination fee, an admin, and a family with a
//! child and a subscription — on a simulated clock and gateway, so that a
//! visitor can move time forward and watch renewals and cancellations.

use anyhow::{Result, anyhow};
use baobao_domain::Locale;
use baobao_domain::ids::FamilyId;
use baobao_server::auth::{Caller, Role};
use baobao_server::error::ApiError;
use baobao_server::services::accounts::{GuardianInput, SignUpInput};
use baobao_server::services::children::ChildInput;
use baobao_server::services::plans::{PlanInput, PlanNamesInput};
use baobao_server::services::subscriptions::SubscribeInput;
use baobao_server::state::{ClockMode, GatewayMode};
use baobao_server::{AppState, messages};
use baobao_store::StoreError;
use serde_json::json;

use crate::{ServeArgs, open_store};
use baobao_server::services::disputes::{DisputeInput, Filer, MessageInput, Via};
use baobao_server::services::{accounts, children, disputes, plans, subscriptions};

pub const ADMIN_EMAIL: &str = "admin@demo.baobao.example";
pub const ADMIN_PASSWORD: &str = "demo-admin-password";
/// Support staff for the console, one per role that files for guardians.
pub const SUPPORT_STAFF: [(&str, &str); 2] =
    [("agent@demo.baobao.example", "agent"), ("supervisor@demo.baobao.example", "supervisor")];
pub const SUPPORT_PASSWORD: &str = "demo-staff-password";
pub const PARENT_EMAIL: &str = "parent@demo.baobao.example";
pub const PARENT_PASSWORD: &str = "demo-parent-password";

fn explain(error: ApiError) -> anyhow::Error {
    anyhow!("{}", messages::render(error.code, Locale::En, &error.details))
}

pub async fn run(url: &str, serve: ServeArgs) -> Result<()> {
    let store = open_store(url).await?;
    let mut config = serve.config();
    config.clock = ClockMode::Simulated;
    config.gateway = GatewayMode::Simulated;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{}", serve.listen));
    }
    if !config.provider.is_set() {
        // An example provider, so that receipts and emails show where its name goes.
        config.provider = baobao_domain::receipt::Provider {
            legal_name: "宝宝示例科技有限公司 (Baobao Demo Ltd.)".to_owned(),
            support_email: Some("help@demo.baobao.example".to_owned()),
            support_phone: Some("+86 21 5555 0100".to_owned()),
            postal_address: Some("上海市徐汇区示例路 88 号 200030".to_owned()),
            complaints: Some("12315 (全国消费者投诉热线 / national consumer complaints hotline)".to_owned()),
        };
    }
    let state = AppState::new(store, config).await?;
    seed(&state).await?;
    let listen = serve.listen;
    baobao_server::serve(state, listen, |addr| {
        println!("baobao demo is running on http://{addr}");
        println!();
        println!("  catalogue:      curl http://{addr}/v1/plans");
        println!("  API document:   http://{addr}/openapi.json");
        println!("  signing keys:   http://{addr}/.well-known/baobao/keys.json");
        println!();
        println!("  parent login:   {PARENT_EMAIL} / {PARENT_PASSWORD}");
        println!(
            "                  curl -X POST http://{addr}/v1/auth/sessions -H 'content-type: application/json' \\"
        );
        println!("                       -d '{{\"email\":\"{PARENT_EMAIL}\",\"password\":\"{PARENT_PASSWORD}\"}}'");
        println!("  admin login:    {ADMIN_EMAIL} / {ADMIN_PASSWORD} (add \"realm\":\"staff\")");
        println!("  staff console:  http://{addr}/console");
        for (email, _) in SUPPORT_STAFF {
            println!("                  {email} / {SUPPORT_PASSWORD}");
        }
        println!();
        println!("  The clock is simulated: as admin, POST /v1/admin/clock {{\"now\": \"…\"}} moves time forward,");
        println!("  and POST /v1/admin/billing-runs runs renewals and cancellations at that time.");
        println!("  Stop with Ctrl-C; the data stays in {url}.");
    })
    .await?;
    Ok(())
}

/// Creates what is missing; running the demo again keeps what is there.
async fn seed(state: &AppState) -> Result<()> {
    let admin_id = match state.store.staff_by_email(ADMIN_EMAIL).await {
        Ok(staff) => staff.id,
        Err(StoreError::NotFound) => {
            accounts::create_staff(state, "operator", ADMIN_EMAIL, ADMIN_PASSWORD, "admin").await.map_err(explain)?
        }
        Err(other) => return Err(other.into()),
    };
    for (email, role) in SUPPORT_STAFF {
        if let Err(StoreError::NotFound) = state.store.staff_by_email(email).await {
            accounts::create_staff(state, "operator", email, SUPPORT_PASSWORD, role).await.map_err(explain)?;
        }
    }
    let admin = Caller::Staff { staff_id: admin_id, role: Role::Admin };
    if state.store.plans().await?.is_empty() {
        for plan in sample_plans() {
            plans::create_plan(state, &admin, plan, Locale::En).await.map_err(explain)?;
        }
        eprintln!("baobao: created the sample plans");
    }
    if let Err(StoreError::NotFound) = state.store.guardian_by_email(PARENT_EMAIL).await {
        let signed_up = accounts::sign_up(
            state,
            SignUpInput {
                guardian: GuardianInput {
                    email: PARENT_EMAIL.to_owned(),
                    password: PARENT_PASSWORD.to_owned(),
                    name: "王芳".to_owned(),
                    phone: Some("+86 138 0013 8000".to_owned()),
                    locale: "zh-CN".to_owned(),
                    time_zone: "Asia/Shanghai".to_owned(),
                },
            },
        )
        .await
        .map_err(explain)?;
        let family_id = FamilyId::parse(&signed_up.family.id)?;
        let guardian_id = baobao_domain::ids::GuardianId::parse(&signed_up.guardian.id)?;
        let parent = Caller::Guardian { guardian_id, family_id: family_id.clone(), locale: Locale::ZhCn };
        children::add_child(
            state,
            &parent,
            &family_id,
            ChildInput { name: "小明".to_owned(), birth_date: "2018-05-01".to_owned(), consent: true },
        )
        .await
        .map_err(explain)?;
        let plans = plans::plans(state, Locale::En).await.map_err(explain)?;
        if let Some(monthly) = plans.iter().find(|p| p.service == "edu") {
            let subscribed = subscriptions::subscribe(
                state,
                &parent,
                SubscribeInput { plan_id: monthly.id.clone(), accept_policy_sha256: monthly.policy.sha256.clone() },
            )
            .await
            .map_err(explain)?;
            sample_complaint(state, &parent, &subscribed.subscription.id).await?;
        }
        eprintln!("baobao: created the sample family, child, subscription and complaint");
    }
    Ok(())
}

/// A complaint support has answered, for the portal's and the console's
/// complaint pages to show something.
async fn sample_complaint(state: &AppState, parent: &Caller, subscription_id: &str) -> Result<()> {
    let input = DisputeInput {
        kind: "wrong_charge".to_owned(),
        family_id: None,
        subscription_id: Some(subscription_id.to_owned()),
        ledger_entry_id: None,
        cancellation_id: None,
        receipt_number: None,
        tracking_number: None,
        description: "我用了新用户优惠券，应付 29 元，却扣了 39 元。".to_owned(),
        evidence: Vec::new(),
        forwarded_by: None,
    };
    let filed = disputes::file(state, Filer::Caller(parent), Via::Portal, input, None).await.map_err(explain)?;
    let agent = state.store.staff_by_email(SUPPORT_STAFF[0].0).await?;
    let agent = Caller::Staff { staff_id: agent.id, role: agent.role };
    let answer = MessageInput {
        text: "我们正在核实优惠券记录，明天答复您。".to_owned(), evidence: Vec::new()
    };
    disputes::post_message(state, &agent, &filed.dispute.id, answer).await.map_err(explain)?;
    Ok(())
}

fn sample_plans() -> Vec<PlanInput> {
    vec![
        PlanInput {
            service: "edu".to_owned(),
            name: PlanNamesInput {
                zh_cn: "宝宝学堂 月度会员".to_owned(), en: "Baobao Learning, monthly".to_owned()
            },
            policy: json!({
                "price": {"amount_minor": 3900, "currency": "CNY"},
                "period": "P1M",
                "notice_days": 7,
                "cooling_off_days": 7,
                "allow_immediate": true,
                "refund_on_immediate": "prorated",
                "channels": ["self_service", "support", "written_notice"],
                "written_notice_address": "上海市徐汇区示例路 88 号 宝宝学堂客户服务部 200030",
                "reminder_days": 7,
                "retention_days": 30,
                "legal_holds": [{"category": "invoices", "basis": "《中华人民共和国发票管理办法》第二十九条", "retain_years": 5}],
            }),
        },
        PlanInput {
            service: "play".to_owned(),
            name: PlanNamesInput {
                zh_cn: "宝宝乐园 年约（按月付费）".to_owned(),
                en: "Baobao Play, 12-month term billed monthly".to_owned(),
            },
            policy: json!({
                "price": {"amount_minor": 2900, "currency": "CNY"},
                "period": "P1M",
                "commitment_periods": 12,
                "early_termination_fee": {"fixed": {"amount_minor": 10000, "currency": "CNY"}},
                "notice_days": 14,
                "cooling_off_days": 7,
                "allow_immediate": false,
                "channels": ["self_service", "support"],
                "retention_days": 60,
                "legal_holds": [{"category": "ledger", "basis": "《会计档案管理办法》", "retain_years": 10}],
            }),
        },
    ]
}
