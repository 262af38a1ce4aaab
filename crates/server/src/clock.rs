//! Where "now" comes from. Nothing in baobao reads the system time except
//! `SystemClock`; in `--clock simulated` mode an admin can move time forward
//! (like a payment provider's test clock) and a year of renewals runs in
//! seconds. The simulated clock runs on at real speed from the instant it
//! was set, so that things done one after another stay in order; its
//! setting is kept in the database so that a restart, the CLI and a second
//! server see the same time.

use std::sync::Mutex;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
    /// Moves a simulated clock; `None` for clocks that cannot be set.
    fn as_simulated(&self) -> Option<&SimulatedClock> {
        None
    }
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        to_microseconds(Timestamp::now())
    }
}

/// Instants are stored to the microsecond; reading them back must give
/// exactly what was handed out.
fn to_microseconds(instant: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(instant.as_microsecond()).unwrap_or(instant)
}

pub struct SimulatedClock {
    /// The instant set, and when (in real, monotonic time) it was set.
    set: Mutex<(Timestamp, Instant)>,
}

impl SimulatedClock {
    pub fn starting_at(now: Timestamp) -> SimulatedClock {
        SimulatedClock { set: Mutex::new((now, Instant::now())) }
    }

    /// Sets the time; it never goes backwards, because receipts and ledger
    /// entries already written must stay in the past.
    pub fn set(&self, now: Timestamp) -> Result<Timestamp, Timestamp> {
        let mut set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        let current = advance(set.0, set.1);
        if now < current {
            return Err(current);
        }
        *set = (now, Instant::now());
        Ok(now)
    }
}

fn advance(from: Timestamp, since: Instant) -> Timestamp {
    let elapsed = SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::ZERO);
    to_microseconds(from.checked_add(elapsed).unwrap_or(from))
}

impl Clock for SimulatedClock {
    fn now(&self) -> Timestamp {
        let set = self.set.lock().unwrap_or_else(|p| p.into_inner());
        advance(set.0, set.1)
    }

    fn as_simulated(&self) -> Option<&SimulatedClock> {
        Some(self)
    }
}

/// The settings row that keeps the simulated time.
pub const SIMULATED_NOW_SETTING: &str = "simulated_clock_now";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_clock_moves_forward_only() {
        let start: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let clock = SimulatedClock::starting_at(start);
        assert!(clock.now() >= start);
        let later: Timestamp = "2027-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(clock.set(later), Ok(later));
        assert!(clock.set(start).is_err());
        assert!(clock.now() >= later);
    }
}
