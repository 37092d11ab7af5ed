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
/// Sql::new("UPDATE rooms SET last_id = ").big_int(5).sql(" WHERE name = ").text("lobby")
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

    /// A `BIGINT` parameter.
    pub fn big_int(mut self, value: i64) -> Self {
        self.parts.push(Part::Value(Value::BigInt(value)));
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
