//! The text of pages, console and emails: Fluent catalogues (`locales/en`, `locales/zh-CN`),
//! embedded at compile time. Pages never carry inline strings; they ask `T`.

use std::borrow::Cow;
use std::collections::HashMap;

use baobao_domain::Locale;
use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // Isolation marks around placeables would show up in copied text.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

static EN: LanguageIdentifier = langid!("en");
static ZH_CN: LanguageIdentifier = langid!("zh-CN");

/// The translator a page renders with.
#[derive(Clone, Debug)]
pub struct T {
    pub locale: Locale,
}

impl T {
    pub fn new(locale: Locale) -> T {
        T { locale }
    }

    fn language(&self) -> &'static LanguageIdentifier {
        match self.locale {
            Locale::En => &EN,
            Locale::ZhCn => &ZH_CN,
        }
    }

    pub fn tag(&self) -> &'static str {
        self.locale.tag()
    }

    pub fn get(&self, key: &str) -> String {
        LOCALES.lookup(self.language(), key)
    }

    pub fn arg(&self, key: &str, name: &'static str, value: impl ToString) -> String {
        let mut args: HashMap<Cow<'static, str>, FluentValue> = HashMap::new();
        args.insert(Cow::Borrowed(name), FluentValue::from(value.to_string()));
        LOCALES.lookup_with_args(self.language(), key, &args)
    }

    pub fn args(&self, key: &str, values: &[(&'static str, String)]) -> String {
        let args: HashMap<Cow<'static, str>, FluentValue> =
            values.iter().map(|(name, value)| (Cow::Borrowed(*name), FluentValue::from(value.clone()))).collect();
        LOCALES.lookup_with_args(self.language(), key, &args)
    }

    /// A ledger entry's note in this language (a note this server did not
    /// write reads as it was written).
    pub fn ledger_note(&self, note: &str) -> String {
        match baobao_domain::ledger::LedgerNote::of(note) {
            Some(known) => self.get(&format!("note-{}", known.name())),
            None => note.to_owned(),
        }
    }

    /// The other locale, for the switch on every page.
    pub fn other(&self) -> Locale {
        match self.locale {
            Locale::En => Locale::ZhCn,
            Locale::ZhCn => Locale::En,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(key, text)` of every message in a catalogue, sorted by key.
    fn messages(text: &str) -> Vec<(String, String)> {
        let mut messages: Vec<(String, String)> = text
            .lines()
            .filter(|l| !l.starts_with(' ') && !l.starts_with('#'))
            .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.trim().to_owned(), v.to_owned())))
            .collect();
        messages.sort();
        messages
    }

    /// No page can be half-translated: both catalogues have the same keys,
    /// every message resolves, and none is left in the other language.
    #[test]
    fn both_catalogues_have_the_same_keys_and_every_message_resolves() {
        let en = messages(concat!(
            include_str!("../locales/en/portal.ftl"),
            include_str!("../locales/en/email.ftl"),
            include_str!("../locales/en/console.ftl")
        ));
        let zh = messages(concat!(
            include_str!("../locales/zh-CN/portal.ftl"),
            include_str!("../locales/zh-CN/email.ftl"),
            include_str!("../locales/zh-CN/console.ftl")
        ));
        let keys = |m: &[(String, String)]| m.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(&en), keys(&zh));
        assert!(en.len() > 100);
        for ((key, en_text), (_, zh_text)) in en.iter().zip(&zh) {
            assert_ne!(en_text, zh_text, "{key} is not translated");
            // (Placeables, and string literals such as a separator's space, resolve to other text.)
            if !en_text.contains('$') && !en_text.contains("{\"") {
                assert_eq!(&T::new(Locale::En).get(key), en_text, "{key}");
                assert_eq!(&T::new(Locale::ZhCn).get(key), zh_text, "{key}");
            }
        }
    }

    #[test]
    fn arguments_are_filled_without_isolation_marks() {
        let text = T::new(Locale::En).arg("service-cancel-by", "date", "2027-03-03");
        assert_eq!(text, "Cancel by 2027-03-03 to avoid the next charge.");
    }
}
