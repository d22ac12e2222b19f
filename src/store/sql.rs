//! The one statement text both backends run. Queries are written with `?` placeholders, as
//! SQLite takes them; PostgreSQL takes only `$1, $2, …`, which SQLite also understands, so every
//! statement is numbered here, in one place, before it reaches the driver.

use sqlx::any::{Any, AnyArguments, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValueRef};
use sqlx::error::BoxDynError;
use sqlx::query::{Query, QueryAs, QueryScalar};
use sqlx::{AssertSqlSafe, Execute as _, FromRow, QueryBuilder, SqlSafeStr};
use sqlx::{Decode, Type, ValueRef as _};

/// Which database a [`super::Store`] talks to. Where their SQL differs, the store matches on
/// this at the statement, so the difference stays beside the query it concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a connection (or a transaction on one) talks to.
    pub(crate) fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }

    /// Seconds since 1970, as a double, of an RFC 3339 text expression (or of `now`).
    pub(crate) fn epoch(self, text: &str) -> String {
        match (self, text) {
            (Backend::Sqlite, "now") => "((julianday('now') - 2440587.5) * 86400.0)".to_owned(),
            (Backend::Sqlite, _) => format!("((julianday({text}) - 2440587.5) * 86400.0)"),
            (Backend::Postgres, "now") => {
                "CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION)".to_owned()
            }
            // EXTRACT gives a numeric, which `Any` cannot read.
            (Backend::Postgres, _) => {
                format!("CAST(EXTRACT(EPOCH FROM CAST({text} AS TIMESTAMPTZ)) AS DOUBLE PRECISION)")
            }
        }
    }

    /// The column that orders a table's rows as inserted: SQLite's rowid; on PostgreSQL,
    /// which has none, the `seq` identity column such tables carry.
    pub(crate) fn insertion_order(self, alias: &str) -> String {
        match self {
            Backend::Sqlite => format!("{alias}.rowid"),
            Backend::Postgres => format!("{alias}.seq"),
        }
    }

    /// The larger of two values (SQLite's two-argument `max`).
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Backend::Sqlite => format!("max({a}, {b})"),
            Backend::Postgres => format!("GREATEST({a}, {b})"),
        }
    }
}

/// A yes/no column as either backend hands it back: SQLite stores 0 and 1 (and computes them
/// for `x IS NULL`), PostgreSQL has booleans, and `Any` decodes strictly by the value's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(flag: Flag) -> bool {
        flag.0
    }
}

impl Type<Any> for Flag {
    fn type_info() -> AnyTypeInfo {
        <bool as Type<Any>>::type_info()
    }

    fn compatible(ty: &AnyTypeInfo) -> bool {
        matches!(
            ty.kind(),
            AnyTypeInfoKind::Bool
                | AnyTypeInfoKind::SmallInt
                | AnyTypeInfoKind::Integer
                | AnyTypeInfoKind::BigInt
        )
    }
}

impl<'r> Decode<'r, Any> for Flag {
    fn decode(value: AnyValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.type_info().kind() == AnyTypeInfoKind::Bool {
            return Ok(Flag(<bool as Decode<Any>>::decode(value)?));
        }
        Ok(Flag(<i64 as Decode<Any>>::decode(value)? != 0))
    }
}

/// A statement, numbered for both backends.
pub(crate) fn query(sql: impl SqlSafeStr) -> Query<'static, Any, AnyArguments> {
    sqlx::query(AssertSqlSafe(numbered(sql.into_sql_str().as_str())))
}

pub(crate) fn query_as<O>(sql: impl SqlSafeStr) -> QueryAs<'static, Any, O, AnyArguments>
where
    O: for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_as(AssertSqlSafe(numbered(sql.into_sql_str().as_str())))
}

pub(crate) fn query_scalar<O>(sql: impl SqlSafeStr) -> QueryScalar<'static, Any, O, AnyArguments>
where
    (O,): for<'r> FromRow<'r, AnyRow>,
{
    sqlx::query_scalar(AssertSqlSafe(numbered(sql.into_sql_str().as_str())))
}

/// The statement a [`QueryBuilder`] built, numbered. (Its `push_bind` writes `?`, whatever the
/// backend: `Any` has no placeholder syntax of its own.)
fn built(q: &mut QueryBuilder<Any>) -> (String, AnyArguments) {
    let mut query = q.build();
    // Arguments are taken once, here; a builder that binds nothing has none.
    let args = query.take_arguments().ok().flatten().unwrap_or_default();
    (numbered(query.sql().as_str()), args)
}

pub(crate) fn build_as<O>(q: &mut QueryBuilder<Any>) -> QueryAs<'static, Any, O, AnyArguments>
where
    O: for<'r> FromRow<'r, AnyRow>,
{
    let (sql, args) = built(q);
    sqlx::query_as_with(AssertSqlSafe(sql), args)
}

pub(crate) fn build_scalar<O>(
    q: &mut QueryBuilder<Any>,
) -> QueryScalar<'static, Any, O, AnyArguments>
where
    (O,): for<'r> FromRow<'r, AnyRow>,
{
    let (sql, args) = built(q);
    sqlx::query_scalar_with(AssertSqlSafe(sql), args)
}

/// `?` → `$n`, in order, outside quoted text and comments.
pub(crate) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '?' => {
                // `?NNN` names its parameter; a bare `?` takes the next after the largest so far.
                let mut digits = String::new();
                while let Some(d) = chars.next_if(char::is_ascii_digit) {
                    digits.push(d);
                }
                match digits.parse::<usize>() {
                    Ok(k) => n = n.max(k),
                    Err(_) => {
                        n += 1;
                        digits = n.to_string();
                    }
                }
                out.push('$');
                out.push_str(&digits);
            }
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn numbers_placeholders_outside_quotes_and_comments() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?)"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
        );
        assert_eq!(
            numbered("SELECT '?' , \"a?\" -- why?\n FROM t WHERE x = ?"),
            "SELECT '?' , \"a?\" -- why?\n FROM t WHERE x = $1"
        );
        assert_eq!(numbered("VALUES (?1, ?1, ?)"), "VALUES ($1, $1, $2)");
        // A doubled quote inside a literal closes and reopens it: still outside.
        assert_eq!(
            numbered("SELECT 'it''s' WHERE a = ?"),
            "SELECT 'it''s' WHERE a = $1"
        );
    }
}
