//! The SQL database under the catalog and the keyring (and, on PostgreSQL, the audit log):
//! SQLite in a file, the embedded default, or PostgreSQL at a `postgres://` URL, for more
//! than one node. One [`Connection`] type speaks the SQL both understand, so each statement
//! and each schema step is written once.
//!
//! - Statements use SQLite's numbered parameters (`?1`); on PostgreSQL they are renumbered
//!   `$1`, prepared once per connection, and each value is bound as the type PostgreSQL
//!   inferred for its parameter.
//! - Schema steps are SQLite DDL; [`Connection::migrate`] puts them in PostgreSQL's words and
//!   runs them under an advisory lock, so nodes starting together migrate once.
//! - Writes are serialised on both. SQLite has one writer by design (`BEGIN IMMEDIATE`); on
//!   PostgreSQL every transaction, and every write outside one, first takes one advisory lock
//!   (the catalog's and the keyring's; the audit log's tables, which no catalog transaction
//!   touches, have one of their own).
//!   Code that reads then writes in a transaction keeps the guarantee SQLite gave it.
//! - Durable on return: SQLite runs with `synchronous=FULL`, PostgreSQL commits with its
//!   default `synchronous_commit=on`. A segment row is on disk before its acknowledgement.

mod pg;
mod pool;
mod value;

use std::cell::RefCell;
use std::path::Path;

pub use pool::{Pool, Pooled};
pub use value::{FromSql, FromSqlError, FromSqlResult, ToSql, Value};

/// Why a database call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("the query returned no rows")]
    QueryReturnedNoRows,
    #[error("no column {0} in the row")]
    InvalidColumnIndex(usize),
    #[error("column {0}: {1}")]
    FromSqlConversionFailure(usize, FromSqlError),
    #[error("{0}")]
    Config(String),
    #[error("schema version {found} is newer than this kiroku knows ({known})")]
    TooNew { found: i64, known: i64 },
}

impl Error {
    /// A unique, foreign-key or check constraint refused the write.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => {
                f.code == rusqlite::ErrorCode::ConstraintViolation
            }
            Error::Postgres(e) => e.code().is_some_and(|c| c.code().starts_with("23")),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a database lives: a SQLite file, or a PostgreSQL URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Location {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; nothing else is.
    pub fn is_postgres_url(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }
}

/// One connection to either database. Not shared between threads: its owner keeps it behind
/// a mutex, as SQLite's single writer wants.
pub struct Connection {
    backend: Backend,
}

enum Backend {
    Sqlite(rusqlite::Connection),
    Postgres {
        /// `None` only once dropped (see `Drop`).
        client: Box<RefCell<Option<pg::Client>>>,
        /// Inside [`Connection::transaction`]: a lost connection is then an error, never a
        /// silent reconnect that would run the rest of the transaction's writes on their own.
        in_transaction: std::cell::Cell<bool>,
    },
}

impl Connection {
    /// Opens (creating if needed) a SQLite file: WAL, `synchronous=FULL`, foreign keys
    /// enforced, deleted rows overwritten (an erased candidate's rows must not linger in free
    /// pages).
    pub fn open_sqlite(path: &Path) -> Result<Connection> {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        Ok(Connection {
            backend: Backend::Sqlite(conn),
        })
    }

    /// An in-memory SQLite database (tests of the value mapping).
    pub fn open_in_memory() -> Result<Connection> {
        Ok(Connection {
            backend: Backend::Sqlite(rusqlite::Connection::open_in_memory()?),
        })
    }

    /// Connects to PostgreSQL at `url` (`postgres://user@host:port/db`). The password is not
    /// taken from the URL, which sits in config files: it comes from `PGPASSWORD`, as for
    /// PostgreSQL's own tools.
    pub fn open_postgres(url: &str) -> Result<Connection> {
        Connection::open_postgres_with_lock(url, "writer")
    }

    fn open_postgres_with_lock(url: &str, lock_name: &'static str) -> Result<Connection> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("the catalog URL does not parse: {e}")))?;
        if config.get_password().is_some() {
            return Err(Error::Config(
                "the catalog URL carries a password; give it in PGPASSWORD instead".into(),
            ));
        }
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name("kiroku");
        }
        config.connect_timeout(std::time::Duration::from_secs(10));
        let client = off_runtime(|| pg::Client::connect(config, lock_name))?;
        Ok(Connection {
            backend: Backend::Postgres {
                client: Box::new(RefCell::new(Some(client))),
                in_transaction: std::cell::Cell::new(false),
            },
        })
    }

    /// Opens the database at `location`.
    pub fn open(location: &Location) -> Result<Connection> {
        Connection::open_with_lock(location, "writer")
    }

    /// Opens the database at `location`, its writes serialised on PostgreSQL by the lock
    /// named `lock_name` instead of the catalog writers': for tables no catalog transaction
    /// touches (the audit log's), whose writes then need not wait for the catalog's. SQLite
    /// has one writer per file whatever the name.
    pub fn open_with_lock(location: &Location, lock_name: &'static str) -> Result<Connection> {
        match location {
            Location::Sqlite(path) => Connection::open_sqlite(path),
            Location::Postgres(url) => Connection::open_postgres_with_lock(url, lock_name),
        }
    }

    fn in_transaction(&self) -> bool {
        match &self.backend {
            Backend::Postgres { in_transaction, .. } => in_transaction.get(),
            Backend::Sqlite(_) => false,
        }
    }

    fn set_in_transaction(&self, on: bool) {
        if let Backend::Postgres { in_transaction, .. } = &self.backend {
            in_transaction.set(on);
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    /// The PostgreSQL client, reconnected first if the server dropped it (a restart, a
    /// failover), except inside a transaction, which died with the connection. A drop that
    /// comes to light only during a call is handled there ([`pg::Mode`]).
    fn with_pg<T: Send>(
        &self,
        f: impl FnOnce(&mut pg::Client) -> std::result::Result<T, postgres::Error> + Send,
    ) -> Result<T> {
        let Backend::Postgres {
            client,
            in_transaction,
        } = &self.backend
        else {
            unreachable!("with_pg on SQLite")
        };
        let mut slot = client.borrow_mut();
        let c = slot.as_mut().expect("a connection in use is not dropped");
        if c.is_closed() {
            if in_transaction.get() {
                return Err(Error::Config(
                    "the connection to PostgreSQL was lost inside a transaction".into(),
                ));
            }
            off_runtime(|| c.reconnect())?;
        }
        Ok(off_runtime(|| f(c))?)
    }

    /// How a statement runs on PostgreSQL: inside the caller's transaction, or in one of its
    /// own (a write, under the lock) or none (a read).
    fn mode(&self, write: bool) -> pg::Mode {
        match (self.in_transaction(), write) {
            (true, _) => pg::Mode::InTransaction,
            (false, true) => pg::Mode::LockedWrite,
            (false, false) => pg::Mode::Read,
        }
    }

    /// Runs one statement; how many rows it changed. On PostgreSQL a write outside a
    /// transaction runs in one of its own, after the writers' lock.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values();
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?)
            }
            Backend::Postgres { .. } => {
                let mode = self.mode(true);
                self.with_pg(|c| c.execute(sql, &values, mode))
                    .map(|n| n as usize)
            }
        }
    }

    /// Every row a query returns.
    pub fn rows<P: Params>(&self, sql: &str, params: P) -> Result<Vec<Row>> {
        let values = params.values();
        match &self.backend {
            Backend::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows =
                    st.query(rusqlite::params_from_iter(values.iter().map(sqlite_value)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let values = (0..n)
                        .map(|i| r.get_ref(i).map(from_sqlite))
                        .collect::<rusqlite::Result<_>>()?;
                    out.push(Row { values });
                }
                Ok(out)
            }
            Backend::Postgres { .. } => {
                let mode = self.mode(!is_read(sql));
                let rows = self.with_pg(|c| c.rows(sql, &values, mode))?;
                Ok(rows.into_iter().map(|values| Row { values }).collect())
            }
        }
    }

    /// The first row of a query, mapped; [`Error::QueryReturnedNoRows`] when there is none.
    pub fn query_row<P: Params, T>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row) -> Result<T>,
    ) -> Result<T> {
        let rows = self.rows(sql, params)?;
        f(rows.first().ok_or(Error::QueryReturnedNoRows)?)
    }

    /// A statement to run with [`Statement::query_map`] or [`Statement::exists`].
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(Statement {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// Runs several statements without parameters (schema steps, SQLite pragmas).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres { .. } => self.with_pg(|c| c.batch(sql)),
        }
    }

    /// A transaction that holds the writers' lock from its start (SQLite's `BEGIN
    /// IMMEDIATE`); rolled back unless committed.
    pub fn transaction(&self) -> Result<Transaction<'_>> {
        Ok(self.transaction_reading(&[])?.0)
    }

    /// A [`Connection::transaction`] that starts by reading `queries` (no parameters, one
    /// text column, at most one row each): on PostgreSQL in the round trip that takes the
    /// lock, so a transaction that reads a little and then writes with
    /// [`Transaction::commit_with`] holds its lock for one round trip, not one per statement.
    pub fn transaction_reading(
        &self,
        queries: &[&str],
    ) -> Result<(Transaction<'_>, Vec<Option<String>>)> {
        let values = match &self.backend {
            Backend::Sqlite(c) => {
                c.execute_batch("BEGIN IMMEDIATE")?;
                let read = queries
                    .iter()
                    .map(|q| self.query_row(q, params![], |r| r.get(0)).optional())
                    .collect::<Result<Vec<Option<String>>>>();
                match read {
                    Ok(values) => values,
                    Err(e) => {
                        let _ = c.execute_batch("ROLLBACK");
                        return Err(e);
                    }
                }
            }
            Backend::Postgres { .. } => {
                let values = self.with_pg(|c| {
                    c.begin_locked_reading(queries).inspect_err(|_| {
                        let _ = c.batch("ROLLBACK");
                    })
                })?;
                self.set_in_transaction(true);
                values
            }
        };
        let tx = Transaction {
            conn: self,
            done: false,
        };
        Ok((tx, values))
    }

    fn end_transaction(&self, sql: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Backend::Postgres { client, .. } => {
                self.set_in_transaction(false);
                let lost = client.borrow().as_ref().is_none_or(|c| c.is_closed());
                if lost {
                    // The server rolled the transaction back when the connection went.
                    return Err(Error::Config(
                        "the connection to PostgreSQL was lost inside a transaction".into(),
                    ));
                }
                self.with_pg(|c| c.batch(sql))
            }
        }
    }

    /// Frees what deleted rows left behind, where the database can: SQLite's WAL is
    /// truncated (its pages were overwritten by `secure_delete`); PostgreSQL's dead rows in
    /// `table` are vacuumed.
    pub fn scrub_deleted(&self, table: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(c) => Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?),
            Backend::Postgres { .. } => self.with_pg(|c| c.batch(&format!("VACUUM {table}"))),
        }
    }

    /// Brings the schema up to `steps` (SQLite DDL, applied once each, in order, recorded in
    /// `version_table`). On PostgreSQL each step is put in its words and the whole run holds
    /// a session advisory lock, so nodes starting at once migrate one after the other.
    pub fn migrate(&self, version_table: &str, steps: &[&str]) -> Result<()> {
        let lock = format!(
            "SELECT pg_advisory_lock(hashtextextended('kiroku-migrate:{version_table}', 0))"
        );
        let unlock = format!(
            "SELECT pg_advisory_unlock(hashtextextended('kiroku-migrate:{version_table}', 0))"
        );
        if self.is_postgres() {
            self.execute_batch(&lock)?;
        }
        let done = self.migrate_locked(version_table, steps);
        if self.is_postgres() {
            let _ = self.execute_batch(&unlock);
        }
        done
    }

    fn migrate_locked(&self, version_table: &str, steps: &[&str]) -> Result<()> {
        self.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {version_table} (version BIGINT NOT NULL)"
        ))?;
        let current: i64 = self.query_row(
            &format!("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM {version_table}"),
            params![],
            |r| r.get(0),
        )?;
        let known = steps.len() as i64;
        if current > known {
            return Err(Error::TooNew {
                found: current,
                known,
            });
        }
        for (i, step) in steps.iter().enumerate().skip(current as usize) {
            let tx = self.transaction()?;
            match &self.backend {
                Backend::Sqlite(_) => tx.execute_batch(step)?,
                Backend::Postgres { .. } => tx.execute_batch(&pg::ddl(step))?,
            }
            tx.execute(
                &format!("INSERT INTO {version_table} (version) VALUES (?1)"),
                params![i as i64 + 1],
            )?;
            tx.commit()?;
        }
        Ok(())
    }
}

/// The blocking client closes its connection on its own runtime when dropped: off tokio's.
impl Drop for Connection {
    fn drop(&mut self) {
        if let Backend::Postgres { client, .. } = &mut self.backend
            && let Some(c) = client.get_mut().take()
        {
            off_runtime(move || drop(c));
        }
    }
}

/// Runs a call of the blocking PostgreSQL client, which drives its own runtime and so may
/// not run on a thread inside tokio's: there (opening kiroku inside a runtime, an odd call
/// from an async context), on a scoped thread of its own. Catalog calls from the capture
/// threads and `spawn_blocking` run in place.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        f()
    }
}

/// A query that writes nothing (so needs no writers' lock outside a transaction).
fn is_read(sql: &str) -> bool {
    let head = sql.trim_start().get(..6).unwrap_or("");
    head.eq_ignore_ascii_case("SELECT")
}

fn sqlite_value(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Null => rusqlite::types::Value::Null,
        Value::Integer(n) => rusqlite::types::Value::Integer(*n),
        Value::Real(x) => rusqlite::types::Value::Real(*x),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Blob(b) => rusqlite::types::Value::Blob(b.clone()),
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => Value::Integer(n),
        ValueRef::Real(x) => Value::Real(x),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// A transaction holding the writers' lock; it dereferences to the connection. Rolled back
/// when dropped uncommitted.
pub struct Transaction<'c> {
    conn: &'c Connection,
    done: bool,
}

impl Transaction<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.conn.end_transaction("COMMIT")
    }

    /// Runs `writes` (statements and their values) and commits. On PostgreSQL they and the
    /// commit go out in one round trip, so a transaction whose last steps only write (an
    /// audit batch's entries) holds its lock no longer than the server takes for them.
    pub fn commit_with(mut self, writes: &[(&str, Vec<Value>)]) -> Result<()> {
        match &self.conn.backend {
            Backend::Sqlite(_) => {
                for (sql, values) in writes {
                    self.conn.execute(sql, values.clone())?;
                }
                self.commit()
            }
            Backend::Postgres { .. } => {
                self.done = true;
                let sent = self.conn.with_pg(|c| c.execute_all_and_commit(writes));
                self.conn.set_in_transaction(false);
                sent
            }
        }
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.end_transaction("ROLLBACK");
        }
    }
}

/// A statement bound to its connection, run with parameters.
pub struct Statement<'c> {
    conn: &'c Connection,
    sql: String,
}

impl Statement<'_> {
    /// Each row mapped by `f`.
    pub fn query_map<P: Params, T>(
        &mut self,
        params: P,
        mut f: impl FnMut(&Row) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.conn.rows(&self.sql, params)?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }

    /// Whether the query returns any row.
    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        Ok(!self.conn.rows(&self.sql, params)?.is_empty())
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        self.conn.execute(&self.sql, params)
    }
}

/// One row's values, read by column number.
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// Column `i` as `T`; a value that is not a `T` is an error naming the column.
    pub fn get<I: RowIndex, T: FromSql>(&self, i: I) -> Result<T> {
        let i = i.index();
        let v = self.values.get(i).ok_or(Error::InvalidColumnIndex(i))?;
        T::column_result(v).map_err(|e| Error::FromSqlConversionFailure(i, e))
    }
}

/// A column's position in a row.
pub trait RowIndex {
    fn index(self) -> usize;
}

impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// A statement's parameters, in order.
pub trait Params {
    fn values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToSql] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|p| p.to_sql()).collect()
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn values(self) -> Vec<Value> {
        self.iter().map(ToSql::to_sql).collect()
    }
}

impl Params for Vec<Value> {
    fn values(self) -> Vec<Value> {
        self
    }
}

/// A statement's parameters as a slice: `params![id.to_string(), now]`.
macro_rules! sql_params {
    () => {
        &[] as &[&dyn $crate::sqldb::ToSql]
    };
    ($($p:expr),+ $(,)?) => {
        &[$(&$p as &dyn $crate::sqldb::ToSql),+] as &[&dyn $crate::sqldb::ToSql]
    };
}

pub(crate) use sql_params as params;

/// `.optional()` on a single-row result: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .unwrap();
        db.execute("INSERT INTO t (k) VALUES (?1)", params!["taken"])
            .unwrap();
        db
    }

    fn count(db: &Connection) -> i64 {
        db.query_row("SELECT COUNT(*) FROM t", params![], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_transaction_opened_reading_gets_each_querys_value_or_none() {
        let db = table();
        let (tx, read) = db
            .transaction_reading(&["SELECT k FROM t", "SELECT k FROM t WHERE k = 'absent'"])
            .unwrap();
        assert_eq!(read, [Some("taken".to_string()), None]);
        tx.commit().unwrap();
    }

    #[test]
    fn a_transactions_last_writes_are_all_or_nothing_on_sqlite_too() {
        let db = table();
        let insert = "INSERT INTO t (k) VALUES (?1)";
        let (tx, _) = db.transaction_reading(&[]).unwrap();
        let err = tx
            .commit_with(&[
                (insert, vec![Value::Text("fresh".into())]),
                (insert, vec![Value::Text("taken".into())]),
            ])
            .unwrap_err();
        assert!(err.is_constraint_violation(), "{err}");
        assert_eq!(
            count(&db),
            1,
            "the first write was rolled back with the second"
        );
        let (tx, _) = db.transaction_reading(&[]).unwrap();
        tx.commit_with(&[(insert, vec![Value::Text("fresh".into())])])
            .unwrap();
        assert_eq!(count(&db), 2);
    }

    #[test]
    fn a_failed_read_at_the_start_leaves_no_transaction_open() {
        let db = table();
        assert!(db.transaction_reading(&["SELECT nope FROM t"]).is_err());
        // A transaction left open would make this BEGIN fail.
        db.transaction().unwrap().commit().unwrap();
    }
}
