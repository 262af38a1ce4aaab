//! What the store's statements over many rows share: their parameters'
//! placeholders and how many rows one statement takes.

use sqlx::Any;
use sqlx::any::AnyArguments;

use crate::StoreResult;
use crate::engine::Engine;

/// Rows per multi-row statement: well within both engines' limits on bound
/// parameters (SQLite 32,766, PostgreSQL 65,535) at the widest row (20).
pub(crate) const ROWS_PER_STATEMENT: usize = 500;

/// A statement with its parameters bound.
pub(crate) type Query = sqlx::query::Query<'static, Any, AnyArguments>;

/// A statement over `rows` tuples of `width` parameters each, bound in
/// order: `$1, $2, …` on PostgreSQL; on SQLite anonymous `?`s, as a
/// numbered parameter is a name SQLite looks up by a scan of every
/// parameter's name at each bind (thousands of parameters made that the
/// largest cost of a multi-row statement).
pub(crate) fn tuples(engine: Engine, rows: usize, width: usize) -> String {
    let parameter = |n: usize| match engine {
        Engine::Sqlite => "?".to_owned(),
        Engine::Postgres => format!("${n}"),
    };
    let tuple = |row: usize| {
        let params: Vec<String> = (1..=width).map(|column| parameter(row * width + column)).collect();
        format!("({})", params.join(", "))
    };
    (0..rows).map(tuple).collect::<Vec<_>>().join(", ")
}

/// How many values a row of `columns` (a comma-separated list) takes.
pub(crate) const fn width(columns: &str) -> usize {
    let bytes = columns.as_bytes();
    let (mut count, mut i) = (1, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            count += 1;
        }
        i += 1;
    }
    count
}

/// Runs `sql(tuples)` for `rows`, `ROWS_PER_STATEMENT` at a time, each
/// row's `width` values bound by `bind`; returns the rows affected.
pub(crate) async fn each_chunk<T>(
    conn: &mut sqlx::AnyConnection,
    engine: Engine,
    rows: &[T],
    width: usize,
    sql: impl Fn(&str) -> String,
    bind: impl Fn(Query, &T) -> Query,
) -> StoreResult<u64> {
    let mut affected = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql(&tuples(engine, chunk.len(), width))));
        for row in chunk {
            query = bind(query, row);
        }
        affected += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}
