//! Email: the messages the outbox delivers, rendered in the guardian's
//! language from the Fluent catalogue (`locales/*/email.ftl`), and sent over
//! SMTP with lettre. Each message carries the signed receipt it is about.

use std::time::Duration;

use async_trait::async_trait;
use baobao_domain::{Locale, Money};
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::i18n::T;
use baobao_domain::receipt::Provider;

pub const SMTP_TIMEOUT_SECONDS: u64 = 10;

/// One email, ready to send.
#[derive(Clone, Debug)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// `(file name, JSON)` attachments.
    pub attachments: Vec<(String, String)>,
    /// Stable per outbox message, so a re-delivery is recognisably the same mail.
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailError(pub String);

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, email: &Email) -> Result<(), MailError>;
}

/// SMTP delivery to a relay (`smtp://host:port`), e.g. the local MTA.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, MailError> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or_else(|| MailError("the SMTP URL must look like smtp://host:port".into()))?;
        let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| MailError("the SMTP port is not a number".into()))?),
            None => (rest.trim_end_matches('/'), 25),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(Duration::from_secs(SMTP_TIMEOUT_SECONDS)))
            .build();
        let from = from.parse().map_err(|_| MailError(format!("{from:?} is not a sender address")))?;
        Ok(SmtpMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), MailError> {
        let to: Mailbox = email.to.parse().map_err(|_| MailError("the recipient address is not valid".into()))?;
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(email.text.clone()));
        for (name, json) in &email.attachments {
            parts = parts.singlepart(
                Attachment::new(name.clone())
                    .body(json.clone(), ContentType::parse("application/json").map_err(|e| MailError(e.to_string()))?),
            );
        }
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(email.subject.clone())
            .message_id(Some(email.message_id.clone()))
            .multipart(parts)
            .map_err(|e| MailError(e.to_string()))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| MailError(e.to_string()))
    }
}

fn money(value: &serde_json::Value, locale: Locale) -> String {
    serde_json::from_value::<Money>(value.clone()).map(|m| m.display_in(locale)).unwrap_or_default()
}

fn date(value: &serde_json::Value, zone: &str) -> String {
    let instant = value.as_str().and_then(|v| v.parse::<jiff::Timestamp>().ok());
    match (instant, baobao_domain::calendar::Calendar::new(zone)) {
        (Some(at), Ok(calendar)) => calendar.zoned(at).strftime("%Y-%m-%d %H:%M").to_string(),
        (Some(at), Err(_)) => at.to_string(),
        _ => String::new(),
    }
}

/// One line per refund: the amount, and the period it was for.
fn refund_lines(t: &T, refunds: &serde_json::Value, zone: &str) -> String {
    let Some(refunds) = refunds.as_array() else { return String::new() };
    refunds
        .iter()
        .map(|r| {
            let line = match r["period_start"].as_str() {
                Some(_) => t.args(
                    "email-refund-line-period",
                    &[("amount", money(&r["amount"], t.locale)), ("period", date(&r["period_start"], zone))],
                ),
                None => t.args("email-refund-line", &[("amount", money(&r["amount"], t.locale))]),
            };
            match r["reference"].as_str() {
                Some(reference) => format!("{line} ({})", t.arg("email-refund-reference", "reference", reference)),
                None => line,
            }
        })
        .map(|line| format!("- {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What every email carries besides its message: who sent it, and where
/// the portal is (for links to the receipt an email talks about).
pub struct Letterhead<'a> {
    pub provider: &'a Provider,
    /// The portal's public address, e.g. `https://baobao.example`.
    pub public_url: Option<&'a str>,
    /// The server's keys: a receipt's link opens it without signing in.
    pub keys: &'a crate::keys::SigningKeys,
}

/// Who sent it and how to reach them, under every email.
fn provider_lines(t: &T, provider: &Provider) -> String {
    if !provider.is_set() {
        return String::new();
    }
    let contact: Vec<&str> =
        [provider.support_email.as_deref(), provider.support_phone.as_deref()].into_iter().flatten().collect();
    let mut lines = format!("\n\n{}", provider.legal_name);
    if !contact.is_empty() {
        lines.push('\n');
        lines.push_str(&t.arg("email-provider-contact", "contact", contact.join(" · ")));
    }
    if let Some(address) = &provider.postal_address {
        lines.push('\n');
        lines.push_str(&t.arg("email-provider-letters", "address", address.clone()));
    }
    if let Some(route) = &provider.complaints {
        lines.push('\n');
        lines.push_str(&t.arg("email-provider-complaints", "route", route.clone()));
    }
    lines
}

/// A word of a catalogue's closed list (`dispute-level-support`), or
/// nothing when the payload does not carry one.
fn word(t: &T, prefix: &str, value: &serde_json::Value) -> String {
    value.as_str().map(|v| t.get(&format!("{prefix}-{v}"))).unwrap_or_default()
}

/// Renders a queued message: `template` names the catalogue entries, the
/// payload carries `receipt` (the signed document), `plan` (names in both
/// languages) and `time_zone`.
pub fn render(
    template: &str,
    locale: Locale,
    to: &str,
    payload: &serde_json::Value,
    message_id: &str,
    letterhead: &Letterhead<'_>,
) -> Email {
    let t = T::new(locale);
    let receipt = &payload["receipt"];
    let body = &receipt["body"];
    let zone = payload["time_zone"].as_str().unwrap_or("UTC");
    let plan = payload["plan"][locale.tag()].as_str().unwrap_or_default().to_owned();
    let number = body["receipt_number"].as_str().unwrap_or_default().to_owned();
    let args = vec![
        ("plan", plan),
        ("number", number.clone()),
        ("date", date(&body["issued_at"], zone)),
        ("received", date(&body["received_at"], zone)),
        ("effective", date(&body["effective_at"], zone)),
        ("refund", money(&body["refund"], t.locale)),
        ("fee", money(if body["fee"].is_null() { &payload["fee"] } else { &body["fee"] }, t.locale)),
        ("renews", date(&payload["renews_at"], zone)),
        ("price", money(&payload["price"], t.locale)),
        ("cancel_by", date(&payload["cancel_by"], zone)),
        ("ends", date(&payload["ends_if_cancelled_now"], zone)),
        ("ended", date(&payload["effective_at"], zone)),
        ("code", payload["code"].as_str().unwrap_or_default().to_owned()),
        ("minutes", payload["valid_minutes"].as_i64().unwrap_or_default().to_string()),
        ("refunds", refund_lines(&t, &payload["refunds"], zone)),
        ("charge", money(&body["charge"], t.locale)),
        ("period_start", date(&body["current_period"]["start"], zone)),
        ("period_end", date(&body["current_period"]["end"], zone)),
        ("reference", body["gateway_reference"].as_str().unwrap_or_default().to_owned()),
        ("dispute_kind", word(&t, "dispute-kind", &payload["dispute_kind"])),
        ("level", word(&t, "dispute-level", &payload["level"])),
        ("outcome", word(&t, "dispute-outcome", &payload["outcome"])),
        ("due", date(&payload["resolution_due"], zone)),
        ("message", payload["message"].as_str().unwrap_or_default().to_owned()),
        ("dispute_id", payload["dispute_id"].as_str().unwrap_or_default().to_owned()),
    ];
    let subject = t.args(&format!("email-{template}-subject"), &args);
    // A cancellation that took effect at once (or took effect already, a
    // letter registered late) says so instead of "takes effect on".
    let body_key = match (payload["ended"] == true, payload["variant"].as_str()) {
        (true, _) => format!("email-{template}-body-ended"),
        (false, Some(variant)) if variant != "on_time" => format!("email-{template}-body-{variant}"),
        (false, _) => format!("email-{template}-body"),
    };
    let mut body_text = t.args(&body_key, &args);
    if payload["after_request"] == true {
        body_text = format!("{body_text}\n\n{}", t.get("email-refund_issued-after-request"));
    }
    // The receipt it talks about, on the portal: a link that opens it
    // without signing in, also once the account is closed.
    if let (Some(base), Some(id)) = (letterhead.public_url, receipt["id"].as_str()) {
        let link = format!("{}{}", base.trim_end_matches('/'), letterhead.keys.receipt_link(id));
        body_text = format!("{body_text}\n\n{}", t.arg("email-receipt-link", "link", link));
    }
    // A dispute's own page, which opens without signing in.
    if let (Some(base), Some(link)) = (letterhead.public_url, payload["dispute_link"].as_str()) {
        let link = format!("{}{link}", base.trim_end_matches('/'));
        body_text = format!("{body_text}\n\n{}", t.arg("email-dispute-link", "link", link));
    }
    // Every email says where to complain, also once the account is closed.
    let complain = match letterhead.public_url {
        Some(base) => {
            format!("\n{}", t.arg("email-complain", "link", format!("{}/complain", base.trim_end_matches('/'))))
        }
        None => String::new(),
    };
    let text =
        format!("{body_text}\n\n{}{complain}{}\n", t.get("email-footer"), provider_lines(&t, letterhead.provider));
    let attachments = if receipt.is_null() {
        Vec::new()
    } else {
        vec![(format!("receipt-{number}.json"), serde_json::to_string_pretty(receipt).unwrap_or_default())]
    };
    Email { to: to.to_owned(), subject, text, attachments, message_id: message_id.to_owned() }
}
