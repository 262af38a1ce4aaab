//! Plans and the versions of their policies. A policy version, once
//! written, is never changed: a new version is a new row.

use baobao_domain::ids::PlanId;
use baobao_domain::policy::Policy;
use sqlx::any::AnyRow;

use crate::{Plan, PolicyVersion, Store, StoreError, StoreResult, Tx, id, instant, integer, micros, text};

fn plan(row: &AnyRow) -> StoreResult<Plan> {
    Ok(Plan {
        id: id(row, "id")?,
        service: text(row, "service")?,
        name_zh_cn: text(row, "name_zh_cn")?,
        name_en: text(row, "name_en")?,
        current_version: integer(row, "current_version")?,
        created_at: instant(row, "created_at")?,
    })
}

fn policy(row: &AnyRow) -> StoreResult<PolicyVersion> {
    Ok(PolicyVersion {
        plan_id: id(row, "plan_id")?,
        version: integer(row, "version")?,
        sha256: text(row, "sha256")?,
        policy: serde_json::from_str(&text(row, "terms")?)
            .map_err(|e| StoreError::Corrupt(format!("policy terms: {e}")))?,
        created_at: instant(row, "created_at")?,
    })
}

/// `plan`, read by the pool or inside a transaction.
async fn fetch_plan<'e, E>(executor: E, plan_id: &PlanId) -> StoreResult<Plan>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row =
        sqlx::query("SELECT id, service, name_zh_cn, name_en, current_version, created_at FROM plans WHERE id = $1")
            .bind(plan_id.as_str())
            .fetch_one(executor)
            .await?;
    plan(&row)
}

/// `policy`, read by the pool or inside a transaction.
async fn fetch_policy<'e, E>(executor: E, plan_id: &PlanId, version: i64) -> StoreResult<PolicyVersion>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT plan_id, version, sha256, terms, created_at FROM policies WHERE plan_id = $1 AND version = $2",
    )
    .bind(plan_id.as_str())
    .bind(version)
    .fetch_one(executor)
    .await?;
    policy(&row)
}

impl Tx {
    /// A new plan with its first policy version.
    pub async fn insert_plan(&mut self, plan: &Plan, first: &PolicyVersion) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO plans (id, service, name_zh_cn, name_en, current_version, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(plan.id.as_str())
        .bind(&plan.service)
        .bind(&plan.name_zh_cn)
        .bind(&plan.name_en)
        .bind(first.version)
        .bind(micros(plan.created_at))
        .execute(&mut *self.tx)
        .await?;
        self.insert_policy(first).await
    }

    async fn insert_policy(&mut self, policy: &PolicyVersion) -> StoreResult<()> {
        sqlx::query("INSERT INTO policies (plan_id, version, sha256, terms, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(policy.plan_id.as_str())
            .bind(policy.version)
            .bind(&policy.sha256)
            .bind(serde_json::to_string(&policy.policy).map_err(|e| StoreError::Corrupt(format!("policy terms: {e}")))?)
            .bind(micros(policy.created_at))
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Publishes the next version of a plan's policy and makes it current.
    /// The version number is taken under the plan's row lock, so two admins
    /// publishing at once get two versions, never one overwritten.
    pub async fn publish_policy(
        &mut self,
        plan_id: &PlanId,
        policy: &Policy,
        at: jiff::Timestamp,
    ) -> StoreResult<PolicyVersion> {
        let row = sqlx::query(
            "UPDATE plans SET current_version = current_version + 1 WHERE id = $1 RETURNING current_version",
        )
        .bind(plan_id.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        let version = integer(&row, "current_version")?;
        let published = PolicyVersion {
            plan_id: plan_id.clone(),
            version,
            sha256: policy.sha256(),
            policy: policy.clone(),
            created_at: at,
        };
        self.insert_policy(&published).await?;
        Ok(published)
    }
}

impl Store {
    pub async fn plans(&self) -> StoreResult<Vec<Plan>> {
        let rows = sqlx::query(
            "SELECT id, service, name_zh_cn, name_en, current_version, created_at FROM plans ORDER BY service, created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(plan).collect()
    }

    pub async fn plan(&self, plan_id: &PlanId) -> StoreResult<Plan> {
        fetch_plan(&self.pool, plan_id).await
    }

    pub async fn policy(&self, plan_id: &PlanId, version: i64) -> StoreResult<PolicyVersion> {
        fetch_policy(&self.pool, plan_id, version).await
    }
}

/// Reads inside a transaction: they see its own writes and take no other connection.
impl Tx {
    /// In a batch, read once.
    pub async fn plan(&mut self, plan_id: &PlanId) -> StoreResult<Plan> {
        if let Some(known) = self.batch.as_ref().and_then(|b| b.plans.get(plan_id.as_str())) {
            return Ok(known.clone());
        }
        let plan = fetch_plan(&mut *self.tx, plan_id).await?;
        if let Some(batch) = &mut self.batch {
            batch.plans.insert(plan_id.as_str().to_owned(), plan.clone());
        }
        Ok(plan)
    }

    /// In a batch, read once (a version never changes once published).
    pub async fn policy(&mut self, plan_id: &PlanId, version: i64) -> StoreResult<PolicyVersion> {
        let key = (plan_id.as_str().to_owned(), version);
        if let Some(known) = self.batch.as_ref().and_then(|b| b.policies.get(&key)) {
            return Ok(known.clone());
        }
        let policy = fetch_policy(&mut *self.tx, plan_id, version).await?;
        if let Some(batch) = &mut self.batch {
            batch.policies.insert(key, policy.clone());
        }
        Ok(policy)
    }
}
