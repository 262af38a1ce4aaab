//! The cancellation quote: every option a guardian has at the instant a
//! request is received, with what each costs and when it takes effect.
//!
//! This module is DESIGN.md's rules 1–6, and nothing else decides them:
//!
//! 1. inside the cooling-off window the only option is `now`, refunding
//!    everything paid, with no fee;
//! 2. `end_of_period` is always offered: the end of the current period when
//!    the request is received by the notice deadline, else the end of the
//!    next one (one renewal still happens). Before the commitment ends it
//!    carries the early-termination fee, and `end_of_commitment` (no fee)
//!    is offered beside it;
//! 3. `now`, when the policy allows it, refunds the unused part of the
//!    current period as `refund_on_immediate` says, plus the fee inside the
//!    commitment;
//! 4. proration is by seconds, refunds round up and fees round down, and a
//!    fee never exceeds the committed charges not yet billed;
//! 5. a quote is valid until the next instant its figures could change (a
//!    notice deadline, the end of cooling-off, the end of the period) or an
//!    hour, whichever comes first;
//! 6. periods and days are calendar arithmetic in the family's time zone.
//!
//! A trial is not a paid period: cancelling during it ends the subscription
//! at the trial's end with no charge and no notice needed — the reading of
//! the rules that favours the guardian.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarError;
use crate::locale::Locale;
use crate::money::Money;
use crate::policy::{EarlyTerminationFee, Policy, RefundRule};
use crate::subscription::{Period, Schedule};

/// The longest a quote stays valid.
pub const QUOTE_VALIDITY_SECONDS_MAX: i64 = 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOption {
    Now,
    EndOfPeriod,
    EndOfCommitment,
}

impl CancelOption {
    pub fn as_str(&self) -> &'static str {
        match self {
            CancelOption::Now => "now",
            CancelOption::EndOfPeriod => "end_of_period",
            CancelOption::EndOfCommitment => "end_of_commitment",
        }
    }

    pub fn parse(text: &str) -> Option<CancelOption> {
        match text {
            "now" => Some(CancelOption::Now),
            "end_of_period" => Some(CancelOption::EndOfPeriod),
            "end_of_commitment" => Some(CancelOption::EndOfCommitment),
            _ => None,
        }
    }
}

/// Why an option looks the way it does; drives the explanation text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptionReason {
    CoolingOff,
    Trial,
    OnTime,
    AfterNoticeDeadline,
    NoRenewalDue,
    CommitmentEnd,
    Immediate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteOption {
    pub option: CancelOption,
    pub effective_at: Timestamp,
    pub renewals_before_effective: u32,
    pub refund: Money,
    pub fee: Money,
    pub export_until: Timestamp,
    pub delete_at: Timestamp,
    pub reason: OptionReason,
    /// The notice deadline that applied (for `end_of_period`).
    pub notice_deadline: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub received_at: Timestamp,
    pub valid_until: Timestamp,
    pub options: Vec<QuoteOption>,
}

impl QuoteOption {
    /// What the renewals that still happen before this option takes effect
    /// cost, at `price` per period: the other half of "what leaving costs",
    /// beside the fee.
    pub fn renewals_cost(&self, price: Money) -> Money {
        price.times(self.renewals_before_effective)
    }
}

impl Quote {
    pub fn option(&self, option: CancelOption) -> Option<&QuoteOption> {
        self.options.iter().find(|o| o.option == option)
    }
}

/// Everything the quote depends on.
#[derive(Clone, Debug)]
pub struct QuoteInput<'a> {
    pub policy: &'a Policy,
    pub schedule: &'a Schedule,
    /// The period the subscription is in at `received_at`.
    pub current: Period,
    /// What was charged for the current period (zero in a trial or unpaid).
    pub paid_for_current: Money,
    /// Everything paid on the subscription so far, net of refunds.
    pub paid_total: Money,
    pub received_at: Timestamp,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuoteError {
    #[error("received_at is outside the current period")]
    OutsideCurrentPeriod,
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

pub fn quote(input: &QuoteInput<'_>) -> Result<Quote, QuoteError> {
    let QuoteInput { policy, schedule, current, received_at: t, .. } = *input;
    if t < current.start || t > current.end {
        return Err(QuoteError::OutsideCurrentPeriod);
    }
    let calendar = &schedule.calendar;
    let mut valid_until = Timestamp::from_second(t.as_second() + QUOTE_VALIDITY_SECONDS_MAX)
        .map_err(|_| CalendarError::OutOfRange)?
        .min(current.end);

    let cooling_off_end = calendar.add_days(schedule.signed_up_at, policy.cooling_off_days)?;
    if t < cooling_off_end {
        valid_until = valid_until.min(cooling_off_end);
        let option =
            immediate_option(input, input.paid_total, Money::zero(policy.price.currency), OptionReason::CoolingOff)?;
        return Ok(Quote { received_at: t, valid_until, options: vec![option] });
    }

    let next = current.position + 1;
    let mut options = Vec::with_capacity(3);

    // Rule 2: the end of this period if notice was given in time, else the next.
    let last_term_period = !policy.auto_renew && next >= i64::from(policy.commitment_periods);
    let (end_position, reason, deadline) = if current.is_trial() {
        (next, OptionReason::Trial, None)
    } else if last_term_period {
        (next, OptionReason::NoRenewalDue, None)
    } else {
        let deadline = calendar.sub_days(current.end, policy.notice_days)?;
        if t <= deadline {
            valid_until = valid_until.min(deadline);
            (next, OptionReason::OnTime, Some(deadline))
        } else {
            (next + 1, OptionReason::AfterNoticeDeadline, Some(deadline))
        }
    };
    options.push(end_option(input, CancelOption::EndOfPeriod, end_position, reason, deadline)?);

    let commitment = i64::from(policy.commitment_periods);
    if end_position < commitment {
        options.push(end_option(input, CancelOption::EndOfCommitment, commitment, OptionReason::CommitmentEnd, None)?);
    }

    // Rule 3: now.
    if policy.allow_immediate {
        let refund = match policy.refund_on_immediate {
            RefundRule::None => Money::zero(policy.price.currency),
            RefundRule::Full => input.paid_for_current,
            RefundRule::Prorated => {
                let unused = current.end.as_second() - t.as_second();
                input.paid_for_current.prorate_refund(unused, current.seconds().max(1))
            }
        };
        let fee = termination_fee(policy, next.max(0))?;
        options.push(immediate_option(input, refund, fee, OptionReason::Immediate)?);
    }

    let quote = Quote { received_at: t, valid_until, options };
    debug_assert!(quote.options.iter().all(|o| o.effective_at >= t));
    debug_assert!(quote.valid_until >= t);
    Ok(quote)
}

/// An option that ends the subscription at the start of period `position`.
fn end_option(
    input: &QuoteInput<'_>,
    option: CancelOption,
    position: i64,
    reason: OptionReason,
    notice_deadline: Option<Timestamp>,
) -> Result<QuoteOption, QuoteError> {
    let effective_at = input.schedule.start_of(position)?;
    let renewals = position - (input.current.position + 1);
    debug_assert!(renewals >= 0);
    let fee = termination_fee(input.policy, position)?;
    let (export_until, delete_at) = data_timeline(input, effective_at)?;
    Ok(QuoteOption {
        option,
        effective_at,
        renewals_before_effective: u32::try_from(renewals).unwrap_or(0),
        refund: Money::zero(input.policy.price.currency),
        fee,
        export_until,
        delete_at,
        reason,
        notice_deadline,
    })
}

fn immediate_option(
    input: &QuoteInput<'_>,
    refund: Money,
    fee: Money,
    reason: OptionReason,
) -> Result<QuoteOption, QuoteError> {
    let effective_at = input.received_at;
    let (export_until, delete_at) = data_timeline(input, effective_at)?;
    Ok(QuoteOption {
        option: CancelOption::Now,
        effective_at,
        renewals_before_effective: 0,
        refund,
        fee,
        export_until,
        delete_at,
        reason,
        notice_deadline: None,
    })
}

/// The early-termination fee for ending before period `first_unbilled`
/// (the first period that will not be charged): per the policy, capped at
/// the committed charges not yet billed, rounded down.
fn termination_fee(policy: &Policy, first_unbilled: i64) -> Result<Money, QuoteError> {
    let unbilled_periods = (i64::from(policy.commitment_periods) - first_unbilled).max(0);
    let unbilled = policy.price.times(u32::try_from(unbilled_periods).unwrap_or(0));
    let fee = match policy.early_termination_fee {
        _ if unbilled.is_zero() => Money::zero(policy.price.currency),
        EarlyTerminationFee::None => Money::zero(policy.price.currency),
        EarlyTerminationFee::Fixed(fee) => fee.min(unbilled),
        EarlyTerminationFee::PercentOfRemaining(percent) => unbilled.prorate_fee(i64::from(percent), 100),
    };
    debug_assert!(fee.amount_minor <= unbilled.amount_minor);
    Ok(fee)
}

fn data_timeline(input: &QuoteInput<'_>, effective_at: Timestamp) -> Result<(Timestamp, Timestamp), QuoteError> {
    let delete_at = input.schedule.calendar.add_days(effective_at, input.policy.retention_days)?;
    Ok((delete_at, delete_at))
}

impl QuoteOption {
    /// One or two sentences a parent can read, in their locale, with dates
    /// in the family's calendar.
    pub fn explain(&self, locale: Locale, calendar: &crate::calendar::Calendar) -> String {
        let effective = calendar.date_text(self.effective_at);
        let delete = calendar.date_text(self.delete_at);
        let refund = self.refund.display_in(locale);
        let fee = self.fee.display_in(locale);
        let zh = locale == Locale::ZhCn;
        let mut text = match (self.reason, zh) {
            (OptionReason::CoolingOff, true) => {
                format!("您在冷静期内：立即终止，全额退款 {refund}，不收取任何费用。")
            }
            (OptionReason::CoolingOff, false) => {
                format!(
                    "You are within the cooling-off period: it ends now, you get a full refund of {refund} and pay no fee."
                )
            }
            (OptionReason::Trial, true) => {
                format!("试用期结束时（{effective}）终止，不会收取任何费用。")
            }
            (OptionReason::Trial, false) => {
                format!("Ends when the trial ends ({effective}); you will not be charged.")
            }
            (OptionReason::OnTime, true) => {
                format!("在当前周期结束时（{effective}）终止，之后不再收费。")
            }
            (OptionReason::OnTime, false) => {
                format!("Ends at the end of the current period ({effective}); nothing more is charged.")
            }
            (OptionReason::NoRenewalDue, true) => {
                format!("服务在当前周期结束时（{effective}）终止，不会续费。")
            }
            (OptionReason::NoRenewalDue, false) => {
                format!("Ends at the end of the current period ({effective}); it does not renew.")
            }
            (OptionReason::AfterNoticeDeadline, true) => format!(
                "已过提前通知期限（{}），因此在下一个周期结束时（{effective}）终止，之前还会续费 {} 次。",
                self.notice_deadline.map(|d| calendar.date_text(d)).unwrap_or_default(),
                self.renewals_before_effective
            ),
            (OptionReason::AfterNoticeDeadline, false) => format!(
                "The notice deadline ({}) has passed, so it ends at the end of the next period ({effective}), after {} more renewal(s).",
                self.notice_deadline.map(|d| calendar.date_text(d)).unwrap_or_default(),
                self.renewals_before_effective
            ),
            (OptionReason::CommitmentEnd, true) => format!(
                "在最短承诺期结束时（{effective}）终止，不收取提前解约费；之前还会续费 {} 次。",
                self.renewals_before_effective
            ),
            (OptionReason::CommitmentEnd, false) => format!(
                "Ends when the minimum term ends ({effective}) with no early-termination fee, after {} more renewal(s).",
                self.renewals_before_effective
            ),
            (OptionReason::Immediate, true) => format!("立即终止，退款 {refund}。"),
            (OptionReason::Immediate, false) => format!("Ends now; you get a refund of {refund}."),
        };
        if !self.fee.is_zero() {
            text.push_str(&if zh {
                format!(" 因在最短承诺期内终止，需支付提前解约费 {fee}。")
            } else {
                format!(" Because it ends inside the minimum term, an early-termination fee of {fee} applies.")
            });
        }
        text.push_str(&if zh {
            format!(" 孩子的数据可导出至 {delete}，之后将被删除。")
        } else {
            format!(" The child's data can be exported until {delete}, then it is deleted.")
        });
        text
    }
}

#[cfg(test)]
mod tests;
