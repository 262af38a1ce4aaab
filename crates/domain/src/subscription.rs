//! The subscription lifecycle: its schedule of periods, its status and the
//! transitions between them, and what the billing run must do next.
//!
//! A subscription is signed up at `signed_up_at`; a trial (if any) runs to
//! the anchor, and paid period `i` is `[start(i), start(i + 1))` computed
//! from the anchor (see `calendar`). Positions are numbered with the trial
//! as −1 so that "the next period" is always `position + 1`.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::calendar::{Calendar, CalendarError, PeriodLength};
use crate::policy::Policy;

/// A past-due period is retried this often by the billing run …
pub const PAST_DUE_RETRY_HOURS: i64 = 24;
/// … and the subscription expires when it is still unpaid this long after
/// the period started.
pub const PAST_DUE_GRACE_DAYS: u32 = 14;

/// The trial's position; paid periods are 0, 1, 2, …
pub const TRIAL_POSITION: i64 = -1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Trialing,
    Active,
    PendingCancellation,
    PastDue,
    Cancelled,
    Expired,
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PendingCancellation => "pending_cancellation",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<SubscriptionStatus> {
        [
            SubscriptionStatus::Trialing,
            SubscriptionStatus::Active,
            SubscriptionStatus::PendingCancellation,
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Cancelled,
            SubscriptionStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Still running (it may renew, be cancelled, or be charged).
    pub fn is_live(&self) -> bool {
        !matches!(self, SubscriptionStatus::Cancelled | SubscriptionStatus::Expired)
    }

    /// A guardian may file a cancellation in this status.
    pub fn can_cancel(&self) -> bool {
        matches!(self, SubscriptionStatus::Trialing | SubscriptionStatus::Active | SubscriptionStatus::PastDue)
    }
}

/// How a cancellation request reached the provider. All lead to the same
/// quote rules and the same receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationChannel {
    /// The guardian, in the portal or through the API.
    SelfService,
    /// An agent on the phone, after verifying the guardian.
    Support,
    /// A letter or email an agent registered.
    WrittenNotice,
}

impl CancellationChannel {
    pub const ALL: [CancellationChannel; 3] =
        [CancellationChannel::SelfService, CancellationChannel::Support, CancellationChannel::WrittenNotice];

    pub fn as_str(&self) -> &'static str {
        match self {
            CancellationChannel::SelfService => "self_service",
            CancellationChannel::Support => "support",
            CancellationChannel::WrittenNotice => "written_notice",
        }
    }

    pub fn parse(text: &str) -> Option<CancellationChannel> {
        CancellationChannel::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Where a cancellation request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationStatus {
    /// Filed; takes effect at its `effective_at`.
    Scheduled,
    /// Took effect; the subscription ended.
    Effective,
    /// The guardian took it back before it took effect.
    Withdrawn,
}

impl CancellationStatus {
    pub const ALL: [CancellationStatus; 3] =
        [CancellationStatus::Scheduled, CancellationStatus::Effective, CancellationStatus::Withdrawn];

    pub fn as_str(&self) -> &'static str {
        match self {
            CancellationStatus::Scheduled => "scheduled",
            CancellationStatus::Effective => "effective",
            CancellationStatus::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<CancellationStatus> {
        CancellationStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The status a live subscription has when no cancellation is pending.
pub fn running_status(position: i64, current_period_paid: bool) -> SubscriptionStatus {
    if !current_period_paid {
        SubscriptionStatus::PastDue
    } else if position == TRIAL_POSITION {
        SubscriptionStatus::Trialing
    } else {
        SubscriptionStatus::Active
    }
}

/// One period of a schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub position: i64,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    pub fn is_trial(&self) -> bool {
        self.position == TRIAL_POSITION
    }

    pub fn seconds(&self) -> i64 {
        self.end.as_second() - self.start.as_second()
    }
}

/// The periods of one subscription in the family's calendar.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub signed_up_at: Timestamp,
    pub anchor: Timestamp,
    pub length: PeriodLength,
    pub calendar: Calendar,
}

impl Schedule {
    /// The schedule a new subscription gets: the trial (if any) runs for
    /// `trial_days` calendar days, and the first paid period starts then.
    pub fn for_sign_up(
        policy: &Policy,
        calendar: Calendar,
        signed_up_at: Timestamp,
    ) -> Result<Schedule, CalendarError> {
        // Period boundaries fall on whole seconds: proration is by seconds.
        let whole_second = Timestamp::from_second(signed_up_at.as_second()).map_err(|_| CalendarError::OutOfRange)?;
        let anchor = calendar.add_days(whole_second, policy.trial_days)?;
        Ok(Schedule { signed_up_at, anchor, length: policy.period, calendar })
    }

    pub fn has_trial(&self) -> bool {
        self.anchor > self.signed_up_at
    }

    pub fn first_position(&self) -> i64 {
        if self.has_trial() { TRIAL_POSITION } else { 0 }
    }

    pub fn start_of(&self, position: i64) -> Result<Timestamp, CalendarError> {
        if position == TRIAL_POSITION {
            return Ok(self.signed_up_at);
        }
        let index = u32::try_from(position).map_err(|_| CalendarError::OutOfRange)?;
        self.calendar.period_start(self.anchor, self.length, index)
    }

    pub fn period(&self, position: i64) -> Result<Period, CalendarError> {
        Ok(Period { position, start: self.start_of(position)?, end: self.start_of(position + 1)? })
    }

    /// The end of the commitment (start of the first uncommitted period),
    /// or `None` when the policy has no commitment.
    pub fn commitment_end(&self, policy: &Policy) -> Result<Option<Timestamp>, CalendarError> {
        if policy.commitment_periods == 0 {
            return Ok(None);
        }
        self.start_of(i64::from(policy.commitment_periods)).map(Some)
    }
}

/// What the billing run must do for one subscription at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BillingStep {
    /// A scheduled cancellation reaches its `effective_at`.
    TakeEffect,
    /// The current period is over: start the next one and charge for it.
    Renew { next: i64 },
    /// The current period is unpaid: try the charge again.
    RetryCharge,
    /// Tell the guardian the renewal is coming (once per period).
    Remind,
    /// The term is over without renewal, or the grace for an unpaid period ran out.
    Expire { at: Timestamp },
    /// Nothing is due.
    Nothing,
}

/// The facts about a subscription the billing run decides from.
#[derive(Clone, Copy, Debug)]
pub struct BillingState {
    pub status: SubscriptionStatus,
    pub current: Period,
    pub current_period_paid: bool,
    pub effective_at: Option<Timestamp>,
    pub auto_renew: bool,
    pub commitment_periods: u32,
    pub last_charge_attempt_at: Option<Timestamp>,
    /// When this period's renewal reminder is due; `None` when it was sent
    /// or no renewal will happen.
    pub reminder_at: Option<Timestamp>,
}

/// Whether a subscription renews at the end of its current period: it is
/// live, no cancellation is pending, and it renews on its own or is still
/// inside its minimum term.
pub fn renews(
    status: SubscriptionStatus,
    cancellation_pending: bool,
    auto_renew: bool,
    commitment_periods: u32,
    position: i64,
) -> bool {
    status.is_live() && !cancellation_pending && (auto_renew || position + 1 < i64::from(commitment_periods))
}

/// The last moment to cancel without another renewal, as a guardian is
/// told it: the notice deadline of a paid period; the end of a trial (a
/// trial is not bound by notice).
pub fn cancel_by(calendar: &Calendar, period: &Period, notice_days: u32) -> Result<Timestamp, CalendarError> {
    if period.is_trial() { Ok(period.end) } else { notice_deadline(calendar, period, notice_days) }
}

/// The last moment to cancel for the end of `period` without another
/// renewal: `notice_days` calendar days before it ends.
pub fn notice_deadline(calendar: &Calendar, period: &Period, notice_days: u32) -> Result<Timestamp, CalendarError> {
    calendar.sub_days(period.end, notice_days)
}

/// When the renewal reminder for `period` is due: `reminder_days` calendar
/// days before its notice deadline, so the parent still has that long to
/// cancel without another renewal — and never before the period began (a
/// trial shorter than the lead time is reminded at once, at sign-up).
pub fn reminder_at(
    calendar: &Calendar,
    period: &Period,
    notice_days: u32,
    reminder_days: u32,
) -> Result<Timestamp, CalendarError> {
    let deadline = notice_deadline(calendar, period, notice_days)?;
    Ok(calendar.sub_days(deadline, reminder_days)?.max(period.start))
}

impl BillingState {
    /// The next step. Order matters: a cancellation that is due wins over a
    /// renewal, so no period starting at or after `effective_at` is charged.
    pub fn next_step(&self, calendar: &Calendar, now: Timestamp) -> Result<BillingStep, CalendarError> {
        if !self.status.is_live() {
            return Ok(BillingStep::Nothing);
        }
        if let Some(effective_at) = self.effective_at
            && effective_at <= now
        {
            return Ok(BillingStep::TakeEffect);
        }
        if !self.current_period_paid {
            let grace_end = calendar.add_days(self.current.start, PAST_DUE_GRACE_DAYS)?;
            if now >= grace_end {
                return Ok(BillingStep::Expire { at: grace_end.min(self.current.end) });
            }
            if self.retry_at().is_some_and(|at| at <= now) {
                return Ok(BillingStep::RetryCharge);
            }
        }
        // A reminder is only worth sending before the renewal it announces.
        if self.reminder_at.is_some_and(|at| at <= now) && now < self.current.end {
            return Ok(BillingStep::Remind);
        }
        if self.current.end <= now {
            if !self.auto_renew && self.current.position + 1 >= i64::from(self.commitment_periods) {
                return Ok(BillingStep::Expire { at: self.current.end });
            }
            return Ok(BillingStep::Renew { next: self.current.position + 1 });
        }
        Ok(BillingStep::Nothing)
    }

    fn retry_at(&self) -> Option<Timestamp> {
        let last = self.last_charge_attempt_at?;
        Timestamp::from_second(last.as_second() + PAST_DUE_RETRY_HOURS * 3600).ok()
    }

    /// When the billing run must next look at this subscription; `None`
    /// for a subscription that will never need it again. Stored and indexed
    /// so that a run reads only what is due.
    pub fn due_at(&self, calendar: &Calendar) -> Option<Timestamp> {
        if !self.status.is_live() {
            return None;
        }
        let mut due = self.current.end;
        if let Some(effective_at) = self.effective_at {
            due = due.min(effective_at);
        }
        if let Some(reminder_at) = self.reminder_at.filter(|at| *at < self.current.end) {
            due = due.min(reminder_at);
        }
        if !self.current_period_paid {
            if let Some(retry) = self.retry_at() {
                due = due.min(retry);
            }
            if let Ok(grace_end) = calendar.add_days(self.current.start, PAST_DUE_GRACE_DAYS) {
                due = due.min(grace_end);
            }
        }
        Some(due)
    }
}

/// Whether a family may use a service now, and until when that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entitlement {
    pub entitled: bool,
    pub until: Option<Timestamp>,
}

/// The entitlement a subscription gives at `now`: through the paid (or
/// trial) period, up to a scheduled cancellation's `effective_at`, and for a
/// past-due period until its grace runs out. A subscription the billing
/// run has not caught up with yet is judged by the instants, not the status.
pub fn entitlement(
    status: SubscriptionStatus,
    current: Period,
    current_period_paid: bool,
    effective_at: Option<Timestamp>,
    calendar: &Calendar,
    now: Timestamp,
) -> Entitlement {
    let none = Entitlement { entitled: false, until: None };
    if !status.is_live() {
        return none;
    }
    let mut until = current.end;
    if !current_period_paid {
        match calendar.add_days(current.start, PAST_DUE_GRACE_DAYS) {
            Ok(grace_end) => until = until.min(grace_end),
            Err(_) => return none,
        }
    }
    if let Some(effective_at) = effective_at {
        until = until.min(effective_at);
    }
    if now < current.start || now >= until {
        return none;
    }
    Entitlement { entitled: true, until: Some(until) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entitlement(state: &BillingState, calendar: &Calendar, now: Timestamp) -> Entitlement {
        super::entitlement(state.status, state.current, state.current_period_paid, state.effective_at, calendar, now)
    }

    #[test]
    fn entitlement_runs_to_the_period_end_the_cancellation_or_the_grace_end() {
        let utc = Calendar::new("UTC").unwrap();
        let active = state(SubscriptionStatus::Active, None);
        let inside = at("2027-01-15T00:00:00Z");
        assert_eq!(
            entitlement(&active, &utc, inside),
            Entitlement { entitled: true, until: Some(at("2027-02-01T00:00:00Z")) }
        );
        assert!(
            !entitlement(&active, &utc, at("2027-02-01T00:00:00Z")).entitled,
            "a period not yet renewed gives nothing"
        );
        let pending = state(SubscriptionStatus::PendingCancellation, Some("2027-01-20T00:00:00Z"));
        assert_eq!(entitlement(&pending, &utc, inside).until, Some(at("2027-01-20T00:00:00Z")));
        assert!(!entitlement(&pending, &utc, at("2027-01-20T00:00:00Z")).entitled);
        let mut unpaid = state(SubscriptionStatus::PastDue, None);
        unpaid.current_period_paid = false;
        assert_eq!(entitlement(&unpaid, &utc, at("2027-01-10T00:00:00Z")).until, Some(at("2027-01-15T00:00:00Z")));
        assert!(!entitlement(&unpaid, &utc, inside).entitled, "grace is 14 days from the period start");
        assert!(entitlement(&unpaid, &utc, at("2027-01-14T23:59:59Z")).entitled);
        assert!(!entitlement(&state(SubscriptionStatus::Cancelled, None), &utc, inside).entitled);
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn state(status: SubscriptionStatus, effective_at: Option<&str>) -> BillingState {
        BillingState {
            status,
            current: Period { position: 0, start: at("2027-01-01T00:00:00Z"), end: at("2027-02-01T00:00:00Z") },
            current_period_paid: true,
            effective_at: effective_at.map(at),
            auto_renew: true,
            commitment_periods: 0,
            last_charge_attempt_at: Some(at("2027-01-01T00:00:00Z")),
            reminder_at: None,
        }
    }

    #[test]
    fn the_reminder_comes_before_the_renewal_and_only_before_it() {
        let utc = Calendar::new("UTC").unwrap();
        let mut active = state(SubscriptionStatus::Active, None);
        // Seven days' notice, reminded seven days before that deadline.
        active.reminder_at = Some(reminder_at(&utc, &active.current, 7, 7).unwrap());
        assert_eq!(notice_deadline(&utc, &active.current, 7).unwrap(), at("2027-01-25T00:00:00Z"));
        assert_eq!(active.reminder_at, Some(at("2027-01-18T00:00:00Z")));
        assert_eq!(active.due_at(&utc), Some(at("2027-01-18T00:00:00Z")));
        assert_eq!(active.next_step(&utc, at("2027-01-17T23:59:59Z")).unwrap(), BillingStep::Nothing);
        assert_eq!(active.next_step(&utc, at("2027-01-18T00:00:00Z")).unwrap(), BillingStep::Remind);
        // Too late to remind: the renewal goes ahead (the run was not called in time).
        assert_eq!(active.next_step(&utc, at("2027-02-01T00:00:00Z")).unwrap(), BillingStep::Renew { next: 1 });
    }

    #[test]
    fn a_due_cancellation_wins_over_the_renewal_at_the_same_instant() {
        let utc = Calendar::new("UTC").unwrap();
        let pending = state(SubscriptionStatus::PendingCancellation, Some("2027-02-01T00:00:00Z"));
        assert_eq!(pending.next_step(&utc, at("2027-02-01T00:00:00Z")).unwrap(), BillingStep::TakeEffect);
        let active = state(SubscriptionStatus::Active, None);
        assert_eq!(active.next_step(&utc, at("2027-02-01T00:00:00Z")).unwrap(), BillingStep::Renew { next: 1 });
        assert_eq!(active.next_step(&utc, at("2027-01-31T23:59:59Z")).unwrap(), BillingStep::Nothing);
    }

    #[test]
    fn a_cancellation_at_the_end_of_the_next_period_lets_one_renewal_happen() {
        let utc = Calendar::new("UTC").unwrap();
        let pending = state(SubscriptionStatus::PendingCancellation, Some("2027-03-01T00:00:00Z"));
        assert_eq!(pending.next_step(&utc, at("2027-02-01T00:00:00Z")).unwrap(), BillingStep::Renew { next: 1 });
    }

    #[test]
    fn unpaid_periods_are_retried_then_expire_after_the_grace() {
        let utc = Calendar::new("UTC").unwrap();
        let mut unpaid = state(SubscriptionStatus::PastDue, None);
        unpaid.current_period_paid = false;
        assert_eq!(unpaid.next_step(&utc, at("2027-01-01T12:00:00Z")).unwrap(), BillingStep::Nothing);
        assert_eq!(unpaid.next_step(&utc, at("2027-01-02T00:00:00Z")).unwrap(), BillingStep::RetryCharge);
        assert_eq!(
            unpaid.next_step(&utc, at("2027-01-15T00:00:00Z")).unwrap(),
            BillingStep::Expire { at: at("2027-01-15T00:00:00Z") }
        );
        assert_eq!(unpaid.due_at(&utc), Some(at("2027-01-02T00:00:00Z")));
    }

    #[test]
    fn a_plan_without_auto_renew_expires_at_the_end_of_its_term() {
        let utc = Calendar::new("UTC").unwrap();
        let mut once = state(SubscriptionStatus::Active, None);
        once.auto_renew = false;
        assert_eq!(
            once.next_step(&utc, at("2027-02-01T00:00:00Z")).unwrap(),
            BillingStep::Expire { at: at("2027-02-01T00:00:00Z") }
        );
        assert_eq!(state(SubscriptionStatus::Cancelled, None).due_at(&utc), None);
    }

    #[test]
    fn a_trial_shorter_than_the_lead_time_is_reminded_at_once() {
        let utc = Calendar::new("UTC").unwrap();
        let trial = Period { position: -1, start: at("2027-01-01T00:00:00Z"), end: at("2027-01-08T00:00:00Z") };
        assert_eq!(reminder_at(&utc, &trial, 3, 7).unwrap(), trial.start);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// For every valid policy and period: the reminder is due at or
        /// before `deadline − reminder_days`, and within the period — which
        /// for a full period means exactly then.
        #[test]
        fn the_reminder_always_leaves_reminder_days_before_the_deadline(
            months in 1u32..=12,
            notice_days in 0u32..40,
            reminder_days in 5u32..40,
            start_day in 0i64..3000,
            zone in proptest::sample::select(vec!["UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin"]),
        ) {
            let draft: crate::policy::PolicyDraft = serde_json::from_value(serde_json::json!({
                "price": {"amount_minor": 3900, "currency": "CNY"},
                "period": format!("P{months}M"),
                "notice_days": notice_days,
                "reminder_days": reminder_days,
                "retention_days": 30,
            })).unwrap();
            let Ok(policy) = draft.validate() else { return Ok(()) };
            let calendar = Calendar::new(zone).unwrap();
            let start = Timestamp::from_second(1_790_000_000 + start_day * 86_400).unwrap();
            let schedule = Schedule { signed_up_at: start, anchor: start, length: policy.period, calendar: calendar.clone() };
            for position in 0..3 {
                let period = schedule.period(position).unwrap();
                let deadline = notice_deadline(&calendar, &period, policy.notice_days).unwrap();
                let due = reminder_at(&calendar, &period, policy.notice_days, policy.reminder_days).unwrap();
                let latest = calendar.sub_days(deadline, policy.reminder_days).unwrap();
                proptest::prop_assert!(due <= latest, "{due} after {latest}");
                proptest::prop_assert!(due >= period.start);
                proptest::prop_assert_eq!(due, latest, "a full period fits the lead time");
            }
        }
    }
}
