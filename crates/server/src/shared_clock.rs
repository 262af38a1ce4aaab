//! The simulated clock is one for every server on a database: before each
//! request, this server's clock catches up with the time any server set
//! (kept in the database, moved forward only). A request layer, apart from
//! `clock` (which knows nothing of the state or the store).

use crate::clock::SIMULATED_NOW_SETTING;

/// In simulated mode, before each request: this server's clock catches up
/// with the time any server set (one read of one settings row), so that
/// with several servers on one database the clock is one for all of them.
pub async fn follow(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if let Some(simulated) = state.clock.as_simulated() {
        match state.store.setting(SIMULATED_NOW_SETTING).await {
            Ok(Some(text)) => {
                if let Ok(now) = text.parse() {
                    simulated.catch_up(now);
                }
            }
            Ok(None) => {}
            // The request itself meets the database and says what is wrong.
            Err(error) => tracing::warn!(%error, "the shared simulated clock could not be read"),
        }
    }
    next.run(request).await
}
