//! A file handed to the reader as a download (a CSV, a ZIP, an evidence
//! file), for the API and the pages alike: its type, `attachment` with its
//! name, and never sniffed as another type.

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const CSV: &str = "text/csv; charset=utf-8";
pub const ZIP: &str = "application/zip";

/// `bytes` as a download named `file_name` (ASCII: ids, dates, numbers).
pub fn attachment(content_type: &str, file_name: &str, bytes: impl Into<axum::body::Body>) -> Response {
    debug_assert!(file_name.bytes().all(|b| b.is_ascii_graphic() && b != b'"'), "{file_name}");
    let disposition = format!("attachment; filename=\"{file_name}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        ],
        bytes.into(),
    )
        .into_response()
}
