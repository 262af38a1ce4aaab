//! Calendar periods in the family's time zone.
//!
//! A subscription's periods are anchored on one instant (the start of the
//! first paid period) and period `i` starts at `anchor + i × length`,
//! computed from the anchor every time rather than step by step: so an
//! anchor of 31 January gives 28/29 February, 31 March, 30 April, … and a
//! short month never drags every later period to the 28th. Day arithmetic
//! (notice, cooling-off, retention) is calendar days in the same zone, so a
//! daylight-saving change never moves a deadline by an hour.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, ZonedDateTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest period a plan may have: ten years.
pub const PERIOD_MONTHS_MAX: u32 = 120;
pub const PERIOD_DAYS_MAX: u32 = 3660;

/// The length of one billing period: a whole number of months (`P1M`,
/// `P3M`, `P1Y` = 12 months) or of days (`P7D`, `P2W` = 14 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodLength {
    Months(u32),
    Days(u32),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum CalendarError {
    #[error("period {0:?} is not an ISO-8601 period such as P1M, P3M, P1Y, P7D or P2W")]
    Period(String),
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("date out of the supported range")]
    OutOfRange,
}

impl PeriodLength {
    pub fn parse(text: &str) -> Result<PeriodLength, CalendarError> {
        let error = || CalendarError::Period(text.chars().take(32).collect());
        let body = text.strip_prefix('P').ok_or_else(error)?;
        if body.len() < 2 {
            return Err(error());
        }
        let (number, unit) = body.split_at(body.len() - 1);
        if !number.bytes().all(|b| b.is_ascii_digit()) || number.starts_with('0') {
            return Err(error());
        }
        let count: u32 = number.parse().map_err(|_| error())?;
        let length = match unit {
            "Y" => PeriodLength::Months(count.checked_mul(12).ok_or_else(error)?),
            "M" => PeriodLength::Months(count),
            "W" => PeriodLength::Days(count.checked_mul(7).ok_or_else(error)?),
            "D" => PeriodLength::Days(count),
            _ => return Err(error()),
        };
        let within_bounds = match length {
            PeriodLength::Months(m) => (1..=PERIOD_MONTHS_MAX).contains(&m),
            PeriodLength::Days(d) => (1..=PERIOD_DAYS_MAX).contains(&d),
        };
        if within_bounds { Ok(length) } else { Err(error()) }
    }

    /// The ISO-8601 form, in the largest unit that divides it.
    pub fn iso(&self) -> String {
        match *self {
            PeriodLength::Months(m) if m % 12 == 0 => format!("P{}Y", m / 12),
            PeriodLength::Months(m) => format!("P{m}M"),
            PeriodLength::Days(d) if d % 7 == 0 => format!("P{}W", d / 7),
            PeriodLength::Days(d) => format!("P{d}D"),
        }
    }

    /// The fewest days any one period of this length can have.
    pub fn min_days(&self) -> u32 {
        match *self {
            PeriodLength::Months(m) => m * 28 + m / 12 * 5,
            PeriodLength::Days(d) => d,
        }
    }

    pub fn is_a_year_or_longer(&self) -> bool {
        match *self {
            PeriodLength::Months(m) => m >= 12,
            PeriodLength::Days(d) => d >= 365,
        }
    }

    fn times(&self, count: u32) -> Span {
        match *self {
            PeriodLength::Months(m) => Span::new().months(i64::from(m) * i64::from(count)),
            PeriodLength::Days(d) => Span::new().days(i64::from(d) * i64::from(count)),
        }
    }
}

impl fmt::Display for PeriodLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso())
    }
}

impl Serialize for PeriodLength {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.iso())
    }
}

impl<'de> Deserialize<'de> for PeriodLength {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        PeriodLength::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Calendar arithmetic in one IANA time zone.
#[derive(Clone, Debug)]
pub struct Calendar {
    zone_name: String,
    zone: TimeZone,
}

impl Calendar {
    pub fn new(zone_name: &str) -> Result<Calendar, CalendarError> {
        let error = || CalendarError::TimeZone(zone_name.chars().take(64).collect());
        // A zone name is short and plain; anything else is not worth a lookup.
        if zone_name.is_empty() || zone_name.len() > 64 {
            return Err(error());
        }
        let zone = TimeZone::get(zone_name).map_err(|_| error())?;
        Ok(Calendar { zone_name: zone_name.to_owned(), zone })
    }

    pub fn zone_name(&self) -> &str {
        &self.zone_name
    }

    pub fn zoned(&self, instant: Timestamp) -> ZonedDateTime {
        instant.to_zoned_datetime(self.zone.clone())
    }

    /// `instant + days` calendar days in this zone (same wall-clock time).
    pub fn add_days(&self, instant: Timestamp, days: u32) -> Result<Timestamp, CalendarError> {
        self.zoned(instant)
            .checked_add(Span::new().days(i64::from(days)))
            .map(|z| z.timestamp())
            .map_err(|_| CalendarError::OutOfRange)
    }

    /// `instant − days` calendar days in this zone (same wall-clock time).
    pub fn sub_days(&self, instant: Timestamp, days: u32) -> Result<Timestamp, CalendarError> {
        self.zoned(instant)
            .checked_sub(Span::new().days(i64::from(days)))
            .map(|z| z.timestamp())
            .map_err(|_| CalendarError::OutOfRange)
    }

    /// The start of period `index` of a schedule anchored at `anchor`.
    pub fn period_start(
        &self,
        anchor: Timestamp,
        length: PeriodLength,
        index: u32,
    ) -> Result<Timestamp, CalendarError> {
        self.zoned(anchor)
            .checked_add(length.times(index))
            .map(|z| z.timestamp())
            .map_err(|_| CalendarError::OutOfRange)
    }

    /// The first instant of a calendar date in this zone.
    pub fn start_of_date(&self, date: jiff::civil::Date) -> Result<Timestamp, CalendarError> {
        date.to_zoned_datetime(self.zone.clone()).map(|z| z.timestamp()).map_err(|_| CalendarError::OutOfRange)
    }

    /// A calendar date in this zone, for plain-language text ("2026-03-31").
    pub fn date_text(&self, instant: Timestamp) -> String {
        self.zoned(instant).date().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn periods_parse_in_iso_8601_form_only() {
        assert_eq!(PeriodLength::parse("P1M"), Ok(PeriodLength::Months(1)));
        assert_eq!(PeriodLength::parse("P1Y"), Ok(PeriodLength::Months(12)));
        assert_eq!(PeriodLength::parse("P2W"), Ok(PeriodLength::Days(14)));
        assert_eq!(PeriodLength::parse("P7D").map(|p| p.iso()), Ok("P1W".to_owned()));
        for bad in ["", "P", "1M", "P0M", "P-1M", "P1H", "P01M", "P1.5M", "P999Y", "PT1M", "P1M1D"] {
            assert!(PeriodLength::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    /// (anchor, index, expected start) in Asia/Shanghai: month ends clamp,
    /// and every period is computed from the anchor, not from the previous one.
    #[test]
    fn month_periods_follow_the_calendar_from_the_anchor() {
        let shanghai = Calendar::new("Asia/Shanghai").unwrap();
        let anchor = at("2027-01-30T16:00:00Z"); // 31 Jan 2027, 00:00 in Shanghai
        let cases = [
            (0, "2027-01-30T16:00:00Z"),
            (1, "2027-02-27T16:00:00Z"),  // 28 Feb
            (2, "2027-03-30T16:00:00Z"),  // 31 Mar
            (3, "2027-04-29T16:00:00Z"),  // 30 Apr
            (13, "2028-02-28T16:00:00Z"), // 29 Feb in a leap year
        ];
        for (index, expected) in cases {
            let start = shanghai.period_start(anchor, PeriodLength::Months(1), index).unwrap();
            assert_eq!(start, at(expected), "period {index}");
        }
    }

    #[test]
    fn leap_day_anchor_gives_28_february_in_common_years() {
        let utc = Calendar::new("UTC").unwrap();
        let anchor = at("2028-02-29T10:00:00Z");
        let next = utc.period_start(anchor, PeriodLength::Months(12), 1).unwrap();
        assert_eq!(next, at("2029-02-28T10:00:00Z"));
        let after = utc.period_start(anchor, PeriodLength::Months(12), 4).unwrap();
        assert_eq!(after, at("2032-02-29T10:00:00Z"));
    }

    #[test]
    fn day_arithmetic_keeps_wall_clock_time_across_daylight_saving() {
        let berlin = Calendar::new("Europe/Berlin").unwrap();
        // 28 Mar 2027 is the spring-forward day in Berlin: 12:00 CET → 12:00 CEST.
        let before = at("2027-03-27T11:00:00Z");
        assert_eq!(berlin.add_days(before, 1).unwrap(), at("2027-03-28T10:00:00Z"));
        assert_eq!(berlin.sub_days(at("2027-03-28T10:00:00Z"), 1).unwrap(), before);
    }

    #[test]
    fn unknown_time_zones_are_rejected() {
        assert!(Calendar::new("Mars/Olympus").is_err());
        assert!(Calendar::new("").is_err());
    }
}
