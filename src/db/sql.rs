//! Hand-written statements for both stores: [`Sql`].
//!
//! diesel's query builder writes most of walkie's queries for either
//! backend, but not `INSERT ... ON CONFLICT` across backends, nor the
//! correlated sub-queries of the read state. Those are written here as SQL
//! that SQLite and Postgres read the same, with parameters bound by the
//! backend's own placeholders (`?` or `$1`). Each connection keeps each
//! statement prepared, keyed by its text.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

use super::connection::{AnyBackend, AnyConnection};

/// A statement: SQL text with parameters in between, in order.
///
/// ```text
/// Sql::new("DELETE FROM pending_mentions WHERE recipient = ").text("bob")
/// Sql::new("INSERT INTO rooms (name, created_at) VALUES ").row([Text(name), Text(now)])
/// ```
///
/// Run it with diesel's `execute`, or `load` rows that derive
/// `QueryableByName`.
#[derive(Debug, Clone)]
pub struct Sql<'a> {
    parts: Vec<Part<'a>>,
}

#[derive(Debug, Clone)]
enum Part<'a> {
    Sql(&'static str),
    Value(Value<'a>),
}

/// A parameter of a statement.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// `TEXT`.
    Text(&'a str),
    /// `TEXT` that may be `NULL`.
    NullableText(Option<&'a str>),
    /// `BIGINT`.
    BigInt(i64),
}

impl<'a> Sql<'a> {
    /// A statement beginning with `sql`.
    pub fn new(sql: &'static str) -> Self {
        Self { parts: vec![Part::Sql(sql)] }
    }

    /// More SQL text.
    pub fn sql(mut self, sql: &'static str) -> Self {
        self.parts.push(Part::Sql(sql));
        self
    }

    /// A `TEXT` parameter.
    pub fn text(mut self, value: &'a str) -> Self {
        self.parts.push(Part::Value(Value::Text(value)));
        self
    }

    /// A row of parameters in parentheses, `(?, ?, ?)`, as an `INSERT`'s
    /// `VALUES` takes them.
    pub fn row(mut self, values: impl IntoIterator<Item = Value<'a>>) -> Self {
        self.parts.push(Part::Sql("("));
        for (n, value) in values.into_iter().enumerate() {
            if n > 0 {
                self.parts.push(Part::Sql(", "));
            }
            self.parts.push(Part::Value(value));
        }
        self.parts.push(Part::Sql(")"));
        self
    }
}

impl QueryFragment<AnyBackend> for Sql<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, AnyBackend>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Value(Value::Text(value)) => out.push_bind_param::<Text, _>(*value)?,
                Part::Value(Value::NullableText(value)) => {
                    out.push_bind_param::<Nullable<Text>, _>(value)?
                }
                Part::Value(Value::BigInt(value)) => out.push_bind_param::<BigInt, _>(value)?,
            }
        }
        Ok(())
    }
}

/// The statement's text is its identity (diesel caches it by text).
impl QueryId for Sql<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Sql<'_> {
    type SqlType = Untyped;
}

impl RunQueryDsl<AnyConnection> for Sql<'_> {}

/// Sizes a list of rows is cut into by [`execute_rows`], largest first:
/// each size is a statement text of its own, so a connection keeps at
/// most this many prepared per statement, and 512 rows are 8 statements.
pub const ROWS_PER_STATEMENT: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// Runs `before` + `(row), (row), ...` + `after` for all of `rows`, a few
/// statements rather than one per row (on Postgres each statement is a
/// round trip: docs/performance.md, "Postgres"); returns the rows affected
/// in all. For `INSERT ... VALUES`, and for `UPDATE ... FROM (VALUES ...)
/// AS v`, whose columns both stores name `v.column1`, `v.column2`...
pub fn execute_rows<const N: usize>(
    conn: &mut AnyConnection,
    before: &'static str,
    rows: &[[Value<'_>; N]],
    after: &'static str,
) -> QueryResult<usize> {
    let mut affected = 0;
    for statement in in_chunks(before, rows) {
        affected += statement.sql(after).execute(conn)?;
    }
    Ok(affected)
}

/// `before` + `(row), (row), ...` for `rows` cut into
/// [`ROWS_PER_STATEMENT`] sizes, in order, each statement to be finished
/// by the caller.
pub fn in_chunks<'a, const N: usize>(
    before: &'static str,
    rows: &'a [[Value<'a>; N]],
) -> impl Iterator<Item = Sql<'a>> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = ROWS_PER_STATEMENT.into_iter().find(|&n| n <= rest.len()).unwrap_or(1);
        let (chunk, later) = rest.split_at(size);
        rest = later;
        let mut statement = Sql::new(before);
        for (n, row) in chunk.iter().enumerate() {
            if n > 0 {
                statement = statement.sql(", ");
            }
            statement = statement.row(*row);
        }
        Some(statement)
    })
}
