//! The policy: a plan's versioned, machine-readable terms.
//!
//! A `PolicyDraft` is what an admin sends; `PolicyDraft::validate` turns it
//! into a `Policy` or says, field by field, what is wrong. A `Policy` is
//! immutable: a change is a new version with a new SHA-256, and a
//! subscription stays bound to the version its guardian accepted. The
//! policy also renders itself as plain language, so that no page ever shows
//! a hand-written copy of the terms.

use serde::{Deserialize, Serialize};

use crate::calendar::PeriodLength;
use crate::canonical::{canonical_json, sha256_hex};
use crate::locale::Locale;
use crate::money::Money;

/// Bounds that keep the terms meaningful and every computation in range.
pub const TRIAL_DAYS_MAX: u32 = 366;
pub const COOLING_OFF_DAYS_MAX: u32 = 366;
pub const COMMITMENT_PERIODS_MAX: u32 = 120;
pub const RETENTION_DAYS_MAX: u32 = 3660;
/// The renewal reminder comes `reminder_days` before the notice deadline
/// (`period_end − notice_days`): never fewer than this many days before it.
pub const REMINDER_DAYS_MIN: u32 = 5;
pub const REMINDER_DAYS_DEFAULT: u32 = 7;
/// For a period of a year or longer, the reminder lands this many days
/// before the renewal (`notice_days + reminder_days`), as California's
/// automatic-renewal law asks; by default 30.
pub const ANNUAL_REMINDER_LEAD_DAYS_MIN: u32 = 15;
pub const ANNUAL_REMINDER_LEAD_DAYS_MAX: u32 = 45;
pub const ANNUAL_REMINDER_LEAD_DAYS_DEFAULT: u32 = 30;
pub const LEGAL_HOLDS_MAX: usize = 16;
pub const LEGAL_HOLD_YEARS_MAX: u32 = 30;
pub const ADDRESS_CHARS_MAX: usize = 500;
pub const BASIS_CHARS_MAX: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    SelfService,
    Support,
    WrittenNotice,
}

impl Channel {
    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::SelfService => "self_service",
            Channel::Support => "support",
            Channel::WrittenNotice => "written_notice",
        }
    }

    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "self_service" => Some(Channel::SelfService),
            "support" => Some(Channel::Support),
            "written_notice" => Some(Channel::WrittenNotice),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundRule {
    Prorated,
    Full,
    None,
}

/// `"none"`, `{"fixed": {amount_minor, currency}}` or
/// `{"percent_of_remaining": p}` with `p` a whole percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EarlyTerminationFee {
    None,
    Fixed(Money),
    PercentOfRemaining(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldCategory {
    Invoices,
    Ledger,
    Receipts,
    ConsentRecords,
}

/// Something kept after deletion, and why: storage only, never used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHold {
    pub category: HoldCategory,
    /// The law or rule that requires it, as the provider cites it.
    pub basis: String,
    pub retain_years: u32,
}

/// A policy as an admin submits it; every omitted field has the default a
/// careful provider would choose.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDraft {
    pub price: Money,
    pub period: String,
    #[serde(default = "yes")]
    pub auto_renew: bool,
    #[serde(default)]
    pub trial_days: u32,
    #[serde(default)]
    pub commitment_periods: u32,
    #[serde(default)]
    pub notice_days: u32,
    #[serde(default)]
    pub cooling_off_days: u32,
    #[serde(default)]
    pub allow_immediate: bool,
    #[serde(default = "prorated")]
    pub refund_on_immediate: RefundRule,
    #[serde(default = "no_fee")]
    pub early_termination_fee: EarlyTerminationFee,
    #[serde(default)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub written_notice_address: Option<String>,
    #[serde(default)]
    pub reminder_days: Option<u32>,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub legal_holds: Vec<LegalHold>,
}

fn yes() -> bool {
    true
}
fn prorated() -> RefundRule {
    RefundRule::Prorated
}
fn no_fee() -> EarlyTerminationFee {
    EarlyTerminationFee::None
}

/// Validated terms. Serializes to exactly the fields of DESIGN.md's policy;
/// the SHA-256 is over the canonical JSON of that serialization.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub price: Money,
    pub period: PeriodLength,
    pub auto_renew: bool,
    pub trial_days: u32,
    pub commitment_periods: u32,
    pub notice_days: u32,
    pub cooling_off_days: u32,
    pub allow_immediate: bool,
    pub refund_on_immediate: RefundRule,
    pub early_termination_fee: EarlyTerminationFee,
    pub channels: Vec<Channel>,
    pub written_notice_address: Option<String>,
    pub reminder_days: u32,
    pub retention_days: u32,
    pub legal_holds: Vec<LegalHold>,
}

/// What is wrong with a draft: the field and a reason in both locales.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {en}")]
pub struct PolicyError {
    pub field: &'static str,
    pub en: String,
    pub zh_cn: String,
}

impl PolicyError {
    fn new(field: &'static str, en: impl Into<String>, zh_cn: impl Into<String>) -> Self {
        PolicyError { field, en: en.into(), zh_cn: zh_cn.into() }
    }

    pub fn message(&self, locale: Locale) -> &str {
        match locale {
            Locale::En => &self.en,
            Locale::ZhCn => &self.zh_cn,
        }
    }
}

impl PolicyDraft {
    pub fn validate(self) -> Result<Policy, PolicyError> {
        let period = PeriodLength::parse(&self.period).map_err(|_| {
            PolicyError::new(
                "period",
                "must be an ISO-8601 period such as P1M, P3M, P1Y, P7D or P2W",
                "必须是 ISO-8601 周期，例如 P1M、P3M、P1Y、P7D 或 P2W",
            )
        })?;
        if self.trial_days > TRIAL_DAYS_MAX {
            return Err(PolicyError::new(
                "trial_days",
                format!("must be at most {TRIAL_DAYS_MAX}"),
                format!("不得超过 {TRIAL_DAYS_MAX} 天"),
            ));
        }
        if self.cooling_off_days > COOLING_OFF_DAYS_MAX {
            return Err(PolicyError::new(
                "cooling_off_days",
                format!("must be at most {COOLING_OFF_DAYS_MAX}"),
                format!("不得超过 {COOLING_OFF_DAYS_MAX} 天"),
            ));
        }
        if self.commitment_periods > COMMITMENT_PERIODS_MAX {
            return Err(PolicyError::new(
                "commitment_periods",
                format!("must be at most {COMMITMENT_PERIODS_MAX}"),
                format!("不得超过 {COMMITMENT_PERIODS_MAX} 个周期"),
            ));
        }
        // A notice at least as long as the period could never be met.
        if self.notice_days >= period.min_days() {
            return Err(PolicyError::new(
                "notice_days",
                format!("must be shorter than the period ({} days at the least)", period.min_days()),
                format!("必须短于一个周期（至少 {} 天）", period.min_days()),
            ));
        }
        let reminder_days = self.validated_reminder_days(period)?;
        let retention_days = self.retention_days.ok_or_else(|| {
            PolicyError::new(
                "retention_days",
                "is required: data may never be kept indefinitely",
                "为必填项：数据不得无限期保留",
            )
        })?;
        if retention_days > RETENTION_DAYS_MAX {
            return Err(PolicyError::new(
                "retention_days",
                format!("must be at most {RETENTION_DAYS_MAX}"),
                format!("不得超过 {RETENTION_DAYS_MAX} 天"),
            ));
        }
        self.validate_fee()?;
        let channels = self.validated_channels()?;
        let written_notice_address = self.validated_address(&channels)?;
        self.validate_legal_holds()?;
        Ok(Policy {
            price: self.price,
            period,
            auto_renew: self.auto_renew,
            trial_days: self.trial_days,
            commitment_periods: self.commitment_periods,
            notice_days: self.notice_days,
            cooling_off_days: self.cooling_off_days,
            allow_immediate: self.allow_immediate,
            refund_on_immediate: self.refund_on_immediate,
            early_termination_fee: self.early_termination_fee,
            channels,
            written_notice_address,
            reminder_days,
            retention_days,
            legal_holds: self.legal_holds,
        })
    }

    /// The reminder is due `reminder_days` before the notice deadline, so
    /// `notice_days + reminder_days` is how long before the renewal it
    /// lands: inside the period (for the shortest period of this length),
    /// and 15–45 days for a period of a year or longer. Defaults fit.
    fn validated_reminder_days(&self, period: PeriodLength) -> Result<u32, PolicyError> {
        let notice = self.notice_days;
        if period.is_a_year_or_longer() {
            let days = self
                .reminder_days
                .unwrap_or(ANNUAL_REMINDER_LEAD_DAYS_DEFAULT.saturating_sub(notice).max(REMINDER_DAYS_MIN));
            let lead = notice + days;
            if days < REMINDER_DAYS_MIN
                || !(ANNUAL_REMINDER_LEAD_DAYS_MIN..=ANNUAL_REMINDER_LEAD_DAYS_MAX).contains(&lead)
            {
                return Err(PolicyError::new(
                    "reminder_days",
                    format!(
                        "must be at least {REMINDER_DAYS_MIN}, and with notice_days ({notice}) put the reminder {ANNUAL_REMINDER_LEAD_DAYS_MIN} to {ANNUAL_REMINDER_LEAD_DAYS_MAX} days before the renewal of a period of a year or longer"
                    ),
                    format!(
                        "不得少于 {REMINDER_DAYS_MIN} 天，且与提前通知天数（{notice} 天）相加后，须使一年及以上周期的续费提醒在续费前 {ANNUAL_REMINDER_LEAD_DAYS_MIN} 到 {ANNUAL_REMINDER_LEAD_DAYS_MAX} 天之间送达"
                    ),
                ));
            }
            return Ok(days);
        }
        // A short period cannot fit a 7-day reminder before its deadline:
        // the default shrinks to fit, but never under the legal minimum.
        let room = period.min_days().saturating_sub(1).saturating_sub(notice);
        let days = self.reminder_days.unwrap_or(REMINDER_DAYS_DEFAULT.min(room));
        if days < REMINDER_DAYS_MIN {
            return Err(PolicyError::new(
                "reminder_days",
                format!(
                    "must be at least {REMINDER_DAYS_MIN} (with notice_days {notice}, the period leaves room for {room})"
                ),
                format!("不得少于 {REMINDER_DAYS_MIN} 天（提前通知 {notice} 天后，周期内只剩 {room} 天）"),
            ));
        }
        if notice + days >= period.min_days() {
            return Err(PolicyError::new(
                "reminder_days",
                format!(
                    "with notice_days ({notice}) must be shorter than the period ({} days at the least)",
                    period.min_days()
                ),
                format!("与提前通知天数（{notice} 天）相加后必须短于一个周期（至少 {} 天）", period.min_days()),
            ));
        }
        Ok(days)
    }

    fn validate_fee(&self) -> Result<(), PolicyError> {
        match self.early_termination_fee {
            EarlyTerminationFee::None => Ok(()),
            _ if self.commitment_periods == 0 => Err(PolicyError::new(
                "early_termination_fee",
                "needs a commitment: without commitment_periods there is nothing to terminate early",
                "需要最短承诺期：未设置 commitment_periods 时不存在提前解约",
            )),
            EarlyTerminationFee::Fixed(fee) if fee.currency != self.price.currency => Err(PolicyError::new(
                "early_termination_fee",
                "must be in the currency of the price",
                "币种必须与价格一致",
            )),
            EarlyTerminationFee::Fixed(fee) if fee.is_zero() => Err(PolicyError::new(
                "early_termination_fee",
                "a fixed fee must be more than zero; use \"none\" for no fee",
                "固定费用必须大于零；无费用请使用 \"none\"",
            )),
            EarlyTerminationFee::PercentOfRemaining(p) if p == 0 || p > 100 => Err(PolicyError::new(
                "early_termination_fee",
                "percent_of_remaining must be a whole percent from 1 to 100",
                "percent_of_remaining 必须是 1 到 100 之间的整数百分比",
            )),
            _ => Ok(()),
        }
    }

    fn validated_channels(&self) -> Result<Vec<Channel>, PolicyError> {
        let mut channels = self.channels.clone();
        if channels.is_empty() {
            channels.push(Channel::SelfService);
        }
        if !channels.contains(&Channel::SelfService) {
            return Err(PolicyError::new(
                "channels",
                "must include self_service: cancelling online is always possible",
                "必须包含 self_service：始终可以在线取消",
            ));
        }
        channels.sort();
        channels.dedup();
        Ok(channels)
    }

    fn validated_address(&self, channels: &[Channel]) -> Result<Option<String>, PolicyError> {
        let address =
            self.written_notice_address.as_deref().map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned);
        if channels.contains(&Channel::WrittenNotice) && address.is_none() {
            return Err(PolicyError::new(
                "written_notice_address",
                "is required when written_notice is an accepted channel",
                "接受书面通知时必须填写书面通知地址",
            ));
        }
        if address.as_ref().is_some_and(|a| a.chars().count() > ADDRESS_CHARS_MAX) {
            return Err(PolicyError::new(
                "written_notice_address",
                format!("must be at most {ADDRESS_CHARS_MAX} characters"),
                format!("不得超过 {ADDRESS_CHARS_MAX} 个字符"),
            ));
        }
        Ok(address)
    }

    fn validate_legal_holds(&self) -> Result<(), PolicyError> {
        if self.legal_holds.len() > LEGAL_HOLDS_MAX {
            return Err(PolicyError::new(
                "legal_holds",
                format!("at most {LEGAL_HOLDS_MAX} holds"),
                format!("最多 {LEGAL_HOLDS_MAX} 项"),
            ));
        }
        for hold in &self.legal_holds {
            let basis_chars = hold.basis.trim().chars().count();
            if basis_chars == 0 || basis_chars > BASIS_CHARS_MAX {
                return Err(PolicyError::new(
                    "legal_holds",
                    format!("each hold needs its legal basis (1 to {BASIS_CHARS_MAX} characters)"),
                    format!("每项保留都须注明法律依据（1 到 {BASIS_CHARS_MAX} 个字符）"),
                ));
            }
            if hold.retain_years == 0 || hold.retain_years > LEGAL_HOLD_YEARS_MAX {
                return Err(PolicyError::new(
                    "legal_holds",
                    format!("retain_years must be from 1 to {LEGAL_HOLD_YEARS_MAX}"),
                    format!("retain_years 必须在 1 到 {LEGAL_HOLD_YEARS_MAX} 之间"),
                ));
            }
        }
        Ok(())
    }
}

/// One paragraph of the plain-language terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TermsLine {
    pub topic: &'static str,
    pub text: String,
}

impl Policy {
    /// SHA-256 (hex) of the canonical JSON of the terms: what a guardian
    /// accepts when subscribing.
    pub fn sha256(&self) -> String {
        // A Policy holds only strings, integers, booleans and enums: it
        // always serializes, so an empty hash can never be produced.
        let bytes = canonical_json(self).unwrap_or_default();
        debug_assert!(!bytes.is_empty());
        sha256_hex(&bytes)
    }

    pub fn period_text(&self, locale: Locale) -> String {
        period_words(self.period, locale)
    }

    /// The terms in plain language, one line per topic, in a fixed order.
    pub fn render(&self, locale: Locale) -> Vec<TermsLine> {
        let zh = locale == Locale::ZhCn;
        let price = self.price.display_in(locale);
        let period = period_words(self.period, locale);
        let mut lines = Vec::new();
        let mut push = |topic: &'static str, text: String| lines.push(TermsLine { topic, text });

        push(
            "price",
            match (zh, self.auto_renew) {
                (true, true) => format!("每{period}{price}，到期自动续费，除非您取消。"),
                (true, false) => format!("每{period}{price}，到期不自动续费。"),
                (false, true) => {
                    format!("{price} every {period}, renewing automatically until you cancel.")
                }
                (false, false) => {
                    format!("{price} every {period}; it does not renew automatically.")
                }
            },
        );
        if self.trial_days > 0 {
            let days = self.trial_days;
            push(
                "trial",
                if zh {
                    format!("前 {days} 天免费试用；试用期内取消不收取任何费用。")
                } else {
                    format!("The first {days} days are a free trial; cancelling during the trial costs nothing.")
                },
            );
        }
        if self.cooling_off_days > 0 {
            let days = self.cooling_off_days;
            push(
                "cooling_off",
                if zh {
                    format!("开通后 {days} 天内取消：立即生效，全额退款，不收取任何费用。")
                } else {
                    format!("Cancel within {days} days of signing up: it ends at once, with a full refund and no fee.")
                },
            );
        }
        if self.commitment_periods > 0 {
            let n = self.commitment_periods;
            let fee = match (self.early_termination_fee, zh) {
                (EarlyTerminationFee::None, true) => "提前结束不收取违约金。".to_owned(),
                (EarlyTerminationFee::None, false) => "Ending early costs no fee.".to_owned(),
                (EarlyTerminationFee::Fixed(fee), true) => {
                    format!(
                        "在承诺期结束前终止，需支付 {} 的提前解约费，但不超过尚未收取的承诺期费用。",
                        fee.display_in(locale)
                    )
                }
                (EarlyTerminationFee::Fixed(fee), false) => format!(
                    "Ending before the commitment ends costs an early-termination fee of {}, never more than the committed charges not yet billed.",
                    fee.display_in(locale)
                ),
                (EarlyTerminationFee::PercentOfRemaining(p), true) => {
                    format!("在承诺期结束前终止，需支付尚未收取的承诺期费用的 {p}% 作为提前解约费。")
                }
                (EarlyTerminationFee::PercentOfRemaining(p), false) => {
                    format!("Ending before the commitment ends costs {p}% of the committed charges not yet billed.")
                }
            };
            push(
                "commitment",
                if zh {
                    format!("最短承诺期为 {n} 个周期。{fee}")
                } else {
                    format!("The minimum term is {n} periods. {fee}")
                },
            );
        }
        let days = self.notice_days;
        push(
            "notice",
            match (zh, days) {
                (true, 0) => "随时可以取消，在当前周期结束时生效，无需提前通知。".to_owned(),
                (false, 0) => "You can cancel at any time; it takes effect at the end of the current period, with no notice needed.".to_owned(),
                (true, _) => format!(
                    "如需在当前周期结束时终止，须在周期结束前至少 {days} 天提出；否则在下一个周期结束时终止（会再续费一次）。"
                ),
                (false, _) => format!(
                    "To end at the close of the current period, cancel at least {days} days before it ends; otherwise it ends at the close of the next period (one more renewal)."
                ),
            },
        );
        let refund_words = match (self.refund_on_immediate, zh) {
            (RefundRule::Prorated, true) => "按未使用的时间比例退款（向上取整，对您有利）",
            (RefundRule::Prorated, false) => "the unused part of the period is refunded, rounded up in your favour",
            (RefundRule::Full, true) => "当期费用全额退款",
            (RefundRule::Full, false) => "the current period is refunded in full",
            (RefundRule::None, true) => "当期费用不退款",
            (RefundRule::None, false) => "the current period is not refunded",
        };
        push(
            "immediate",
            match (zh, self.allow_immediate) {
                (true, true) => format!("也可以选择立即终止：{refund_words}。"),
                (false, true) => format!("You may also end it immediately: {refund_words}."),
                (true, false) => "不提供立即终止；服务在周期结束时终止。".to_owned(),
                (false, false) => {
                    "Immediate termination is not offered; the service ends at the end of a period.".to_owned()
                }
            },
        );
        let channel_words: Vec<&str> = self.channels.iter().map(|c| channel_words(*c, locale)).collect();
        push(
            "channels",
            if zh {
                format!("取消方式：{}。", channel_words.join("、"))
            } else {
                format!("You can cancel by: {}.", channel_words.join(", "))
            },
        );
        if let Some(address) = &self.written_notice_address {
            push(
                "written_notice",
                if zh {
                    format!("书面通知请寄至：{address}。以收到日期为准。")
                } else {
                    format!("Written notices go to: {address}. The date it is received is what counts.")
                },
            );
        }
        let reminder = self.reminder_days;
        let lead = self.reminder_days + self.notice_days;
        push(
            "reminder",
            if zh {
                format!("在最后取消日期前 {reminder} 天（即每次续费前 {lead} 天），我们会提醒您。")
            } else {
                format!(
                    "We remind you {reminder} days before the last day to cancel, {lead} days before every renewal."
                )
            },
        );
        let retention = self.retention_days;
        push(
            "retention",
            match (zh, retention) {
                (true, 0) => "服务结束后，孩子的数据将立即删除。".to_owned(),
                (false, 0) => "When the service ends, your child's data is deleted at once.".to_owned(),
                (true, _) => format!(
                    "服务结束后，孩子的数据保留 {retention} 天供您导出，之后删除并出具删除证明。您可以要求提前删除。"
                ),
                (false, _) => format!(
                    "After the service ends, your child's data stays exportable for {retention} days, then it is deleted and you get a deletion certificate. You can ask for deletion sooner."
                ),
            },
        );
        for hold in &self.legal_holds {
            let what = hold_words(hold.category, locale);
            let years = hold.retain_years;
            let basis = hold.basis.trim();
            push(
                "legal_hold",
                if zh {
                    format!("依据{basis}，{what}在删除后仍仅作存储保留 {years} 年。")
                } else {
                    format!("Kept after deletion, storage only: {what}, for {years} years, under {basis}.")
                },
            );
        }
        lines
    }
}

pub fn channel_words(channel: Channel, locale: Locale) -> &'static str {
    match (channel, locale) {
        (Channel::SelfService, Locale::ZhCn) => "在线自助取消",
        (Channel::SelfService, Locale::En) => "online, yourself",
        (Channel::Support, Locale::ZhCn) => "联系客服",
        (Channel::Support, Locale::En) => "through support",
        (Channel::WrittenNotice, Locale::ZhCn) => "书面通知（信件或电子邮件）",
        (Channel::WrittenNotice, Locale::En) => "written notice (letter or email)",
    }
}

fn hold_words(category: HoldCategory, locale: Locale) -> &'static str {
    match (category, locale) {
        (HoldCategory::Invoices, Locale::ZhCn) => "发票",
        (HoldCategory::Invoices, Locale::En) => "invoices",
        (HoldCategory::Ledger, Locale::ZhCn) => "账务记录",
        (HoldCategory::Ledger, Locale::En) => "the ledger of charges and refunds",
        (HoldCategory::Receipts, Locale::ZhCn) => "回执",
        (HoldCategory::Receipts, Locale::En) => "receipts",
        (HoldCategory::ConsentRecords, Locale::ZhCn) => "监护人同意记录",
        (HoldCategory::ConsentRecords, Locale::En) => "guardian consent records",
    }
}

pub fn period_words(period: PeriodLength, locale: Locale) -> String {
    match (period, locale) {
        (PeriodLength::Months(12), Locale::ZhCn) => "年".to_owned(),
        (PeriodLength::Months(12), Locale::En) => "year".to_owned(),
        (PeriodLength::Months(m), Locale::ZhCn) if m % 12 == 0 => format!("{} 年", m / 12),
        (PeriodLength::Months(m), Locale::En) if m % 12 == 0 => format!("{} years", m / 12),
        (PeriodLength::Months(1), Locale::ZhCn) => "月".to_owned(),
        (PeriodLength::Months(1), Locale::En) => "month".to_owned(),
        (PeriodLength::Months(m), Locale::ZhCn) => format!("{m} 个月"),
        (PeriodLength::Months(m), Locale::En) => format!("{m} months"),
        (PeriodLength::Days(7), Locale::ZhCn) => "周".to_owned(),
        (PeriodLength::Days(7), Locale::En) => "week".to_owned(),
        (PeriodLength::Days(d), Locale::ZhCn) => format!("{d} 天"),
        (PeriodLength::Days(d), Locale::En) => format!("{d} days"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(json: serde_json::Value) -> PolicyDraft {
        serde_json::from_value(json).unwrap()
    }

    fn monthly() -> serde_json::Value {
        serde_json::json!({
            "price": {"amount_minor": 3900, "currency": "CNY"},
            "period": "P1M",
            "notice_days": 7,
            "cooling_off_days": 7,
            "retention_days": 30,
        })
    }

    fn with(mut base: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
        base[key] = value;
        base
    }

    #[test]
    fn defaults_are_the_careful_ones() {
        let policy = draft(monthly()).validate().unwrap();
        assert_eq!(policy.channels, vec![Channel::SelfService]);
        assert_eq!(policy.reminder_days, REMINDER_DAYS_DEFAULT);
        assert!(policy.auto_renew);
        assert_eq!(policy.early_termination_fee, EarlyTerminationFee::None);
        let annual = draft(with(monthly(), "period", "P1Y".into())).validate().unwrap();
        assert_eq!(annual.reminder_days + annual.notice_days, ANNUAL_REMINDER_LEAD_DAYS_DEFAULT);
        // A week-long period with two days' notice: the default shrinks to fit.
        let weekly = draft(with(with(monthly(), "period", "P7D".into()), "notice_days", 1.into())).validate().unwrap();
        assert_eq!(weekly.reminder_days, 5);
    }

    /// Each (field, value) makes an otherwise valid draft invalid, and the
    /// error names that field.
    #[test]
    fn invalid_terms_are_rejected_with_the_field_named() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (with(monthly(), "period", "P1H".into()), "period"),
            (with(monthly(), "notice_days", 28.into()), "notice_days"),
            (with(monthly(), "reminder_days", 4.into()), "reminder_days"),
            (with(with(monthly(), "period", "P1Y".into()), "reminder_days", 7.into()), "reminder_days"),
            (with(with(monthly(), "period", "P1Y".into()), "reminder_days", 39.into()), "reminder_days"),
            // The reminder must fall inside the period, before the deadline.
            (with(with(monthly(), "notice_days", 20.into()), "reminder_days", 8.into()), "reminder_days"),
            (with(with(monthly(), "period", "P7D".into()), "notice_days", 2.into()), "reminder_days"),
            (with(monthly(), "retention_days", serde_json::Value::Null), "retention_days"),
            (with(monthly(), "channels", serde_json::json!(["support"])), "channels"),
            (
                with(monthly(), "channels", serde_json::json!(["self_service", "written_notice"])),
                "written_notice_address",
            ),
            (
                with(monthly(), "early_termination_fee", serde_json::json!({"percent_of_remaining": 50})),
                "early_termination_fee",
            ),
            (
                with(
                    with(monthly(), "commitment_periods", 12.into()),
                    "early_termination_fee",
                    serde_json::json!({"fixed": {"amount_minor": 100, "currency": "USD"}}),
                ),
                "early_termination_fee",
            ),
            (
                with(
                    with(monthly(), "commitment_periods", 12.into()),
                    "early_termination_fee",
                    serde_json::json!({"percent_of_remaining": 101}),
                ),
                "early_termination_fee",
            ),
            (
                with(
                    monthly(),
                    "legal_holds",
                    serde_json::json!([{"category": "invoices", "basis": "", "retain_years": 5}]),
                ),
                "legal_holds",
            ),
        ];
        for (json, field) in cases {
            let error = draft(json.clone()).validate().expect_err(&json.to_string());
            assert_eq!(error.field, field, "{json}");
            assert!(!error.message(Locale::ZhCn).is_empty());
        }
    }

    #[test]
    fn malformed_drafts_do_not_parse() {
        for json in [
            with(monthly(), "notice_days", (-1).into()),
            with(monthly(), "price", serde_json::json!({"amount_minor": -100, "currency": "CNY"})),
            with(monthly(), "surprise", true.into()),
            with(monthly(), "refund_on_immediate", "double".into()),
        ] {
            assert!(serde_json::from_value::<PolicyDraft>(json.clone()).is_err(), "{json}");
        }
    }

    #[test]
    fn the_hash_changes_with_any_term_and_only_then() {
        let a = draft(monthly()).validate().unwrap();
        let b = draft(monthly()).validate().unwrap();
        let c = draft(with(monthly(), "notice_days", 8.into())).validate().unwrap();
        assert_eq!(a.sha256(), b.sha256());
        assert_ne!(a.sha256(), c.sha256());
        assert_eq!(a.sha256().len(), 64);
    }

    #[test]
    fn terms_render_in_both_locales_with_every_topic() {
        let policy = draft(serde_json::json!({
            "price": {"amount_minor": 39900, "currency": "CNY"},
            "period": "P1Y",
            "commitment_periods": 2,
            "early_termination_fee": {"fixed": {"amount_minor": 10000, "currency": "CNY"}},
            "allow_immediate": true,
            "channels": ["self_service", "support", "written_notice"],
            "written_notice_address": "上海市某路 1 号",
            "retention_days": 30,
            "legal_holds": [{"category": "invoices", "basis": "PRC Invoice Measures Art. 29", "retain_years": 5}],
        }))
        .validate()
        .unwrap();
        for locale in Locale::ALL {
            let lines = policy.render(locale);
            let topics: Vec<&str> = lines.iter().map(|l| l.topic).collect();
            assert_eq!(
                topics,
                [
                    "price",
                    "commitment",
                    "notice",
                    "immediate",
                    "channels",
                    "written_notice",
                    "reminder",
                    "retention",
                    "legal_hold"
                ]
            );
            assert!(lines.iter().all(|l| !l.text.is_empty()));
        }
        let en = policy.render(Locale::En);
        assert_eq!(en[0].text, "399.00 CNY every year, renewing automatically until you cancel.");
        let zh = policy.render(Locale::ZhCn);
        assert_eq!(zh[0].text, "每年399.00 元，到期自动续费，除非您取消。");
    }
}
