//! The short texts callers type: an email address, a person's or a plan's
//! name, an integrator's service name. Each is a newtype whose only
//! constructor is `parse`, so a value of the type has passed the rule.

use std::fmt;

pub const EMAIL_CHARS_MAX: usize = 254;
pub const NAME_CHARS_MAX: usize = 100;
pub const SERVICE_CHARS_MIN: usize = 2;
pub const SERVICE_CHARS_MAX: usize = 32;

pub const REASON_TEXT_CHARS_MAX: usize = 1000;
/// Why parents leave, as the provider's reports count them.
pub const REASON_CATEGORIES: [&str; 6] =
    ["child_outgrew", "cost", "service_quality", "privacy_safety", "switching", "other"];
/// A child is at most this old when registered.
pub const CHILD_AGE_YEARS_MAX: i16 = 25;

/// Why a text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("not a date (YYYY-MM-DD)")]
    Date,
    #[error("a date of birth must be today or up to 25 years ago")]
    BirthDateRange,
    #[error("not one of the reason categories")]
    ReasonCategory,
    #[error("at most {max} characters")]
    CharsMax { max: usize },
    #[error("not an email address")]
    Email,
    #[error("must be {min} to {max} characters without control characters")]
    CharsBetween { min: usize, max: usize },
    #[error("must be 2 to 32 of a-z, 0-9, '_' and '-', starting with a letter")]
    ServiceName,
    #[error("not a phone number: 6 to 20 digits, with an optional leading '+' and spaces, '-', '.', '(' or ')'")]
    Phone,
}

macro_rules! text_type {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// An email address, trimmed and lower-cased: one `@`, a dotted domain, no
/// spaces or control characters, at most 254 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);
text_type!(EmailAddress);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<EmailAddress, TextError> {
        let email = text.trim().to_lowercase();
        let well_formed = email.chars().count() <= EMAIL_CHARS_MAX
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if well_formed { Ok(EmailAddress(email)) } else { Err(TextError::Email) }
    }
}

/// A phone number as people write it (`+86 138-0013-8000`): trimmed, an
/// optional leading `+`, then digits with spaces, `-`, `.`, `(` or `)`
/// between them; 6 to 20 digits in all.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Phone(String);
text_type!(Phone);

pub const PHONE_DIGITS_MIN: usize = 6;
pub const PHONE_DIGITS_MAX: usize = 20;

impl Phone {
    pub fn parse(text: &str) -> Result<Phone, TextError> {
        let phone = text.trim();
        let body = phone.strip_prefix('+').unwrap_or(phone);
        let digits = body.chars().filter(char::is_ascii_digit).count();
        let ok = (PHONE_DIGITS_MIN..=PHONE_DIGITS_MAX).contains(&digits)
            && body.starts_with(|c: char| c.is_ascii_digit() || c == '(')
            && body.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'));
        if ok { Ok(Phone(phone.to_owned())) } else { Err(TextError::Phone) }
    }

    /// Its digits alone: what support's search compares.
    pub fn digits(&self) -> String {
        self.0.chars().filter(char::is_ascii_digit).collect()
    }
}

/// A name as people write it (a guardian, a child, a plan in one language):
/// trimmed, 1 to 100 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);
text_type!(Name);

impl Name {
    pub fn parse(text: &str) -> Result<Name, TextError> {
        let name = text.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > NAME_CHARS_MAX || name.chars().any(char::is_control) {
            return Err(TextError::CharsBetween { min: 1, max: NAME_CHARS_MAX });
        }
        Ok(Name(name.to_owned()))
    }
}

/// The name of an integrator's service (`kids-maths`): what plans, API keys,
/// webhooks and children's records are filed under.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ServiceName(String);
text_type!(ServiceName);

impl ServiceName {
    pub fn parse(text: &str) -> Result<ServiceName, TextError> {
        let ok = (SERVICE_CHARS_MIN..=SERVICE_CHARS_MAX).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok { Ok(ServiceName(text.to_owned())) } else { Err(TextError::ServiceName) }
    }
}

/// A child's date of birth: a calendar date, not after `today` and at
/// most 25 years before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BirthDate(jiff::civil::Date);

impl BirthDate {
    pub fn parse(text: &str, today: jiff::civil::Date) -> Result<BirthDate, TextError> {
        let date: jiff::civil::Date = text.trim().parse().map_err(|_| TextError::Date)?;
        if date > today || date.year() < today.year() - CHILD_AGE_YEARS_MAX {
            return Err(TextError::BirthDateRange);
        }
        Ok(BirthDate(date))
    }

    pub fn date(&self) -> jiff::civil::Date {
        self.0
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a guardian cancelled: one of the categories, and their own words
/// (trimmed, at most 1,000 characters) if they gave any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reason {
    category: &'static str,
    text: Option<String>,
}

impl Reason {
    pub fn parse(category: &str, text: Option<&str>) -> Result<Reason, TextError> {
        let category = REASON_CATEGORIES.into_iter().find(|c| *c == category).ok_or(TextError::ReasonCategory)?;
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        if text.is_some_and(|t| t.chars().count() > REASON_TEXT_CHARS_MAX) {
            return Err(TextError::CharsMax { max: REASON_TEXT_CHARS_MAX });
        }
        Ok(Reason { category, text: text.map(str::to_owned) })
    }

    pub fn category(&self) -> &'static str {
        self.category
    }

    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones() {
        for (written, digits) in [
            ("+86 138-0013-8000", "8613800138000"),
            ("  021 5555 0100 ", "02155550100"),
            ("(021) 5555.0100", "02155550100"),
            ("123456", "123456"),
        ] {
            assert_eq!(Phone::parse(written).unwrap().digits(), digits, "{written}");
        }
        for bad in [
            "",
            "12345",
            "+",
            "++8613800138000",
            "138 0013 8000 ext 5",
            "１３８００１３８０００",
            "-138001380",
            "1".repeat(21).as_str(),
            "138\n0013",
        ] {
            assert_eq!(Phone::parse(bad), Err(TextError::Phone), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(EmailAddress::parse("  Ana@Example.COM ").unwrap().as_str(), "ana@example.com");
        for bad in
            ["", "ana", "@example.com", "ana@example", "ana@.example.com", "ana@example.com.", "a na@x.cn", "a@b@c.cn"]
        {
            assert_eq!(EmailAddress::parse(bad), Err(TextError::Email), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(EMAIL_CHARS_MAX));
        assert_eq!(EmailAddress::parse(&long), Err(TextError::Email));
    }

    #[test]
    fn names() {
        assert_eq!(Name::parse("  小明 ").unwrap().as_str(), "小明");
        assert!(Name::parse(&"名".repeat(NAME_CHARS_MAX)).is_ok());
        for bad in [String::new(), "   ".to_owned(), "a\u{0}b".to_owned(), "名".repeat(NAME_CHARS_MAX + 1)] {
            assert_eq!(Name::parse(&bad), Err(TextError::CharsBetween { min: 1, max: NAME_CHARS_MAX }), "{bad:?}");
        }
    }

    #[test]
    fn birth_dates() {
        let today: jiff::civil::Date = "2027-01-20".parse().unwrap();
        assert_eq!(BirthDate::parse("2019-05-01", today).unwrap().to_string(), "2019-05-01");
        assert!(BirthDate::parse("2027-01-20", today).is_ok(), "born today");
        assert_eq!(BirthDate::parse("2027-01-21", today), Err(TextError::BirthDateRange));
        assert_eq!(BirthDate::parse("2001-12-31", today), Err(TextError::BirthDateRange));
        assert_eq!(BirthDate::parse("2019-02-30", today), Err(TextError::Date));
        assert_eq!(BirthDate::parse("yesterday", today), Err(TextError::Date));
    }

    #[test]
    fn reasons() {
        let reason = Reason::parse("cost", Some("  too dear  ")).unwrap();
        assert_eq!((reason.category(), reason.text()), ("cost", Some("too dear")));
        assert_eq!(Reason::parse("other", Some("   ")).unwrap().text(), None);
        assert_eq!(Reason::parse("bored", None), Err(TextError::ReasonCategory));
        let long = "字".repeat(REASON_TEXT_CHARS_MAX + 1);
        assert_eq!(Reason::parse("other", Some(&long)), Err(TextError::CharsMax { max: REASON_TEXT_CHARS_MAX }));
    }

    #[test]
    fn service_names() {
        assert!(ServiceName::parse("kids-maths").is_ok());
        for bad in ["k", "Kids", "1kids", "kids maths", "kids.maths", &"k".repeat(SERVICE_CHARS_MAX + 1)] {
            assert_eq!(ServiceName::parse(bad), Err(TextError::ServiceName), "{bad}");
        }
    }
}
