//! Written notices: a letter or email asking to cancel, registered by an
//! agent with its evidence; the day it arrived is the day the request was
//! received.

use baobao_domain::calendar::Calendar;
use baobao_domain::ids::{FamilyId, WrittenNoticeId};
use baobao_domain::receipt::WrittenNoticeRef;
use baobao_store::{Tx, WrittenNotice};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{Caller, Role, STAFF_READERS};
use crate::error::{ApiError, ApiResult, internal};
use crate::state::AppState;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WrittenNoticeView {
    pub id: String,
    pub family_id: String,
    pub subscription_id: String,
    pub cancellation_id: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub sender: String,
    pub tracking_number: Option<String>,
    pub evidence_sha256: String,
    pub evidence_type: String,
    pub evidence_bytes: i64,
    /// Renewal charges refunded because the notice arrived before them.
    pub late_charges_refunded: i64,
    pub registered_by: String,
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: Timestamp,
}

impl From<&WrittenNotice> for WrittenNoticeView {
    fn from(n: &WrittenNotice) -> WrittenNoticeView {
        WrittenNoticeView {
            id: n.id.to_string(),
            family_id: n.family_id.to_string(),
            subscription_id: n.subscription_id.to_string(),
            cancellation_id: n.cancellation_id.to_string(),
            received_at: n.received_at,
            sender: n.sender.clone(),
            tracking_number: n.tracking_number.clone(),
            evidence_sha256: n.evidence_sha256.clone(),
            evidence_type: n.evidence_type.clone(),
            evidence_bytes: n.evidence_bytes,
            late_charges_refunded: n.late_charges_refunded,
            registered_by: n.registered_by.clone(),
            registered_at: n.registered_at,
        }
    }
}

/// A notice being registered, saved with its cancellation.
pub struct NoticeDraft {
    pub id: WrittenNoticeId,
    pub notice: WrittenNotice,
}

impl NoticeDraft {
    pub fn receipt_fields(&self) -> WrittenNoticeRef {
        WrittenNoticeRef {
            id: self.id.to_string(),
            received_at: self.notice.received_at,
            tracking_number: self.notice.tracking_number.clone(),
            evidence_sha256: self.notice.evidence_sha256.clone(),
            evidence_type: self.notice.evidence_type.clone(),
            evidence_bytes: self.notice.evidence_bytes,
        }
    }

    pub async fn save(
        &self,
        tx: &mut Tx,
        cancellation_id: &baobao_domain::ids::CancellationId,
        late_charges_refunded: usize,
    ) -> ApiResult<WrittenNotice> {
        let mut notice = self.notice.clone();
        notice.cancellation_id = cancellation_id.clone();
        notice.late_charges_refunded = i64::try_from(late_charges_refunded).unwrap_or(i64::MAX);
        tx.insert_written_notice(&notice).await?;
        Ok(notice)
    }
}

/// The instant a notice counts as received: the start of `received_on` in
/// the family's time zone, or the exact `received_at`; one of the two.
pub fn parse_received(
    received_on: Option<&str>,
    received_at: Option<&str>,
    calendar: &Calendar,
) -> ApiResult<Timestamp> {
    match (received_on, received_at) {
        (Some(day), None) => {
            let date: jiff::civil::Date = day.parse().map_err(|_| ApiError::invalid_field("received_on", "date"))?;
            calendar.start_of_date(date).map_err(|_| ApiError::invalid_field("received_on", "date"))
        }
        (None, Some(instant)) => {
            let instant: Timestamp =
                instant.parse().map_err(|_| ApiError::invalid_field("received_at", "rfc3339_instant"))?;
            // Kept to the microsecond, as it is stored: the answer, built
            // before the commit, shows what a later read shows.
            Ok(Timestamp::from_microsecond(instant.as_microsecond()).unwrap_or(instant))
        }
        _ => Err(ApiError::invalid_field("received_on", "received_on_or_at")),
    }
}

pub fn short_text(field: &str, text: Option<&str>, max: usize) -> ApiResult<Option<String>> {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    if text.is_some_and(|t| t.chars().count() > max || t.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field(field, "one_line_chars_max").with("max", max));
    }
    Ok(text.map(str::to_owned))
}

pub const SENDER_CHARS_MAX: usize = 200;
pub const TRACKING_CHARS_MAX: usize = 64;

/// The notices registered on one day of the support office (its time
/// zone), oldest first: the queue a supervisor checks.
pub async fn notices_registered_on(
    state: &AppState,
    caller: &Caller,
    day: Option<&str>,
) -> ApiResult<(jiff::civil::Date, Vec<WrittenNoticeView>)> {
    caller.require_staff(&[Role::Agent, Role::Supervisor, Role::Compliance, Role::Admin])?;
    let calendar = Calendar::new(&state.config.staff_time_zone).map_err(internal)?;
    let day: jiff::civil::Date = match day {
        Some(text) => text.parse().map_err(|_| ApiError::invalid_field("date", "date"))?,
        None => calendar.zoned(state.clock.now()).date(),
    };
    let start = calendar.start_of_date(day).map_err(internal)?;
    let end = calendar.start_of_date(day.tomorrow().map_err(internal)?).map_err(internal)?;
    let notices = state.store.written_notices_registered(start, end).await?;
    Ok((day, notices.iter().map(WrittenNoticeView::from).collect()))
}

/// A family's written notices, for staff who may read them.
pub async fn of_family(state: &AppState, caller: &Caller, family_id: &FamilyId) -> ApiResult<Vec<WrittenNotice>> {
    caller.require_family(family_id, STAFF_READERS, "family")?;
    Ok(state.store.written_notices_of(family_id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_received_at_is_kept_to_the_microsecond_as_it_is_stored() {
        let calendar = Calendar::new("Asia/Shanghai").unwrap();
        let received = parse_received(None, Some("2027-02-02T10:00:00.123456789Z"), &calendar).unwrap();
        assert_eq!(received.to_string(), "2027-02-02T10:00:00.123456Z");
        let day = parse_received(Some("2027-02-02"), None, &calendar).unwrap();
        assert_eq!(day.to_string(), "2027-02-01T16:00:00Z");
    }
}
