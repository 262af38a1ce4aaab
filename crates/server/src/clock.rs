//! Where "now" comes from. Nothing in baobao reads the system time except
//! `SystemClock`; in `--clock simulated` mode an admin can move time forward
//! (like a payment provider's test clock) and a year of renewals runs in
//! seconds. The simulated clock stands still between settings; its
//! setting is kept in the database so that a restart, the CLI and every
//! other server see the same time: setting it moves the database's value
//! forward (never back, whichever server does it), and each server catches
//! up with that value before every request (`shared_clock::follow`).

use std::sync::Mutex;

use jiff::Timestamp;

pub trait Clock: Send + Sync {
    /// Business time: periods, quotes, renewals, receipts.
    fn now(&self) -> Timestamp;
    /// Real time, for what protects accounts (session lifetimes): moving a
    /// simulated clock a month ahead must not sign everybody out, nor keep
    /// a stolen token alive.
    fn wall_now(&self) -> Timestamp {
        to_microseconds(Timestamp::now())
    }
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

/// Stands still until an admin moves it, like a payment provider's test
/// clock, so that a story runs the same every time and any instant (the
/// notice deadline itself) can be reached exactly. Things done at the same
/// instant keep their order by the rows' insertion sequence, not by time.
pub struct SimulatedClock {
    last: Mutex<Timestamp>,
}

impl SimulatedClock {
    pub fn starting_at(now: Timestamp) -> SimulatedClock {
        SimulatedClock { last: Mutex::new(to_microseconds(now)) }
    }

    /// Sets the time; it never goes backwards, because receipts and ledger
    /// entries already written must stay in the past.
    pub fn set(&self, now: Timestamp) -> Result<Timestamp, Timestamp> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = to_microseconds(now);
        if now < *last {
            return Err(*last);
        }
        *last = now;
        Ok(now)
    }
}

impl SimulatedClock {
    /// Catches up with time another process set (kept in the database):
    /// forward only, so a reading older than this clock changes nothing.
    pub fn catch_up(&self, now: Timestamp) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = to_microseconds(now);
        if now > *last {
            *last = now;
        }
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Timestamp {
        *self.last.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn as_simulated(&self) -> Option<&SimulatedClock> {
        Some(self)
    }
}

/// The years a simulated clock may be set to: far enough ahead for any
/// retention or commitment a test or demo runs through, near enough that
/// calendar arithmetic on top of it (a period, a retention, a legal hold of
/// years) never leaves the range instants can hold.
pub const SIMULATED_YEAR_MIN: i16 = 2000;
pub const SIMULATED_YEAR_MAX: i16 = 2200;

/// The settings row that keeps the simulated time.
pub const SIMULATED_NOW_SETTING: &str = "simulated_clock_now";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_clock_moves_forward_only() {
        let start: Timestamp = "2027-01-01T00:00:00Z".parse().unwrap();
        let clock = SimulatedClock::starting_at(start);
        assert_eq!((clock.now(), clock.now()), (start, start), "it stands still between settings");
        let later: Timestamp = "2027-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(clock.set(later), Ok(later));
        assert!(clock.set(start).is_err());
        assert_eq!(clock.now(), later);
        clock.catch_up(start);
        assert_eq!(clock.now(), later, "catching up never goes back");
    }
}
