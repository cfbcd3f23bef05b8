//! The values that cross between kiroku and either database: one [`Value`] enum, and the two
//! traits a type implements to be written ([`ToSql`]) and read back ([`FromSql`]). They are
//! the same for SQLite and PostgreSQL, so a typed column is written once (see `catalog::sql`).

use std::fmt;

/// A column's value as both databases hold it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    /// The text of a text value; any other value is the wrong type.
    pub fn as_str(&self) -> FromSqlResult<&str> {
        match self {
            Value::Text(s) => Ok(s),
            other => Err(FromSqlError::InvalidType(other.type_name())),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }
}

/// Why a column's value is not the type asked for.
#[derive(Debug)]
pub enum FromSqlError {
    /// The value is of another type (named).
    InvalidType(&'static str),
    /// An integer that does not fit the type asked for.
    OutOfRange(i64),
    /// The type's own parser refused the value.
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl fmt::Display for FromSqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FromSqlError::InvalidType(found) => {
                write!(f, "a {found} value where another type was expected")
            }
            FromSqlError::OutOfRange(n) => write!(f, "{n} is out of range"),
            FromSqlError::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FromSqlError {}

pub type FromSqlResult<T> = Result<T, FromSqlError>;

/// A type written to a column.
pub trait ToSql {
    fn to_sql(&self) -> Value;
}

/// A type read back from a column.
pub trait FromSql: Sized {
    fn column_result(v: &Value) -> FromSqlResult<Self>;
}

impl<T: ToSql + ?Sized> ToSql for &T {
    fn to_sql(&self) -> Value {
        (**self).to_sql()
    }
}

impl<T: ToSql> ToSql for Option<T> {
    fn to_sql(&self) -> Value {
        match self {
            Some(v) => v.to_sql(),
            None => Value::Null,
        }
    }
}

impl ToSql for Value {
    fn to_sql(&self) -> Value {
        self.clone()
    }
}

macro_rules! integer {
    ($($ty:ty),+) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> Value {
                // Counts and offsets kiroku keeps are far below i64::MAX; one beyond it is
                // kept as the largest, never wrapped to a negative.
                Value::Integer(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
        impl FromSql for $ty {
            fn column_result(v: &Value) -> FromSqlResult<Self> {
                match v {
                    Value::Integer(n) => <$ty>::try_from(*n).map_err(|_| FromSqlError::OutOfRange(*n)),
                    other => Err(FromSqlError::InvalidType(other.type_name())),
                }
            }
        }
    )+};
}

integer!(i64, i32, u32, u64, usize, u16, u8);

impl ToSql for bool {
    fn to_sql(&self) -> Value {
        Value::Integer(*self as i64)
    }
}

impl FromSql for bool {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        Ok(i64::column_result(v)? != 0)
    }
}

impl ToSql for f64 {
    fn to_sql(&self) -> Value {
        Value::Real(*self)
    }
}

impl FromSql for f64 {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        match v {
            Value::Real(x) => Ok(*x),
            Value::Integer(n) => Ok(*n as f64),
            other => Err(FromSqlError::InvalidType(other.type_name())),
        }
    }
}

impl ToSql for str {
    fn to_sql(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl ToSql for String {
    fn to_sql(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl FromSql for String {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        v.as_str().map(str::to_string)
    }
}

impl ToSql for [u8] {
    fn to_sql(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl ToSql for Vec<u8> {
    fn to_sql(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl<const N: usize> ToSql for [u8; N] {
    fn to_sql(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl FromSql for Vec<u8> {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            other => Err(FromSqlError::InvalidType(other.type_name())),
        }
    }
}

impl<T: FromSql> FromSql for Option<T> {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        match v {
            Value::Null => Ok(None),
            other => T::column_result(other).map(Some),
        }
    }
}

impl FromSql for Value {
    fn column_result(v: &Value) -> FromSqlResult<Self> {
        Ok(v.clone())
    }
}
