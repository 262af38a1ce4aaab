//! The ledger's rules: the kinds of entry there are, and what a guardian
//! has paid so far — the one sum every quote, view and statement uses.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::money::{Currency, Money};

/// Why an entry was written: the note the ledger (and a refund's or fee's
/// receipt) keeps, in English, as the record's own words. Readers see it in
/// their language through its name (`LedgerNote::name`); a note written
/// before these existed reads as it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerNote {
    FirstPeriod,
    Renewal,
    RefundAsQuoted,
    FeeAsQuoted,
    LateChargeRefund,
}

impl LedgerNote {
    pub const ALL: [LedgerNote; 5] = [
        LedgerNote::FirstPeriod,
        LedgerNote::Renewal,
        LedgerNote::RefundAsQuoted,
        LedgerNote::FeeAsQuoted,
        LedgerNote::LateChargeRefund,
    ];

    /// The words stored with the entry.
    pub fn text(&self) -> &'static str {
        match self {
            LedgerNote::FirstPeriod => "first period",
            LedgerNote::Renewal => "renewal",
            LedgerNote::RefundAsQuoted => "refund on cancellation, as quoted",
            LedgerNote::FeeAsQuoted => "early-termination fee, as quoted",
            LedgerNote::LateChargeRefund => "charge for a period after the cancellation took effect",
        }
    }

    /// A stable name for translations (`note-<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            LedgerNote::FirstPeriod => "first_period",
            LedgerNote::Renewal => "renewal",
            LedgerNote::RefundAsQuoted => "refund_as_quoted",
            LedgerNote::FeeAsQuoted => "fee_as_quoted",
            LedgerNote::LateChargeRefund => "late_charge_refund",
        }
    }

    /// The note stored as `text`, if it is one of these.
    pub fn of(text: &str) -> Option<LedgerNote> {
        LedgerNote::ALL.into_iter().find(|n| n.text() == text)
    }
}

/// What a ledger entry records. Charges and fees are money taken from the
/// guardian; refunds and credits are money given back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Charge,
    Refund,
    Fee,
    Credit,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 4] = [LedgerKind::Charge, LedgerKind::Refund, LedgerKind::Fee, LedgerKind::Credit];

    pub fn as_str(&self) -> &'static str {
        match self {
            LedgerKind::Charge => "charge",
            LedgerKind::Refund => "refund",
            LedgerKind::Fee => "fee",
            LedgerKind::Credit => "credit",
        }
    }

    pub fn parse(text: &str) -> Option<LedgerKind> {
        LedgerKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// +1 for money taken from the guardian, −1 for money given back.
    pub fn sign(&self) -> i64 {
        match self {
            LedgerKind::Charge | LedgerKind::Fee => 1,
            LedgerKind::Refund | LedgerKind::Credit => -1,
        }
    }
}

/// One ledger entry as the rules see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerLine {
    pub kind: LedgerKind,
    pub amount_minor: i64,
    /// The period a charge (or the refund of one) is for.
    pub period_start: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// What a guardian had paid by an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaidSoFar {
    /// Charges and fees less refunds and credits; never below zero.
    pub total: Money,
    /// Charged for the one period asked about.
    pub for_period: Money,
}

/// What had been paid by `at` (entries written later do not count), in
/// total and for the period starting at `period_start`.
pub fn paid_so_far(
    lines: impl IntoIterator<Item = LedgerLine>,
    period_start: Timestamp,
    at: Timestamp,
    currency: Currency,
) -> PaidSoFar {
    let (mut total, mut for_period) = (0i64, 0i64);
    for line in lines.into_iter().filter(|l| l.created_at <= at) {
        total = total.saturating_add(line.kind.sign().saturating_mul(line.amount_minor));
        if line.kind == LedgerKind::Charge && line.period_start == Some(period_start) {
            for_period = for_period.saturating_add(line.amount_minor);
        }
    }
    PaidSoFar {
        total: Money { amount_minor: total.max(0), currency },
        for_period: Money { amount_minor: for_period, currency },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn line(kind: LedgerKind, amount_minor: i64, period: Option<&str>, created: &str) -> LedgerLine {
        LedgerLine { kind, amount_minor, period_start: period.map(at), created_at: at(created) }
    }

    #[test]
    fn kinds_round_trip() {
        for kind in LedgerKind::ALL {
            assert_eq!(LedgerKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(LedgerKind::parse("gift"), None);
    }

    #[test]
    fn paid_so_far_counts_what_was_written_by_then() {
        let jan = "2027-01-01T00:00:00Z";
        let feb = "2027-02-01T00:00:00Z";
        let lines = [
            line(LedgerKind::Charge, 3900, Some(jan), jan),
            line(LedgerKind::Charge, 3900, Some(feb), feb),
            line(LedgerKind::Refund, 1000, None, "2027-02-05T00:00:00Z"),
            line(LedgerKind::Fee, 500, None, "2027-02-06T00:00:00Z"),
            line(LedgerKind::Credit, 200, None, "2027-03-01T00:00:00Z"),
        ];
        let paid = paid_so_far(lines, at(feb), at("2027-02-10T00:00:00Z"), Currency::CNY);
        assert_eq!(paid.total.amount_minor, 3900 + 3900 - 1000 + 500);
        assert_eq!(paid.for_period.amount_minor, 3900);
        let before_feb = paid_so_far(lines, at(feb), at("2027-01-15T00:00:00Z"), Currency::CNY);
        assert_eq!((before_feb.total.amount_minor, before_feb.for_period.amount_minor), (3900, 0));
        let refunded_all = [line(LedgerKind::Charge, 100, Some(jan), jan), line(LedgerKind::Refund, 300, None, jan)];
        assert_eq!(
            paid_so_far(refunded_all, at(jan), at(jan), Currency::CNY).total.amount_minor,
            0,
            "never below zero"
        );
    }
}
