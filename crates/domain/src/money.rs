//! Money: integer minor units with an ISO-4217 currency, and the only places
//! where amounts are divided (proration), each with its rounding direction
//! named — refunds round up, fees round down, so rounding always favours the
//! guardian.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount baobao accepts anywhere, in minor units: a hundred
/// million major units. Keeps every product of two amounts inside `i128`
/// and every sum of a lifetime of charges inside `i64`.
pub const AMOUNT_MINOR_MAX: i64 = 10_000_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum MoneyError {
    #[error("currency must be three upper-case letters (ISO 4217), got {0:?}")]
    Currency(String),
    #[error("amount must not be negative")]
    Negative,
    #[error("amount exceeds the maximum of {AMOUNT_MINOR_MAX} minor units")]
    TooLarge,
    #[error("currencies differ: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
}

impl Currency {
    pub const CNY: Currency = Currency(*b"CNY");

    pub fn parse(text: &str) -> Result<Currency, MoneyError> {
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(MoneyError::Currency(text.chars().take(16).collect()));
        }
        Ok(Currency([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters ever get in (see `parse`).
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point, for display only.
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Currency::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A non-negative amount in minor units. Direction (charge or refund) is
/// carried by what the amount is attached to, never by its sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount_minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount_minor < 0 {
            return Err(MoneyError::Negative);
        }
        if amount_minor > AMOUNT_MINOR_MAX {
            return Err(MoneyError::TooLarge);
        }
        Ok(Money { amount_minor, currency })
    }

    pub fn zero(currency: Currency) -> Money {
        Money { amount_minor: 0, currency }
    }

    pub fn is_zero(&self) -> bool {
        self.amount_minor == 0
    }

    pub fn min(self, other: Money) -> Money {
        debug_assert_eq!(self.currency, other.currency);
        if other.amount_minor < self.amount_minor { other } else { self }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Money::new(self.amount_minor.saturating_add(other.amount_minor), self.currency)
    }

    /// `self × count`, used for "the committed charges not yet billed".
    pub fn times(self, count: u32) -> Money {
        Money { amount_minor: self.amount_minor.saturating_mul(i64::from(count)), currency: self.currency }
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    /// `self × numerator / denominator`, rounded up: the rounding for
    /// anything paid back to the guardian.
    pub fn prorate_refund(self, numerator: i64, denominator: i64) -> Money {
        self.prorate(numerator, denominator, Rounding::Up)
    }

    /// `self × numerator / denominator`, rounded down: the rounding for
    /// anything the guardian pays.
    pub fn prorate_fee(self, numerator: i64, denominator: i64) -> Money {
        self.prorate(numerator, denominator, Rounding::Down)
    }

    fn prorate(self, numerator: i64, denominator: i64, rounding: Rounding) -> Money {
        debug_assert!(denominator > 0, "proration over an empty span");
        debug_assert!((0..=denominator).contains(&numerator), "proration outside 0..=1");
        if denominator <= 0 {
            return Money::zero(self.currency);
        }
        let numerator = numerator.clamp(0, denominator);
        let product = i128::from(self.amount_minor) * i128::from(numerator);
        let denominator = i128::from(denominator);
        let quotient = match rounding {
            Rounding::Down => product / denominator,
            Rounding::Up => (product + denominator - 1) / denominator,
        };
        // Inside 0..=amount because numerator <= denominator.
        Money { amount_minor: quotient as i64, currency: self.currency }
    }

    /// "39.00 CNY", for plain-language text.
    /// As a reader of `locale` writes it: in Chinese, renminbi is "元"
    /// (`39.00 元`); other currencies keep their ISO code, as in English.
    pub fn display_in(&self, locale: crate::Locale) -> String {
        let text = self.display();
        match (locale, self.currency == Currency::CNY) {
            (crate::Locale::ZhCn, true) => format!("{} 元", text.trim_end_matches(" CNY")),
            _ => text,
        }
    }

    pub fn display(&self) -> String {
        let digits = self.currency.minor_digits();
        if digits == 0 {
            return format!("{} {}", self.amount_minor, self.currency);
        }
        let scale = 10i64.pow(digits);
        format!(
            "{}.{:0width$} {}",
            self.amount_minor / scale,
            self.amount_minor % scale,
            self.currency,
            width = digits as usize
        )
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            amount_minor: i64,
            currency: Currency,
        }
        let raw = Raw::deserialize(deserializer)?;
        Money::new(raw.amount_minor, raw.currency).map_err(serde::de::Error::custom)
    }
}

enum Rounding {
    Up,
    Down,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renminbi_reads_yuan_in_chinese_and_cny_in_english() {
        let price = Money::new(3900, Currency::CNY).unwrap();
        assert_eq!(price.display_in(crate::Locale::ZhCn), "39.00 元");
        assert_eq!(price.display_in(crate::Locale::En), "39.00 CNY");
        let dollars = Money::new(500, Currency::parse("USD").unwrap()).unwrap();
        assert_eq!(dollars.display_in(crate::Locale::ZhCn), "5.00 USD");
    }

    fn cny(amount_minor: i64) -> Money {
        Money::new(amount_minor, Currency::CNY).unwrap()
    }

    #[test]
    fn refunds_round_up_and_fees_round_down() {
        assert_eq!(cny(100).prorate_refund(1, 3), cny(34));
        assert_eq!(cny(100).prorate_fee(1, 3), cny(33));
        assert_eq!(cny(100).prorate_refund(3, 3), cny(100));
        assert_eq!(cny(100).prorate_fee(0, 3), cny(0));
    }

    #[test]
    fn negative_amounts_and_bad_currencies_are_rejected() {
        assert_eq!(Money::new(-1, Currency::CNY), Err(MoneyError::Negative));
        assert!(Currency::parse("cny").is_err());
        assert!(Currency::parse("CN").is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor": -5, "currency": "CNY"}"#).is_err());
        assert!(serde_json::from_str::<Money>(r#"{"amount_minor": 1.5, "currency": "CNY"}"#).is_err());
    }

    #[test]
    fn display_uses_the_currency_minor_digits() {
        assert_eq!(cny(3900).display(), "39.00 CNY");
        assert_eq!(Money::new(500, Currency::parse("JPY").unwrap()).unwrap().display(), "500 JPY");
    }
}
