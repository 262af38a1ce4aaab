//! What protects requests rather than records: saved responses for
//! `Idempotency-Key` (the first request with a key claims it, its response
//! is saved, and a retry gets the saved response) and the count of failed
//! sign-ins per account.
//!
//! Saved responses are kept for the replay window only and name the family
//! they belong to, so that a deletion of its personal data takes them too;
//! a response that held a secret is saved without its body.

use baobao_domain::ids::FamilyId;
use jiff::Timestamp;

use crate::{IdempotentRequest, SavedResponse, Store, StoreResult, Tx, instant, micros, text};

tokio::task_local! {
    /// The Idempotency-Key a request runs under, for as long as its handler
    /// runs (`with_key`): the first transaction it commits marks the key
    /// `changed_at` in that same transaction, and a transaction that knows
    /// the request's answer saves it with the change (`Tx::save_request_answer`).
    static REQUEST_KEY: RequestKey;
}

/// Whose family's data a request's answer shows, asked when it is saved
/// (the caller is known only once the handler has authenticated it).
pub type AnswerOwner = Box<dyn Fn() -> Option<FamilyId> + Send + Sync>;

struct RequestKey {
    scope: String,
    key: String,
    /// When the request was received (the server's wall clock).
    now: Timestamp,
    /// A commit of this request has marked the key: later ones need not.
    marked: std::sync::atomic::AtomicBool,
    owner: AnswerOwner,
    /// The answer a committed transaction of the request saved with its change.
    answered: std::sync::Mutex<Option<SavedResponse>>,
}

/// Runs a request's handler under its Idempotency-Key, received at `now`
/// (the server's wall clock): whatever it commits marks the key as changed,
/// atomically with the change itself. Returns the handler's output and the
/// answer a committed transaction saved for it, if one did.
pub async fn with_key<F: std::future::Future>(
    scope: String,
    key: String,
    now: Timestamp,
    owner: AnswerOwner,
    handler: F,
) -> (F::Output, Option<SavedResponse>) {
    let marked = std::sync::atomic::AtomicBool::new(false);
    let request = RequestKey { scope, key, now, marked, owner, answered: Default::default() };
    REQUEST_KEY
        .scope(request, async {
            let output = handler.await;
            let answered = REQUEST_KEY
                .try_with(|request| request.answered.lock().unwrap_or_else(|p| p.into_inner()).take())
                .ok()
                .flatten();
            (output, answered)
        })
        .await
}

/// Whether the running task serves a request under an Idempotency-Key
/// (so that an answer is worth saving with the change).
pub fn under_key() -> bool {
    REQUEST_KEY.try_with(|_| ()).is_ok()
}

/// Told after a commit that marked the request's key (`Tx::mark_request_changed`).
pub(crate) fn request_marked() {
    let _ = REQUEST_KEY.try_with(|request| request.marked.store(true, std::sync::atomic::Ordering::Relaxed));
}

/// Told after a commit that saved the request's answer (`Tx::save_request_answer`).
pub(crate) fn request_answered(answer: SavedResponse) {
    let _ = REQUEST_KEY.try_with(|request| *request.answered.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer));
}

impl Tx {
    /// Marks the key of the request this transaction serves (if it runs
    /// under one, and no earlier commit of it did) as changed, in this
    /// transaction; whether it did, to be told `request_marked` once the
    /// transaction has committed.
    pub(crate) async fn mark_request_changed(&mut self) -> StoreResult<bool> {
        let Ok(Some((scope, key, now))) = REQUEST_KEY.try_with(|request| {
            let marked = request.marked.load(std::sync::atomic::Ordering::Relaxed);
            (!marked).then(|| (request.scope.clone(), request.key.clone(), request.now))
        }) else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE idempotency_keys SET changed_at = $3 \
             WHERE scope = $1 AND idempotency_key = $2 AND response_status IS NULL AND changed_at IS NULL",
        )
        .bind(scope)
        .bind(key)
        .bind(micros(now))
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Saves `answer` as what the request this transaction serves answers
    /// (nothing when it runs under no Idempotency-Key): committed with the
    /// change it reports, so that a crash after the commit still leaves
    /// the client's retry the original answer, never a second run.
    pub async fn save_request_answer(&mut self, answer: SavedResponse) -> StoreResult<()> {
        let Ok((scope, key, family_id)) =
            REQUEST_KEY.try_with(|request| (request.scope.clone(), request.key.clone(), (request.owner)()))
        else {
            return Ok(());
        };
        save_response(&mut *self.tx, &scope, &key, &answer, family_id.as_ref()).await?;
        self.answer = Some(answer);
        Ok(())
    }
}

/// Writes what a retry under `(scope, key)` will get, and whose family's
/// data it shows.
async fn save_response<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    executor: E,
    scope: &str,
    key: &str,
    response: &SavedResponse,
    family_id: Option<&FamilyId>,
) -> StoreResult<()> {
    let (status, body) = match response {
        SavedResponse::Replayable { status, body } => (*status, Some(body.as_str())),
        SavedResponse::Withheld { status } => (*status, None),
    };
    sqlx::query(
        "UPDATE idempotency_keys SET response_status = $3, response_body = $4, family_id = $5 \
         WHERE scope = $1 AND idempotency_key = $2",
    )
    .bind(scope)
    .bind(key)
    .bind(i64::from(status))
    .bind(body)
    .bind(family_id.map(|f| f.as_str().to_owned()))
    .execute(executor)
    .await?;
    Ok(())
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// This request holds the key now and must save its response.
    Claimed,
    /// The key was used before.
    Existing(IdempotentRequest),
}

impl Store {
    /// Claims `(scope, key)` for a request whose body hashes to
    /// `request_sha256`, or returns what is stored under it. A key last
    /// claimed before `expired_before` is past the replay window and is
    /// claimed afresh, as if it had never been used.
    #[allow(clippy::too_many_arguments)] // one claim: each is a different fact of it
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_sha256: &str,
        now: Timestamp,
        expired_before: Timestamp,
        claimed_by: &str,
    ) -> StoreResult<Claim> {
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idempotency_key, request_sha256, created_at, claimed_by) \
             VALUES ($1, $2, $3, $4, $6) \
             ON CONFLICT (scope, idempotency_key) DO UPDATE SET request_sha256 = excluded.request_sha256, \
             created_at = excluded.created_at, response_status = NULL, response_body = NULL, family_id = NULL, \
             claimed_by = excluded.claimed_by, changed_at = NULL \
             WHERE idempotency_keys.created_at < $5",
        )
        .bind(scope)
        .bind(key)
        .bind(request_sha256)
        .bind(micros(now))
        .bind(micros(expired_before))
        .bind(claimed_by)
        .execute(&self.writes)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Claim::Claimed);
        }
        let row = sqlx::query(
            "SELECT request_sha256, response_status, response_body, created_at, claimed_by, changed_at \
             FROM idempotency_keys \
             WHERE scope = $1 AND idempotency_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_one(&self.writes)
        .await?;
        let status: Option<i64> = sqlx::Row::try_get(&row, "response_status")?;
        let body: Option<String> = sqlx::Row::try_get(&row, "response_body")?;
        let response = status.map(|status| {
            let status = u16::try_from(status).unwrap_or(500);
            match body {
                Some(body) => SavedResponse::Replayable { status, body },
                None => SavedResponse::Withheld { status },
            }
        });
        Ok(Claim::Existing(IdempotentRequest {
            request_sha256: text(&row, "request_sha256")?,
            response,
            created_at: instant(&row, "created_at")?,
            claimed_by: sqlx::Row::try_get(&row, "claimed_by")?,
            changed_at: crate::optional_instant(&row, "changed_at")?,
        }))
    }

    /// Saves what a retry will get, and whose family's data it shows.
    pub async fn save_idempotent_response(
        &self,
        scope: &str,
        key: &str,
        response: &SavedResponse,
        family_id: Option<&FamilyId>,
    ) -> StoreResult<()> {
        save_response(&self.writes, scope, key, response, family_id).await
    }

    /// Frees a key whose request ended without a response worth replaying
    /// (a server error, or a crash detected later), so a retry runs again.
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2 AND response_status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// This process is alive at `now` (its heartbeat; the first one names it).
    pub async fn process_seen(&self, process_id: &str, now: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO server_processes (id, started_at, seen_at) VALUES ($1, $2, $2) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
        )
        .bind(process_id)
        .bind(micros(now))
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    /// Whether the process beat at or after `alive_after`.
    pub async fn process_alive(&self, process_id: &str, alive_after: Timestamp) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS alive FROM server_processes WHERE id = $1 AND seen_at >= $2")
            .bind(process_id)
            .bind(micros(alive_after))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Forgets processes that stopped beating before `before`.
    pub async fn prune_processes(&self, before: Timestamp) -> StoreResult<u64> {
        let pruned = sqlx::query("DELETE FROM server_processes WHERE seen_at < $1")
            .bind(micros(before))
            .execute(&self.writes)
            .await?;
        Ok(pruned.rows_affected())
    }

    /// Forgets saved responses claimed before `before`, and failed sign-ins
    /// whose window began before `login_window_before`; the rows removed.
    pub async fn prune_request_records(&self, before: Timestamp, login_window_before: Timestamp) -> StoreResult<u64> {
        let responses = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(micros(before))
            .execute(&self.writes)
            .await?;
        let logins = sqlx::query("DELETE FROM login_failures WHERE window_start < $1")
            .bind(micros(login_window_before))
            .execute(&self.writes)
            .await?;
        Ok(responses.rows_affected() + logins.rows_affected())
    }

    /// Failed sign-ins of the account since its window began at the returned instant.
    pub async fn login_failures(&self, account_sha256: &str) -> StoreResult<Option<(i64, Timestamp)>> {
        let row = sqlx::query("SELECT failures, window_start FROM login_failures WHERE account_sha256 = $1")
            .bind(account_sha256)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((crate::integer(&row, "failures")?, instant(&row, "window_start")?))).transpose()
    }

    /// Counts one failed sign-in; a window that began before
    /// `window_expired_before` starts again at `now` with this failure.
    pub async fn record_login_failure(
        &self,
        account_sha256: &str,
        now: Timestamp,
        window_expired_before: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_failures (account_sha256, failures, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (account_sha256) DO UPDATE SET \
             failures = CASE WHEN login_failures.window_start < $3 THEN 1 ELSE login_failures.failures + 1 END, \
             window_start = CASE WHEN login_failures.window_start < $3 THEN $2 ELSE login_failures.window_start END",
        )
        .bind(account_sha256)
        .bind(micros(now))
        .bind(micros(window_expired_before))
        .execute(&self.writes)
        .await?;
        Ok(())
    }

    pub async fn clear_login_failures(&self, account_sha256: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM login_failures WHERE account_sha256 = $1")
            .bind(account_sha256)
            .execute(&self.writes)
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Every saved response that shows the family's data: those its own
    /// guardians received, and any other that names it (a staff member's
    /// answer about the family). Part of deleting its personal data.
    pub async fn delete_saved_responses_of(&mut self, family_id: &FamilyId) -> StoreResult<u64> {
        let deleted =
            sqlx::query("DELETE FROM idempotency_keys WHERE family_id = $1 OR response_body LIKE '%' || $1 || '%'")
                .bind(family_id.as_str())
                .execute(&mut *self.tx)
                .await?;
        Ok(deleted.rows_affected())
    }
}
