//! The rules of baobao, as pure functions over plain values.
//!
//! Money, calendar periods in the family's time zone, the versioned policy
//! (the machine-readable terms of a plan), the subscription lifecycle, the
//! cancellation quote and the canonical bodies of signed receipts live here.
//! Nothing in this crate reads a clock, touches a database or does I/O:
//! everything it needs, the current instant included, is passed in. The
//! server and the store call these functions; they never re-implement a rule.

pub mod audit;
pub mod calendar;
pub mod canonical;
pub mod dispute;
pub mod ids;
pub mod ledger;
pub mod locale;
pub mod merkle;
pub mod money;
pub mod policy;
pub mod quote;
pub mod receipt;
pub mod roles;
pub mod subscription;
pub mod text;

pub use calendar::{Calendar, CalendarError, PeriodLength};
pub use ids::Id;
pub use locale::Locale;
pub use money::{Currency, Money, MoneyError};
pub use policy::{Policy, PolicyDraft, PolicyError};
pub use quote::{CancelOption, Quote, QuoteInput, QuoteOption};
pub use subscription::SubscriptionStatus;
pub use text::{BirthDate, EmailAddress, Name, Reason, ServiceName, TextError};
