//! Disputes: a guardian's complaint, the levels it climbs and the deadlines
//! at each. Answering one from the records (a late charge refunded, a
//! request's receipt shown) is the server's work; what a dispute is, where
//! it stands and when it is overdue are rules, and live here.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// What the guardian complains about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeKind {
    WrongCharge,
    ChargeAfterCancellation,
    CancellationIgnored,
    RefundMissing,
    DataNotDeleted,
    Other,
}

impl DisputeKind {
    pub const ALL: [DisputeKind; 6] = [
        DisputeKind::WrongCharge,
        DisputeKind::ChargeAfterCancellation,
        DisputeKind::CancellationIgnored,
        DisputeKind::RefundMissing,
        DisputeKind::DataNotDeleted,
        DisputeKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeKind::WrongCharge => "wrong_charge",
            DisputeKind::ChargeAfterCancellation => "charge_after_cancellation",
            DisputeKind::CancellationIgnored => "cancellation_ignored",
            DisputeKind::RefundMissing => "refund_missing",
            DisputeKind::DataNotDeleted => "data_not_deleted",
            DisputeKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<DisputeKind> {
        DisputeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Who answers a dispute now. Each level has its own deadlines; a dispute
/// climbs when one is missed, or when a person decides it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeLevel {
    Support,
    Supervisor,
    ExternalMediation,
    Legal,
}

impl DisputeLevel {
    pub const ALL: [DisputeLevel; 4] =
        [DisputeLevel::Support, DisputeLevel::Supervisor, DisputeLevel::ExternalMediation, DisputeLevel::Legal];

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeLevel::Support => "support",
            DisputeLevel::Supervisor => "supervisor",
            DisputeLevel::ExternalMediation => "external_mediation",
            DisputeLevel::Legal => "legal",
        }
    }

    pub fn parse(text: &str) -> Option<DisputeLevel> {
        DisputeLevel::ALL.into_iter().find(|l| l.as_str() == text)
    }

    /// The level above, if any: legal is the last.
    pub fn next(self) -> Option<DisputeLevel> {
        match self {
            DisputeLevel::Support => Some(DisputeLevel::Supervisor),
            DisputeLevel::Supervisor => Some(DisputeLevel::ExternalMediation),
            DisputeLevel::ExternalMediation => Some(DisputeLevel::Legal),
            DisputeLevel::Legal => None,
        }
    }
}

/// How a dispute ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisputeOutcome {
    /// Money went back: the records showed it was owed, or staff agreed.
    Refunded,
    /// The records answer it (the request, its receipt, the certificate).
    AnsweredFromRecords,
    /// Staff agreed with the guardian (without money, or with other redress).
    Upheld,
    /// Staff found against the complaint, with their reasons.
    Rejected,
    /// The guardian withdrew it.
    Withdrawn,
}

impl DisputeOutcome {
    pub const ALL: [DisputeOutcome; 5] = [
        DisputeOutcome::Refunded,
        DisputeOutcome::AnsweredFromRecords,
        DisputeOutcome::Upheld,
        DisputeOutcome::Rejected,
        DisputeOutcome::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisputeOutcome::Refunded => "refunded",
            DisputeOutcome::AnsweredFromRecords => "answered_from_records",
            DisputeOutcome::Upheld => "upheld",
            DisputeOutcome::Rejected => "rejected",
            DisputeOutcome::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<DisputeOutcome> {
        DisputeOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// The two deadlines of one level, counted from the moment the dispute
/// reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelDeadlines {
    pub first_response_hours: u32,
    pub resolution_hours: u32,
}

/// Every level's deadlines, as the operator configured them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    pub support: LevelDeadlines,
    pub supervisor: LevelDeadlines,
    pub external_mediation: LevelDeadlines,
    pub legal: LevelDeadlines,
    /// A complaint a consumer-protection body forwarded must be settled
    /// within this many hours, whatever the level's own deadline.
    pub forwarded_resolution_hours: u32,
}

const DAY_HOURS: u32 = 24;

impl Default for Deadlines {
    /// One day to answer and seven to settle at support; a supervisor the
    /// same again; a mediator and the legal department longer; seven days
    /// for a complaint a consumer-protection body forwards.
    fn default() -> Deadlines {
        let level = |first_days: u32, resolution_days: u32| LevelDeadlines {
            first_response_hours: first_days * DAY_HOURS,
            resolution_hours: resolution_days * DAY_HOURS,
        };
        Deadlines {
            support: level(1, 7),
            supervisor: level(1, 7),
            external_mediation: level(3, 30),
            legal: level(7, 60),
            forwarded_resolution_hours: 7 * DAY_HOURS,
        }
    }
}

/// When a dispute at a level must be answered and settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub first_response: Timestamp,
    pub resolution: Timestamp,
}

impl Deadlines {
    pub fn of(&self, level: DisputeLevel) -> LevelDeadlines {
        match level {
            DisputeLevel::Support => self.support,
            DisputeLevel::Supervisor => self.supervisor,
            DisputeLevel::ExternalMediation => self.external_mediation,
            DisputeLevel::Legal => self.legal,
        }
    }

    /// The deadlines of a dispute that reached `level` at `from`.
    pub fn due(&self, level: DisputeLevel, from: Timestamp, forwarded: bool) -> Due {
        let hours = |h: u32| SignedDuration::from_hours(i64::from(h));
        let deadlines = self.of(level);
        let mut resolution_hours = deadlines.resolution_hours;
        if forwarded {
            resolution_hours = resolution_hours.min(self.forwarded_resolution_hours);
        }
        let first_response_hours = deadlines.first_response_hours.min(resolution_hours);
        let first_response = from.saturating_add(hours(first_response_hours)).unwrap_or(Timestamp::MAX);
        let resolution = from.saturating_add(hours(resolution_hours)).unwrap_or(Timestamp::MAX);
        debug_assert!(first_response <= resolution);
        Due { first_response, resolution }
    }
}

impl Deadlines {
    /// These deadlines with some changed: `support=24/168,legal=168/1440`
    /// (hours to first response / to resolution) and `forwarded=168`.
    pub fn with_overrides(mut self, text: &str) -> Result<Deadlines, String> {
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, hours) =
                part.split_once('=').ok_or_else(|| format!("{part:?}: expected LEVEL=FIRST/RESOLUTION"))?;
            let number = |text: &str| -> Result<u32, String> {
                text.trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|h| (1..=24 * 366).contains(h))
                    .ok_or_else(|| format!("{part:?}: hours must be between 1 and {}", 24 * 366))
            };
            if name.trim() == "forwarded" {
                self.forwarded_resolution_hours = number(hours)?;
                continue;
            }
            let level = DisputeLevel::parse(name.trim()).ok_or_else(|| format!("{name:?} is not a level"))?;
            let (first, resolution) =
                hours.split_once('/').ok_or_else(|| format!("{part:?}: expected LEVEL=FIRST/RESOLUTION"))?;
            let deadlines =
                LevelDeadlines { first_response_hours: number(first)?, resolution_hours: number(resolution)? };
            if deadlines.first_response_hours > deadlines.resolution_hours {
                return Err(format!("{part:?}: the first response cannot be due after the resolution"));
            }
            match level {
                DisputeLevel::Support => self.support = deadlines,
                DisputeLevel::Supervisor => self.supervisor = deadlines,
                DisputeLevel::ExternalMediation => self.external_mediation = deadlines,
                DisputeLevel::Legal => self.legal = deadlines,
            }
        }
        Ok(self)
    }
}

/// Which deadline an open dispute has missed at `now`, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    FirstResponse,
    Resolution,
}

impl Missed {
    pub fn as_str(self) -> &'static str {
        match self {
            Missed::FirstResponse => "first_response",
            Missed::Resolution => "resolution",
        }
    }
}

/// Where an open dispute stands against its deadlines: the resolution
/// deadline counts first (it is the later one, so missing it means both
/// were at stake); a first response counts only until staff answered.
pub fn missed(due: Due, first_responded: bool, now: Timestamp) -> Option<Missed> {
    if now >= due.resolution {
        Some(Missed::Resolution)
    } else if !first_responded && now >= due.first_response {
        Some(Missed::FirstResponse)
    } else {
        None
    }
}

/// Whether a charge for a period starting at `period_start` was charged
/// after a cancellation took effect at `effective_at`: the promise that
/// nothing is charged for a period beginning at or after it.
pub fn charged_after_cancellation(period_start: Option<Timestamp>, effective_at: Timestamp) -> bool {
    period_start.is_some_and(|start| start >= effective_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn support_answers_in_a_day_and_settles_in_seven_and_a_forwarded_complaint_in_seven_at_most() {
        let deadlines = Deadlines::default();
        let filed = at("2026-03-01T10:00:00Z");
        let due = deadlines.due(DisputeLevel::Support, filed, false);
        assert_eq!(due.first_response, at("2026-03-02T10:00:00Z"));
        assert_eq!(due.resolution, at("2026-03-08T10:00:00Z"));
        let mediation = deadlines.due(DisputeLevel::ExternalMediation, filed, true);
        assert_eq!(mediation.resolution, at("2026-03-08T10:00:00Z"));
        assert_eq!(mediation.first_response, at("2026-03-04T10:00:00Z"));
    }

    #[test]
    fn a_missed_resolution_counts_before_a_missed_first_response_and_an_answer_stops_the_first() {
        let due = Deadlines::default().due(DisputeLevel::Support, at("2026-03-01T00:00:00Z"), false);
        assert_eq!(missed(due, false, at("2026-03-01T23:59:59Z")), None);
        assert_eq!(missed(due, false, at("2026-03-02T00:00:00Z")), Some(Missed::FirstResponse));
        assert_eq!(missed(due, true, at("2026-03-02T00:00:00Z")), None);
        assert_eq!(missed(due, true, at("2026-03-08T00:00:00Z")), Some(Missed::Resolution));
    }

    #[test]
    fn an_operator_changes_some_deadlines_and_keeps_the_others() {
        let deadlines = Deadlines::default().with_overrides("support=12/120, forwarded=72").unwrap();
        assert_eq!(deadlines.support, LevelDeadlines { first_response_hours: 12, resolution_hours: 120 });
        assert_eq!(deadlines.forwarded_resolution_hours, 72);
        assert_eq!(deadlines.legal, Deadlines::default().legal);
        for wrong in ["support", "support=1", "court=1/2", "support=0/5", "support=10/5", "legal=1/999999"] {
            assert!(Deadlines::default().with_overrides(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn levels_climb_to_legal_and_stop() {
        let mut level = DisputeLevel::Support;
        let mut climbed = vec![level];
        while let Some(next) = level.next() {
            assert!(next > level);
            level = next;
            climbed.push(level);
        }
        assert_eq!(climbed, DisputeLevel::ALL);
        for kind in DisputeKind::ALL {
            assert_eq!(DisputeKind::parse(kind.as_str()), Some(kind));
        }
        for outcome in DisputeOutcome::ALL {
            assert_eq!(DisputeOutcome::parse(outcome.as_str()), Some(outcome));
        }
    }

    #[test]
    fn a_period_starting_at_the_instant_a_cancellation_takes_effect_is_after_it() {
        let effective = at("2026-04-01T00:00:00Z");
        assert!(charged_after_cancellation(Some(effective), effective));
        assert!(!charged_after_cancellation(Some(at("2026-03-01T00:00:00Z")), effective));
        assert!(!charged_after_cancellation(None, effective));
    }
}
