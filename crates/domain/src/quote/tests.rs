//! Table tests for the quote's edge cases and property tests for its
//! invariants.

use proptest::prelude::*;

use super::*;
use crate::calendar::Calendar;
use crate::money::Currency;
use crate::policy::PolicyDraft;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn cny(amount_minor: i64) -> Money {
    Money::new(amount_minor, Currency::CNY).unwrap()
}

fn policy(json: serde_json::Value) -> Policy {
    let mut base = serde_json::json!({
        "price": {"amount_minor": 3900, "currency": "CNY"},
        "period": "P1M",
        "retention_days": 30,
    });
    for (key, value) in json.as_object().unwrap() {
        base[key] = value.clone();
    }
    serde_json::from_value::<PolicyDraft>(base).unwrap().validate().unwrap()
}

struct Case {
    policy: Policy,
    schedule: Schedule,
}

impl Case {
    fn new(policy: Policy, signed_up_at: &str, zone: &str) -> Case {
        let schedule = Schedule::for_sign_up(&policy, Calendar::new(zone).unwrap(), at(signed_up_at)).unwrap();
        Case { policy, schedule }
    }

    /// The quote at `t`, with every paid period fully paid at the price.
    fn quote_at(&self, t: Timestamp) -> Quote {
        let mut position = self.schedule.first_position();
        while self.schedule.start_of(position + 1).unwrap() <= t {
            position += 1;
        }
        let current = self.schedule.period(position).unwrap();
        let paid_periods = u32::try_from(position + 1).unwrap_or(0);
        let paid_for_current = if current.is_trial() { cny(0) } else { self.policy.price };
        quote(&QuoteInput {
            policy: &self.policy,
            schedule: &self.schedule,
            current,
            paid_for_current,
            paid_total: self.policy.price.times(paid_periods),
            received_at: t,
        })
        .unwrap()
    }
}

fn options(quote: &Quote) -> Vec<CancelOption> {
    quote.options.iter().map(|o| o.option).collect()
}

#[test]
fn inside_cooling_off_the_only_option_is_now_with_everything_refunded() {
    let case = Case::new(
        policy(serde_json::json!({"cooling_off_days": 7, "notice_days": 7})),
        "2027-01-10T02:00:00Z",
        "Asia/Shanghai",
    );
    let quote = case.quote_at(at("2027-01-13T02:00:00Z"));
    assert_eq!(options(&quote), [CancelOption::Now]);
    let now = &quote.options[0];
    assert_eq!(now.refund, cny(3900));
    assert_eq!(now.fee, cny(0));
    assert_eq!(now.effective_at, at("2027-01-13T02:00:00Z"));
    // The cooling-off window closes exactly 7 calendar days after sign-up.
    let after = case.quote_at(at("2027-01-17T02:00:00Z"));
    assert_eq!(options(&after), [CancelOption::EndOfPeriod]);
    assert_eq!(case.quote_at(at("2027-01-17T01:59:59Z")).valid_until, at("2027-01-17T02:00:00Z"));
}

/// The notice deadline is `period_end − notice_days`; a request received
/// exactly at it still ends the current period.
#[test]
fn the_notice_deadline_is_inclusive_and_one_second_late_costs_a_renewal() {
    let case = Case::new(policy(serde_json::json!({"notice_days": 7})), "2027-01-10T02:00:00Z", "Asia/Shanghai");
    let on_time = case.quote_at(at("2027-02-03T02:00:00Z"));
    let end = on_time.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2027-02-10T02:00:00Z"));
    assert_eq!(end.renewals_before_effective, 0);
    assert_eq!(end.reason, OptionReason::OnTime);
    assert_eq!(on_time.valid_until, at("2027-02-03T02:00:00Z"));

    let late = case.quote_at(at("2027-02-03T02:00:01Z"));
    let end = late.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2027-03-10T02:00:00Z"));
    assert_eq!(end.renewals_before_effective, 1);
    assert_eq!(end.reason, OptionReason::AfterNoticeDeadline);
    assert_eq!(end.notice_deadline, Some(at("2027-02-03T02:00:00Z")));
}

#[test]
fn immediate_refunds_are_prorated_by_seconds_and_rounded_up() {
    let case = Case::new(
        policy(serde_json::json!({"allow_immediate": true, "refund_on_immediate": "prorated"})),
        "2027-01-10T02:00:00Z",
        "UTC",
    );
    // 16 of 31 days unused: 3900 × 16 / 31 = 2012.9… → 2013.
    let quote = case.quote_at(at("2027-01-25T02:00:00Z"));
    let now = quote.option(CancelOption::Now).unwrap();
    assert_eq!(now.refund, cny(2013));
    assert_eq!(now.fee, cny(0));
    // One second into the period: 3900 × 2678399 / 2678400 = 3899.99… → 3900.
    let quote = case.quote_at(at("2027-01-10T02:00:01Z"));
    assert_eq!(quote.option(CancelOption::Now).unwrap().refund, cny(3900));
}

#[test]
fn full_and_no_refund_rules_are_honoured() {
    for (rule, expected) in [("full", 3900), ("none", 0)] {
        let case = Case::new(
            policy(serde_json::json!({"allow_immediate": true, "refund_on_immediate": rule})),
            "2027-01-10T02:00:00Z",
            "UTC",
        );
        let quote = case.quote_at(at("2027-01-25T02:00:00Z"));
        assert_eq!(quote.option(CancelOption::Now).unwrap().refund, cny(expected), "{rule}");
    }
}

fn committed(fee: serde_json::Value, notice_days: u32) -> Policy {
    policy(serde_json::json!({
        "price": {"amount_minor": 10000, "currency": "CNY"},
        "commitment_periods": 12,
        "early_termination_fee": fee,
        "notice_days": notice_days,
        "allow_immediate": true,
        "refund_on_immediate": "none",
    }))
}

#[test]
fn inside_the_commitment_the_fee_applies_and_end_of_commitment_is_offered() {
    let case = Case::new(
        committed(serde_json::json!({"fixed": {"amount_minor": 20000, "currency": "CNY"}}), 0),
        "2027-01-01T00:00:00Z",
        "UTC",
    );
    // In period 2 (March): the end of the period is the start of period 3.
    let quote = case.quote_at(at("2027-03-15T00:00:00Z"));
    assert_eq!(options(&quote), [CancelOption::EndOfPeriod, CancelOption::EndOfCommitment, CancelOption::Now]);
    let end = quote.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2027-04-01T00:00:00Z"));
    assert_eq!(end.fee, cny(20000));
    let commitment = quote.option(CancelOption::EndOfCommitment).unwrap();
    assert_eq!(commitment.effective_at, at("2028-01-01T00:00:00Z"));
    assert_eq!(commitment.renewals_before_effective, 9);
    assert_eq!(commitment.fee, cny(0));
    let now = quote.option(CancelOption::Now).unwrap();
    assert_eq!(now.fee, cny(20000));
    assert_eq!(now.refund, cny(0));
}

#[test]
fn the_fee_never_exceeds_the_committed_charges_not_yet_billed() {
    let case = Case::new(
        committed(serde_json::json!({"fixed": {"amount_minor": 20000, "currency": "CNY"}}), 0),
        "2027-01-01T00:00:00Z",
        "UTC",
    );
    // In period 10 (November): ending at the start of period 11 leaves one
    // committed charge (10000) unbilled, so the 20000 fee is capped there.
    let quote = case.quote_at(at("2027-11-15T00:00:00Z"));
    assert_eq!(quote.option(CancelOption::EndOfPeriod).unwrap().fee, cny(10000));
    assert_eq!(quote.option(CancelOption::Now).unwrap().fee, cny(10000));
}

#[test]
fn percent_of_remaining_fees_round_down() {
    let case = Case::new(
        policy(serde_json::json!({
            "price": {"amount_minor": 999, "currency": "CNY"},
            "commitment_periods": 12,
            "early_termination_fee": {"percent_of_remaining": 33},
        })),
        "2027-01-01T00:00:00Z",
        "UTC",
    );
    // 11 unbilled periods × 999 = 10989; 33 % = 3626.37 → 3626.
    let quote = case.quote_at(at("2027-01-15T00:00:00Z"));
    assert_eq!(quote.option(CancelOption::EndOfPeriod).unwrap().fee, cny(3626));
}

#[test]
fn a_commitment_ending_inside_the_notice_window_carries_no_fee() {
    let case = Case::new(
        committed(serde_json::json!({"fixed": {"amount_minor": 20000, "currency": "CNY"}}), 7),
        "2027-01-01T00:00:00Z",
        "UTC",
    );
    // Last committed period (December 2027); the commitment ends 2028-01-01.
    let on_time = case.quote_at(at("2027-12-20T00:00:00Z"));
    assert_eq!(options(&on_time), [CancelOption::EndOfPeriod, CancelOption::Now]);
    let end = on_time.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2028-01-01T00:00:00Z"));
    assert_eq!(end.fee, cny(0));
    // Too late for the notice: it runs one period past the commitment, fee-free.
    let late = case.quote_at(at("2027-12-28T00:00:00Z"));
    let end = late.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2028-02-01T00:00:00Z"));
    assert_eq!(end.renewals_before_effective, 1);
    assert_eq!(end.fee, cny(0));
    assert!(late.option(CancelOption::EndOfCommitment).is_none());
}

#[test]
fn cancelling_in_a_trial_ends_it_at_the_trial_end_with_no_charge() {
    let case = Case::new(
        policy(serde_json::json!({"trial_days": 14, "notice_days": 7})),
        "2027-01-10T02:00:00Z",
        "Asia/Shanghai",
    );
    let quote = case.quote_at(at("2027-01-23T02:00:00Z"));
    let end = quote.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.effective_at, at("2027-01-24T02:00:00Z"));
    assert_eq!(end.renewals_before_effective, 0);
    assert_eq!(end.reason, OptionReason::Trial);
}

#[test]
fn a_31_january_anchor_ends_february_on_its_last_day_in_a_leap_year() {
    let case = Case::new(policy(serde_json::json!({})), "2028-01-30T16:00:00Z", "Asia/Shanghai");
    let quote = case.quote_at(at("2028-02-10T00:00:00Z"));
    // Period 0 is 31 Jan → 29 Feb (Shanghai).
    assert_eq!(quote.option(CancelOption::EndOfPeriod).unwrap().effective_at, at("2028-02-28T16:00:00Z"));
}

#[test]
fn a_quote_lasts_an_hour_at_most_and_never_past_the_period_end() {
    let case = Case::new(policy(serde_json::json!({})), "2027-01-10T02:00:00Z", "UTC");
    let quote = case.quote_at(at("2027-01-20T00:00:00Z"));
    assert_eq!(quote.valid_until, at("2027-01-20T01:00:00Z"));
    let quote = case.quote_at(at("2027-02-10T01:30:00Z"));
    assert_eq!(quote.valid_until, at("2027-02-10T02:00:00Z"));
}

#[test]
fn the_data_timeline_follows_retention_days() {
    let case = Case::new(policy(serde_json::json!({"retention_days": 30})), "2027-01-10T02:00:00Z", "UTC");
    let quote = case.quote_at(at("2027-01-20T00:00:00Z"));
    let end = quote.option(CancelOption::EndOfPeriod).unwrap();
    assert_eq!(end.delete_at, at("2027-03-12T02:00:00Z"));
    assert_eq!(end.export_until, end.delete_at);
}

#[test]
fn explanations_exist_in_both_locales() {
    let case = Case::new(
        committed(serde_json::json!({"percent_of_remaining": 50}), 7),
        "2027-01-01T00:00:00Z",
        "Asia/Shanghai",
    );
    let quote = case.quote_at(at("2027-03-30T00:00:00Z"));
    for option in &quote.options {
        let zh = option.explain(Locale::ZhCn, &case.schedule.calendar);
        let en = option.explain(Locale::En, &case.schedule.calendar);
        assert!(zh.contains("数据") && en.contains("data"), "{zh} / {en}");
        if !option.fee.is_zero() {
            assert!(en.contains(&option.fee.display()));
        }
    }
}

fn arbitrary_policy() -> impl Strategy<Value = Policy> {
    (
        1i64..=100_000,
        prop_oneof![Just("P1M"), Just("P3M"), Just("P1Y"), Just("P7D"), Just("P2W")],
        0u32..=14,
        0u32..=24,
        0u32..=6,
        0u32..=14,
        any::<bool>(),
        prop_oneof![Just("prorated"), Just("full"), Just("none")],
        prop_oneof![
            Just(serde_json::json!("none")),
            (1i64..=500_000).prop_map(|a| serde_json::json!({"fixed": {"amount_minor": a, "currency": "CNY"}})),
            (1u32..=100).prop_map(|p| serde_json::json!({"percent_of_remaining": p})),
        ],
        any::<bool>(),
    )
        // A week with long notice leaves no room for the reminder: such terms are refused, not quoted.
        .prop_filter_map(
            "terms the reminder fits in",
            |(price, period, trial, commitment, notice, cooling, immediate, refund, fee, auto_renew)| {
                let fee = if commitment == 0 { serde_json::json!("none") } else { fee };
                let draft = serde_json::json!({
                    "price": {"amount_minor": price, "currency": "CNY"},
                    "period": period,
                    "trial_days": trial,
                    "commitment_periods": commitment,
                    "notice_days": notice,
                    "cooling_off_days": cooling,
                    "allow_immediate": immediate,
                    "refund_on_immediate": refund,
                    "early_termination_fee": fee,
                    "auto_renew": auto_renew,
                    "retention_days": 30,
                });
                serde_json::from_value::<PolicyDraft>(draft).unwrap().validate().ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_quote_keeps_the_invariants(
        policy in arbitrary_policy(),
        signed_up_second in 1_767_225_600i64..1_893_456_000,
        zone in prop_oneof![Just("UTC"), Just("Asia/Shanghai"), Just("Europe/Berlin"), Just("America/New_York")],
        position_seed in 0i64..30,
        fraction in 0u32..=1000,
    ) {
        let calendar = Calendar::new(zone).unwrap();
        let signed_up_at = Timestamp::from_second(signed_up_second).unwrap();
        let schedule = Schedule::for_sign_up(&policy, calendar, signed_up_at).unwrap();
        let position = if schedule.has_trial() { position_seed - 1 } else { position_seed };
        let current = schedule.period(position).unwrap();
        let t = Timestamp::from_second(current.start.as_second() + current.seconds() * i64::from(fraction) / 1000).unwrap();
        let paid_for_current = if current.is_trial() { Money::zero(policy.price.currency) } else { policy.price };
        let paid_total = policy.price.times(u32::try_from(position + 1).unwrap_or(0));
        let quote = quote(&QuoteInput { policy: &policy, schedule: &schedule, current, paid_for_current, paid_total, received_at: t }).unwrap();

        prop_assert!(!quote.options.is_empty());
        prop_assert!(quote.valid_until >= t);
        prop_assert!(quote.valid_until.as_second() - t.as_second() <= QUOTE_VALIDITY_SECONDS_MAX);
        prop_assert!(quote.option(CancelOption::EndOfPeriod).is_some() || quote.options.len() == 1);
        for option in &quote.options {
            prop_assert!(option.effective_at >= t, "{:?} effective before it was received", option.option);
            prop_assert!(option.delete_at >= option.effective_at);
            match option.reason {
                OptionReason::CoolingOff => prop_assert!(option.refund.amount_minor <= paid_total.amount_minor),
                _ => prop_assert!(option.refund.amount_minor <= paid_for_current.amount_minor),
            }
            let first_unbilled = match option.option {
                CancelOption::Now => position + 1,
                _ => position + 1 + i64::from(option.renewals_before_effective),
            };
            let unbilled = (i64::from(policy.commitment_periods) - first_unbilled).max(0);
            prop_assert!(option.fee.amount_minor <= policy.price.amount_minor * unbilled);
            if option.option != CancelOption::Now {
                // The renewals counted are exactly the periods that start
                // before effective_at: none starts at or after it.
                let first_uncharged = schedule.start_of(first_unbilled).unwrap();
                prop_assert_eq!(first_uncharged, option.effective_at);
                if option.renewals_before_effective > 0 {
                    prop_assert!(schedule.start_of(first_unbilled - 1).unwrap() < option.effective_at);
                }
            }
        }
    }
}
