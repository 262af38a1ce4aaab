//! The caller's short texts checked by the domain's rules
//! (`baobao_domain::text`); a refusal names the field it was in.

use baobao_domain::{EmailAddress, Name, ServiceName, TextError};

use crate::error::{ApiError, ApiResult};

fn refused(field: &str, error: TextError) -> ApiError {
    match error {
        TextError::Email => ApiError::invalid_field(field, "email"),
        TextError::CharsBetween { min, max } => {
            ApiError::invalid_field(field, "chars_between").with("min", min).with("max", max)
        }
        TextError::ServiceName => ApiError::invalid_field(field, "service_name"),
    }
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
