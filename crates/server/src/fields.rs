//! The caller's short texts checked by the domain's rules
//! (`baobao_domain::text`); a refusal names the field it was in.

use baobao_domain::text::{Phone, REASON_CATEGORIES};
use baobao_domain::{BirthDate, EmailAddress, Name, Reason, ServiceName, TextError};

use crate::error::{ApiError, ApiResult};

fn refused(field: &str, error: TextError) -> ApiError {
    match error {
        TextError::Email => ApiError::invalid_field(field, "email"),
        TextError::CharsBetween { min, max } => {
            ApiError::invalid_field(field, "chars_between").with("min", min).with("max", max)
        }
        TextError::ServiceName => ApiError::invalid_field(field, "service_name"),
        TextError::Date => ApiError::invalid_field(field, "date"),
        TextError::BirthDateRange => ApiError::invalid_field(field, "birth_date_range"),
        TextError::ReasonCategory => {
            ApiError::invalid_field(field, "one_of").with("allowed", REASON_CATEGORIES.join(", "))
        }
        TextError::CharsMax { max } => ApiError::invalid_field(field, "chars_max").with("max", max),
        TextError::Phone => ApiError::invalid_field(field, "phone"),
    }
}

/// A phone number, in field `field`: as written, and its digits.
pub fn parse_phone(field: &str, phone: &str) -> ApiResult<Phone> {
    Phone::parse(phone).map_err(|e| refused(field, e))
}

/// An email address, trimmed and lower-cased.
pub fn parse_email(email: &str) -> ApiResult<String> {
    EmailAddress::parse(email).map(EmailAddress::into_string).map_err(|e| refused("email", e))
}

/// A name in field `field` (`name`, `name.en`, …), trimmed.
pub fn parse_name(field: &str, name: &str) -> ApiResult<String> {
    Name::parse(name).map(Name::into_string).map_err(|e| refused(field, e))
}

/// An integrator's service name, in field `service`.
pub fn parse_service(service: &str) -> ApiResult<String> {
    ServiceName::parse(service).map(ServiceName::into_string).map_err(|e| refused("service", e))
}

/// A child's date of birth, in field `birth_date`, checked against `today`.
pub fn parse_birth_date(text: &str, today: jiff::civil::Date) -> ApiResult<BirthDate> {
    BirthDate::parse(text, today).map_err(|e| refused("birth_date", e))
}

/// A cancellation reason: its category in `reason.category`, its words in
/// `reason.text`.
pub fn parse_reason(category: &str, text: Option<&str>) -> ApiResult<Reason> {
    Reason::parse(category, text).map_err(|e| match e {
        TextError::ReasonCategory => refused("reason.category", e),
        other => refused("reason.text", other),
    })
}
