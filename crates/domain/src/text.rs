//! The short texts callers type: an email address, a person's or a plan's
//! name, an integrator's service name. Each is a newtype whose only
//! constructor is `parse`, so a value of the type has passed the rule.

use std::fmt;

pub const EMAIL_CHARS_MAX: usize = 254;
pub const NAME_CHARS_MAX: usize = 100;
pub const SERVICE_CHARS_MIN: usize = 2;
pub const SERVICE_CHARS_MAX: usize = 32;

/// Why a text was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("not an email address")]
    Email,
    #[error("must be {min} to {max} characters without control characters")]
    CharsBetween { min: usize, max: usize },
    #[error("must be 2 to 32 of a-z, 0-9, '_' and '-', starting with a letter")]
    ServiceName,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn service_names() {
        assert!(ServiceName::parse("kids-maths").is_ok());
        for bad in ["k", "Kids", "1kids", "kids maths", "kids.maths", &"k".repeat(SERVICE_CHARS_MAX + 1)] {
            assert_eq!(ServiceName::parse(bad), Err(TextError::ServiceName), "{bad}");
        }
    }
}
