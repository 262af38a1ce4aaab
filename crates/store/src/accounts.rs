//! Families, guardians, children, staff and login sessions.

use baobao_domain::Locale;
use baobao_domain::ids::{FamilyId, GuardianId, StaffId};
use baobao_domain::roles::Role;
use jiff::Timestamp;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{
    Child, Engine, Family, Guardian, PrincipalKind, Session, Staff, Store, StoreError, StoreResult, Tx, id, instant,
    micros, named, text,
};

fn guardian(row: &AnyRow) -> StoreResult<Guardian> {
    Ok(Guardian {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        email: text(row, "email")?,
        password_hash: text(row, "password_hash")?,
        name: text(row, "name")?,
        phone: row.try_get("phone")?,
        locale: named(row, "locale", Locale::parse)?,
        time_zone: text(row, "time_zone")?,
        created_at: instant(row, "created_at")?,
    })
}

/// A phone number's digits alone.
fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

/// Digits a support agent typed that mean a phone number (at least four,
/// with only a phone number's punctuation around them), as a LIKE pattern.
fn phone_search(query: &str) -> Option<String> {
    let punctuation_only = query.chars().all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')' | '+'));
    let wanted = digits(query);
    (punctuation_only && wanted.len() >= PHONE_SEARCH_DIGITS_MIN).then(|| format!("%{wanted}%"))
}

/// Fewer digits than this match too many numbers to be a search.
pub const PHONE_SEARCH_DIGITS_MIN: usize = 4;

fn staff(row: &AnyRow) -> StoreResult<Staff> {
    Ok(Staff {
        id: id(row, "id")?,
        email: text(row, "email")?,
        password_hash: text(row, "password_hash")?,
        role: named(row, "role", Role::parse)?,
        created_at: instant(row, "created_at")?,
    })
}

fn child(row: &AnyRow) -> StoreResult<Child> {
    Ok(Child {
        id: id(row, "id")?,
        family_id: id(row, "family_id")?,
        name: text(row, "name")?,
        birth_date: text(row, "birth_date")?,
        consent_by: id(row, "consent_by")?,
        consent_at: instant(row, "consent_at")?,
        created_at: instant(row, "created_at")?,
    })
}

const GUARDIAN_COLUMNS: &str = "id, family_id, email, password_hash, name, phone, locale, time_zone, created_at";

/// `family`, read by the pool or inside a transaction.
async fn fetch_family<'e, E>(executor: E, family_id: &FamilyId) -> StoreResult<Family>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query("SELECT id, time_zone, created_at FROM families WHERE id = $1")
        .bind(family_id.as_str())
        .fetch_one(executor)
        .await?;
    Ok(Family { id: id(&row, "id")?, time_zone: text(&row, "time_zone")?, created_at: instant(&row, "created_at")? })
}

/// `guardians_of`, read by the pool or inside a transaction.
async fn fetch_guardians_of<'e, E>(executor: E, family_id: &FamilyId) -> StoreResult<Vec<Guardian>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GUARDIAN_COLUMNS} FROM guardians WHERE family_id = $1 ORDER BY created_at, id"
    )))
    .bind(family_id.as_str())
    .fetch_all(executor)
    .await?;
    rows.iter().map(guardian).collect()
}

/// The guardians of every family in `families`, in `guardians_of`'s order
/// within each family.
pub(crate) async fn fetch_guardians_of_families(
    engine: Engine,
    tx: &mut sqlx::AnyConnection,
    families: &[&str],
) -> StoreResult<Vec<Guardian>> {
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {GUARDIAN_COLUMNS} FROM guardians WHERE family_id IN {} ORDER BY family_id, created_at, id",
        crate::sql::tuples(engine, 1, families.len())
    )));
    for family in families {
        query = query.bind(*family);
    }
    query.fetch_all(tx).await?.iter().map(guardian).collect()
}

impl Tx {
    pub async fn insert_family(&mut self, family: &Family) -> StoreResult<()> {
        sqlx::query("INSERT INTO families (id, time_zone, created_at) VALUES ($1, $2, $3)")
            .bind(family.id.as_str())
            .bind(&family.time_zone)
            .bind(micros(family.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Fails with `Conflict` when the email is taken.
    pub async fn insert_guardian(&mut self, guardian: &Guardian) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO guardians (id, family_id, email, password_hash, name, locale, time_zone, created_at, phone, \
             phone_digits) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(guardian.id.as_str())
        .bind(guardian.family_id.as_str())
        .bind(&guardian.email)
        .bind(&guardian.password_hash)
        .bind(&guardian.name)
        .bind(guardian.locale.tag())
        .bind(&guardian.time_zone)
        .bind(micros(guardian.created_at))
        .bind(guardian.phone.clone())
        .bind(guardian.phone.as_deref().map(digits))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_child(&mut self, child: &Child) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO children (id, family_id, name, birth_date, consent_by, consent_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(child.id.as_str())
        .bind(child.family_id.as_str())
        .bind(&child.name)
        .bind(&child.birth_date)
        .bind(child.consent_by.as_str())
        .bind(micros(child.consent_at))
        .bind(micros(child.created_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn insert_staff(&mut self, staff: &Staff) -> StoreResult<()> {
        sqlx::query("INSERT INTO staff (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(staff.id.as_str())
            .bind(&staff.email)
            .bind(&staff.password_hash)
            .bind(staff.role.as_str())
            .bind(micros(staff.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn insert_session(
        &mut self,
        token_sha256: &str,
        kind: PrincipalKind,
        principal_id: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (token_sha256, principal_kind, principal_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_sha256)
        .bind(kind.as_str())
        .bind(principal_id)
        .bind(micros(created_at))
        .bind(micros(expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn set_guardian_locale(&mut self, guardian_id: &GuardianId, locale: &str) -> StoreResult<()> {
        sqlx::query("UPDATE guardians SET locale = $2 WHERE id = $1")
            .bind(guardian_id.as_str())
            .bind(locale)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&mut self, token_sha256: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = $1").bind(token_sha256).execute(&mut *self.tx).await?;
        Ok(())
    }
}

impl Store {
    pub async fn family(&self, family_id: &FamilyId) -> StoreResult<Family> {
        fetch_family(&self.pool, family_id).await
    }

    pub async fn guardian_by_email(&self, email: &str) -> StoreResult<Guardian> {
        let row =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GUARDIAN_COLUMNS} FROM guardians WHERE email = $1")))
                .bind(email)
                .fetch_one(&self.pool)
                .await?;
        guardian(&row)
    }

    pub async fn guardian(&self, guardian_id: &GuardianId) -> StoreResult<Guardian> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {GUARDIAN_COLUMNS} FROM guardians WHERE id = $1")))
            .bind(guardian_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        guardian(&row)
    }

    /// The guardians of a family, oldest first (the first is the primary contact).
    pub async fn guardians_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Guardian>> {
        fetch_guardians_of(&self.pool, family_id).await
    }

    pub async fn children_of(&self, family_id: &FamilyId) -> StoreResult<Vec<Child>> {
        let rows = sqlx::query(
            "SELECT id, family_id, name, birth_date, consent_by, consent_at, created_at FROM children \
             WHERE family_id = $1 ORDER BY created_at, id",
        )
        .bind(family_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(child).collect()
    }

    pub async fn staff_by_email(&self, email: &str) -> StoreResult<Staff> {
        let row = sqlx::query("SELECT id, email, password_hash, role, created_at FROM staff WHERE email = $1")
            .bind(email)
            .fetch_one(&self.pool)
            .await?;
        staff(&row)
    }

    pub async fn staff(&self, staff_id: &StaffId) -> StoreResult<Staff> {
        let row = sqlx::query("SELECT id, email, password_hash, role, created_at FROM staff WHERE id = $1")
            .bind(staff_id.as_str())
            .fetch_one(&self.pool)
            .await?;
        staff(&row)
    }

    /// The live session for a token hash, if it has not expired at `now`.
    pub async fn session(&self, token_sha256: &str, now: Timestamp) -> StoreResult<Session> {
        let row = sqlx::query(
            "SELECT principal_kind, principal_id, expires_at FROM sessions WHERE token_sha256 = $1 AND expires_at > $2",
        )
        .bind(token_sha256)
        .bind(micros(now))
        .fetch_one(&self.pool)
        .await?;
        let principal_kind = match text(&row, "principal_kind")?.as_str() {
            "guardian" => PrincipalKind::Guardian,
            "staff" => PrincipalKind::Staff,
            other => return Err(StoreError::Corrupt(format!("principal kind {other}"))),
        };
        Ok(Session {
            principal_kind,
            principal_id: text(&row, "principal_id")?,
            expires_at: instant(&row, "expires_at")?,
        })
    }
}

/// A one-time code's state, for checking one the guardian read out.
#[derive(Clone, Debug)]
pub struct VerificationCode {
    pub id: String,
    pub code_sha256: String,
    pub attempts: i64,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

impl Tx {
    pub async fn insert_verification_code(
        &mut self,
        id: &str,
        family_id: &FamilyId,
        code_sha256: &str,
        requested_by: &str,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO verification_codes (id, family_id, code_sha256, requested_by, attempts, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
        )
        .bind(id)
        .bind(family_id.as_str())
        .bind(code_sha256)
        .bind(requested_by)
        .bind(micros(created_at))
        .bind(micros(expires_at))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// The family's newest code, locked for this transaction.
    pub async fn latest_verification_code(&mut self, family_id: &FamilyId) -> StoreResult<Option<VerificationCode>> {
        let row = sqlx::query(
            "SELECT id, code_sha256, attempts, expires_at, used_at FROM verification_codes WHERE family_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(family_id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.map(|r| {
            Ok(VerificationCode {
                id: text(&r, "id")?,
                code_sha256: text(&r, "code_sha256")?,
                attempts: crate::integer(&r, "attempts")?,
                expires_at: instant(&r, "expires_at")?,
                used_at: crate::optional_instant(&r, "used_at")?,
            })
        })
        .transpose()
    }

    /// Records one wrong try (spending a code is `spend_verification_code`).
    pub async fn record_code_attempt(&mut self, id: &str) -> StoreResult<()> {
        sqlx::query("UPDATE verification_codes SET attempts = attempts + 1 WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// How many codes were sent to the family since `since` (rate limit).
    pub async fn codes_sent_since(&mut self, family_id: &FamilyId, since: Timestamp) -> StoreResult<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM verification_codes WHERE family_id = $1 AND created_at >= $2")
            .bind(family_id.as_str())
            .bind(micros(since))
            .fetch_one(&mut *self.tx)
            .await?;
        crate::integer(&row, "n")
    }
}

impl Store {
    /// Families a support agent may mean by `query`: a family id, a receipt
    /// id or number (found even after the family's personal data was
    /// deleted: receipts are kept), or part of a guardian's email, name or
    /// phone number (its digits, however either was written: `138 0013`
    /// finds `+86 138-0013-8000`). At most `limit`, oldest family first.
    pub async fn search_families(&self, query: &str, limit: u32) -> StoreResult<Vec<FamilyId>> {
        let rows = if query.starts_with("fam_") {
            sqlx::query("SELECT id AS family_id FROM families WHERE id = $1").bind(query).fetch_all(&self.pool).await?
        } else if query.starts_with("rcp_") || query.to_ascii_uppercase().starts_with("BB-") {
            sqlx::query("SELECT DISTINCT family_id FROM receipts WHERE id = $1 OR number = $2")
                .bind(query)
                .bind(query.to_ascii_uppercase())
                .fetch_all(&self.pool)
                .await?
        } else {
            let escaped = query.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            sqlx::query(
                "SELECT g.family_id, MIN(f.created_at) AS since FROM guardians g JOIN families f ON f.id = g.family_id \
                 WHERE LOWER(g.email) LIKE $1 ESCAPE '\\' OR LOWER(g.name) LIKE $1 ESCAPE '\\' \
                 OR g.phone_digits LIKE $3 \
                 GROUP BY g.family_id ORDER BY since, g.family_id LIMIT $2",
            )
            .bind(format!("%{escaped}%"))
            .bind(i64::from(limit))
            .bind(phone_search(query))
            .fetch_all(&self.pool)
            .await?
        };
        rows.iter().map(|r| id(r, "family_id")).collect()
    }

    pub async fn family_by_guardian_email(&self, email: &str) -> StoreResult<Option<FamilyId>> {
        let row = sqlx::query("SELECT family_id FROM guardians WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| id(&r, "family_id")).transpose()
    }
}

/// Reads inside a transaction: they see its own writes and take no other connection.
impl Tx {
    pub async fn family(&mut self, family_id: &FamilyId) -> StoreResult<Family> {
        fetch_family(&mut *self.tx, family_id).await
    }

    /// The guardians of a family, oldest first (the first is the primary contact).
    /// In a batch, read once (`read_guardians_of` reads a batch's families at once).
    pub async fn guardians_of(&mut self, family_id: &FamilyId) -> StoreResult<Vec<Guardian>> {
        if let Some(known) = self.batch.as_ref().and_then(|b| b.guardians.get(family_id.as_str())) {
            return Ok(known.clone());
        }
        let guardians = fetch_guardians_of(&mut *self.tx, family_id).await?;
        if let Some(batch) = &mut self.batch {
            batch.guardians.insert(family_id.as_str().to_owned(), guardians.clone());
        }
        Ok(guardians)
    }
}
