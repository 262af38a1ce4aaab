//! The two locales every user-facing text exists in, and how a request's
//! preference (`Accept-Language`, a guardian's setting) is mapped onto them.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Locale {
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[default]
    #[serde(rename = "en")]
    En,
}

impl Locale {
    pub const ALL: [Locale; 2] = [Locale::ZhCn, Locale::En];

    pub fn tag(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
        }
    }

    /// Parses an exact tag as stored for a guardian (`zh-CN`, `en`), tolerant
    /// of case and of the bare language subtag.
    pub fn parse(tag: &str) -> Option<Locale> {
        let lowered = tag.trim().to_ascii_lowercase();
        let primary = lowered.split(['-', '_']).next().unwrap_or_default();
        match primary {
            "zh" => Some(Locale::ZhCn),
            "en" => Some(Locale::En),
            _ => None,
        }
    }

    /// Picks the best supported locale from an `Accept-Language` header,
    /// honouring q-values; `None` when nothing in it is supported.
    pub fn from_accept_language(header: &str) -> Option<Locale> {
        let mut best: Option<(u16, Locale)> = None;
        for part in header.split(',').take(ACCEPT_LANGUAGE_ENTRIES_MAX) {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or_default();
            let quality = pieces.find_map(|p| p.trim().strip_prefix("q=")).map(parse_quality).unwrap_or(1000);
            if quality == 0 {
                continue;
            }
            if let Some(locale) = Locale::parse(tag)
                && best.is_none_or(|(q, _)| quality > q)
            {
                best = Some((quality, locale));
            }
        }
        best.map(|(_, locale)| locale)
    }
}

/// More entries than this in one header are ignored (a hostile header must
/// not cost more than a short one).
const ACCEPT_LANGUAGE_ENTRIES_MAX: usize = 16;

/// A q-value as thousandths, so that no float is needed to compare them.
fn parse_quality(text: &str) -> u16 {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u16 = whole.parse().unwrap_or(0);
    let mut thousandths: u16 = 0;
    for (i, digit) in fraction.chars().take(3).enumerate() {
        let value = digit.to_digit(10).unwrap_or(0) as u16;
        thousandths += value * 10u16.pow(2 - i as u32);
    }
    (whole.min(1) * 1000 + thousandths).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_prefers_the_highest_quality_supported_tag() {
        assert_eq!(Locale::from_accept_language("zh-CN,zh;q=0.9,en;q=0.8"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_accept_language("fr;q=1, en;q=0.5, zh;q=0.7"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_accept_language("en-GB"), Some(Locale::En));
        assert_eq!(Locale::from_accept_language("fr, de"), None);
        assert_eq!(Locale::from_accept_language("zh;q=0, en"), Some(Locale::En));
    }
}
