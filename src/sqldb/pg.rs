//! The PostgreSQL side of [`super::Connection`]: statements renumbered from SQLite's `?1` to
//! `$1` and prepared once per connection, values bound by the type PostgreSQL inferred for
//! each parameter and read back by each column's type, and SQLite's DDL words put in
//! PostgreSQL's.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use futures_util::future::poll_fn;

use bytes::BytesMut;
use tokio_postgres::types::{FromSql as PgFromSql, IsNull, ToSql as PgToSql, Type, to_sql_checked};

use super::Value;

/// One connection, its prepared statements and the advisory lock its writers take. The
/// asynchronous client runs on a runtime of its own (one thread: the caller's), so the
/// requests of one write, its lock, statement and commit, go out together and come back in
/// one round trip: the lock is then held only as long as the server takes, never across a
/// round trip to a node that may be slow or paused.
pub(super) struct Client {
    /// Where it connects, to connect again after the server dropped it.
    config: tokio_postgres::Config,
    lock_name: &'static str,
    runtime: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    statements: HashMap<String, tokio_postgres::Statement>,
    /// The key of the advisory lock every write takes: one per schema and lock name, so two
    /// kiroku deployments sharing a database (in schemas of their own) do not wait for each
    /// other, nor the audit log's appends for the catalog's writes.
    write_lock: i64,
}

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// How a statement runs, which decides whether it may be tried again on a fresh connection
/// when it met one the server had dropped (a restart, a failover, an idle connection cut).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A read outside a transaction: it changes nothing, so it is tried again.
    Read,
    /// A write outside a transaction, in one of its own under the writers' lock: tried again
    /// only when its `BEGIN` got no answer, as the server answers in order and so did none
    /// of it.
    LockedWrite,
    /// Inside the caller's transaction, which died with the connection: never tried again.
    InTransaction,
}

/// A request's future, made anew for each try.
type Request<'a, T> = futures_util::future::LocalBoxFuture<'a, PgResult<T>>;

impl Client {
    pub(super) fn connect(
        config: tokio_postgres::Config,
        lock_name: &'static str,
    ) -> Result<Client, super::Error> {
        let (runtime, client, write_lock) = open(&config, lock_name)?;
        Ok(Client {
            config,
            lock_name,
            runtime,
            client,
            statements: HashMap::new(),
            write_lock,
        })
    }

    /// Connects again (the server dropped the connection); the prepared statements went
    /// with the old one.
    pub(super) fn reconnect(&mut self) -> Result<(), super::Error> {
        let (runtime, client, write_lock) = open(&self.config, self.lock_name)?;
        let old = std::mem::replace(&mut self.runtime, runtime);
        // A runtime is dropped off the calling thread's async context, if it has one.
        old.shutdown_background();
        self.client = client;
        self.write_lock = write_lock;
        self.statements.clear();
        Ok(())
    }

    /// Whether `e` says the server dropped this connection: closed, or a FATAL error (after
    /// which the server always closes it, though the client may not have read the close yet).
    fn dropped(&self, e: &tokio_postgres::Error) -> bool {
        self.is_closed()
            || e.is_closed()
            || e.as_db_error().is_some_and(|d| {
                d.parsed_severity() == Some(tokio_postgres::error::Severity::Fatal)
            })
    }

    pub(super) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    fn statement(&mut self, sql: &str) -> PgResult<tokio_postgres::Statement> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.runtime.block_on(self.client.prepare(&renumber(sql)))?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }

    /// Runs `sql` and reads every row, as `mode` says.
    pub(super) fn rows(
        &mut self,
        sql: &str,
        values: &[Value],
        mode: Mode,
    ) -> PgResult<Vec<Vec<Value>>> {
        let rows = self.run(sql, values, mode, |c, st, p| Box::pin(c.query(st, p)))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| row.try_get::<_, Any>(i).map(|a| a.0))
                    .collect()
            })
            .collect()
    }

    /// Runs `sql`, as `mode` says; how many rows it changed.
    pub(super) fn execute(&mut self, sql: &str, values: &[Value], mode: Mode) -> PgResult<u64> {
        self.run(sql, values, mode, |c, st, p| Box::pin(c.execute(st, p)))
    }

    /// Prepares `sql` and runs the request `make` builds of it: in a locked transaction of
    /// its own for a [`Mode::LockedWrite`], and once more on a fresh connection when the
    /// first try met a connection the server had dropped and did nothing (see [`Mode`]).
    fn run<T>(
        &mut self,
        sql: &str,
        values: &[Value],
        mode: Mode,
        make: impl for<'a> Fn(
            &'a tokio_postgres::Client,
            &'a tokio_postgres::Statement,
            &'a [&'a (dyn PgToSql + Sync)],
        ) -> Request<'a, T>,
    ) -> PgResult<T> {
        let params = as_params(values);
        let mut tried = false;
        loop {
            // Whether a failure left nothing done on the server.
            let result = match self.statement(sql) {
                Err(e) => Err((true, e)),
                Ok(st) => match mode {
                    Mode::LockedWrite => {
                        self.in_locked_transaction(make(&self.client, &st, &params))
                    }
                    Mode::Read | Mode::InTransaction => self
                        .runtime
                        .block_on(make(&self.client, &st, &params))
                        .map_err(|e| (true, e)),
                },
            };
            match result {
                Ok(v) => return Ok(v),
                Err((nothing_done, e)) => {
                    let again = !tried
                        && nothing_done
                        && mode != Mode::InTransaction
                        && self.dropped(&e)
                        && self.reconnect().is_ok();
                    if !again {
                        return Err(e);
                    }
                    tracing::info!(
                        "the PostgreSQL connection was dropped by the server; reconnected"
                    );
                    tried = true;
                }
            }
        }
    }

    /// `request` in a transaction of its own under the writers' lock: `BEGIN`, the lock, the
    /// request and `COMMIT` sent together. A failed request aborts the transaction, and the
    /// server then answers `COMMIT` by rolling it back. A failure says whether `BEGIN` got no
    /// answer (so none of it ran).
    fn in_locked_transaction<T>(
        &self,
        request: impl std::future::Future<Output = PgResult<T>>,
    ) -> Result<T, (bool, tokio_postgres::Error)> {
        let begin = self.begin_sql();
        let (mut began, mut done, mut committed) = (None, None, None);
        self.in_order(vec![
            Box::pin(async { began = Some(self.client.batch_execute(&begin).await) }),
            Box::pin(async { done = Some(request.await) }),
            Box::pin(async { committed = Some(self.client.batch_execute("COMMIT").await) }),
        ]);
        began.expect(DRIVEN).map_err(|e| (true, e))?;
        let value = done.expect(DRIVEN).map_err(|e| (false, e))?;
        committed.expect(DRIVEN).map_err(|e| (false, e))?;
        Ok(value)
    }

    /// Drives `requests` to completion on this connection's runtime, polling them always in
    /// the order given: tokio-postgres sends a request on its first poll, so they reach the
    /// server in this order, and all of them take one round trip.
    fn in_order(&self, requests: Vec<Pin<Box<dyn Future<Output = ()> + '_>>>) {
        let mut requests: Vec<_> = requests.into_iter().map(Some).collect();
        self.runtime.block_on(poll_fn(|cx| {
            for slot in &mut requests {
                if slot
                    .as_mut()
                    .is_some_and(|r| r.as_mut().poll(cx).is_ready())
                {
                    *slot = None;
                }
            }
            if requests.iter().all(Option::is_none) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }));
    }

    /// `BEGIN` and the writers' lock, in the simple protocol (the key written into the text)
    /// so that both take one message.
    fn begin_sql(&self) -> String {
        format!("BEGIN; SELECT pg_advisory_xact_lock({})", self.write_lock)
    }

    pub(super) fn batch(&mut self, sql: &str) -> PgResult<()> {
        self.runtime.block_on(self.client.batch_execute(sql))
    }

    /// Opens a transaction holding the writers' lock and runs `queries` (no parameters, one
    /// text column, at most one row each) in the same round trip: each one's value.
    pub(super) fn begin_locked_reading(
        &mut self,
        queries: &[&str],
    ) -> PgResult<Vec<Option<String>>> {
        let mut sql = self.begin_sql();
        for q in queries {
            sql.push_str("; ");
            sql.push_str(q);
        }
        let messages = match self.runtime.block_on(self.client.simple_query(&sql)) {
            // No transaction outlives a dropped connection: begin again on a fresh one.
            Err(e) if self.dropped(&e) && self.reconnect().is_ok() => {
                self.runtime.block_on(self.client.simple_query(&sql))?
            }
            other => other?,
        };
        // Statement 0 is BEGIN and 1 the lock; each ends with its CommandComplete.
        let mut values = vec![None; queries.len()];
        let mut statement = 0;
        for m in messages {
            match m {
                tokio_postgres::SimpleQueryMessage::CommandComplete(_) => statement += 1,
                tokio_postgres::SimpleQueryMessage::Row(row) if statement >= 2 => {
                    if let Some(slot) = values.get_mut(statement - 2) {
                        *slot = row.get(0).map(str::to_owned);
                    }
                }
                _ => {}
            }
        }
        Ok(values)
    }

    /// Runs `writes` and commits, all sent in one round trip: a transaction's last writes.
    /// The first that fails aborts the transaction (the server then rolls it back at
    /// `COMMIT`) and is the error.
    pub(super) fn execute_all_and_commit(&mut self, writes: &[(&str, Vec<Value>)]) -> PgResult<()> {
        let statements = match writes
            .iter()
            .map(|(sql, _)| self.statement(sql))
            .collect::<PgResult<Vec<_>>>()
        {
            Ok(statements) => statements,
            Err(e) => {
                // Nothing was sent to end the transaction: end it here.
                let _ = self.batch("ROLLBACK");
                return Err(e);
            }
        };
        let params: Vec<_> = writes.iter().map(|(_, values)| as_params(values)).collect();
        let mut written: Vec<Option<PgResult<u64>>> = writes.iter().map(|_| None).collect();
        let mut committed = None;
        let client = &self.client;
        let mut requests: Vec<Pin<Box<dyn Future<Output = ()> + '_>>> = written
            .iter_mut()
            .zip(statements.iter().zip(&params))
            .map(|(slot, (st, p))| {
                Box::pin(async move { *slot = Some(client.execute(st, p).await) }) as _
            })
            .collect();
        requests.push(Box::pin(async {
            committed = Some(client.batch_execute("COMMIT").await);
        }));
        self.in_order(requests);
        for w in written {
            w.expect(DRIVEN)?;
        }
        committed.expect(DRIVEN)
    }
}

/// A runtime for one connection, the connection (driven by that runtime whenever a request
/// of it is), and the key of the writers' lock named `lock_name`.
fn open(
    config: &tokio_postgres::Config,
    lock_name: &str,
) -> Result<(tokio::runtime::Runtime, tokio_postgres::Client, i64), super::Error> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| super::Error::Config(format!("the PostgreSQL client's runtime: {e}")))?;
    let (client, connection) = runtime.block_on(config.connect(tokio_postgres::NoTls))?;
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "connection to PostgreSQL closed");
        }
    });
    let write_lock: i64 = runtime
        .block_on(client.query_one(
            "SELECT hashtextextended('kiroku-' || $1 || ':' || current_schema(), 0)",
            &[&lock_name],
        ))?
        .get(0);
    Ok((runtime, client, write_lock))
}

/// Every request handed to [`Client::in_order`] has run when it returns.
const DRIVEN: &str = "driven to completion";

/// `values` as the parameters of a statement.
fn as_params(values: &[Value]) -> Vec<&(dyn PgToSql + Sync)> {
    values.iter().map(|v| v as &(dyn PgToSql + Sync)).collect()
}

/// `?1` → `$1`, and a bare `?` → the next number; text in quotes is left alone.
pub(super) fn renumber(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), c) => out.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push(c);
            }
            (None, '?') => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    digits = next.to_string();
                    next += 1;
                }
                out.push('$');
                out.push_str(&digits);
            }
            (None, c) => out.push(c),
        }
    }
    out
}

/// A schema step in SQLite's words, in PostgreSQL's: 64-bit integers, identity keys, bytea,
/// and text compared byte by byte (times are RFC 3339 text and must sort as SQLite sorts them,
/// whatever the database's locale).
pub(super) fn ddl(step: &str) -> String {
    step.replace(
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    )
    .replace("INTEGER", "BIGINT")
    .replace("BLOB", "BYTEA")
    .replace(" TEXT", " TEXT COLLATE \"C\"")
}

type BoxError = Box<dyn StdError + Sync + Send>;

/// A value binds to a parameter of whatever type PostgreSQL inferred for it.
impl PgToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Integer(n), &Type::INT8) => n.to_sql(ty, out),
            (Value::Integer(n), &Type::INT4) => i32::try_from(*n)?.to_sql(ty, out),
            (Value::Integer(n), &Type::INT2) => i16::try_from(*n)?.to_sql(ty, out),
            (Value::Integer(n), &Type::BOOL) => (*n != 0).to_sql(ty, out),
            (Value::Integer(n), &Type::FLOAT8) => (*n as f64).to_sql(ty, out),
            (Value::Integer(n), t) if is_text(t) => n.to_string().as_str().to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT8) => x.to_sql(ty, out),
            (Value::Real(x), &Type::FLOAT4) => (*x as f32).to_sql(ty, out),
            (Value::Text(s), t) if is_text(t) => s.as_str().to_sql(ty, out),
            (Value::Blob(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (v, t) => Err(format!(
                "a {} value cannot be bound to a {t} parameter",
                v.type_name()
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    matches!(
        *t,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

/// A column of any type kiroku's schema uses, read as a [`Value`].
struct Any(Value);

impl<'a> PgFromSql<'a> for Any {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Any, BoxError> {
        let v = match *ty {
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)? as i64),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)? as i64),
            Type::BOOL => Value::Integer(bool::from_sql(ty, raw)? as i64),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)? as i64),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)? as f64),
            Type::BYTEA => Value::Blob(raw.to_vec()),
            Type::NUMERIC => numeric(raw)?,
            ref t if is_text(t) => Value::Text(String::from_sql(ty, raw)?),
            ref t => return Err(format!("a column of type {t} is not one kiroku reads").into()),
        };
        Ok(Any(v))
    }

    fn from_sql_null(_: &Type) -> Result<Any, BoxError> {
        Ok(Any(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// PostgreSQL's binary NUMERIC (what `SUM` of a bigint column gives): an integer when it has
/// no fraction and fits, else a real.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "a NUMERIC cut short".into())
    };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    let dscale = word(6)?;
    if sign == 0xC000 {
        return Err("NaN where a number was expected".into());
    }
    let mut x = 0f64;
    let mut exact: Option<i64> = Some(0);
    for i in 0..ndigits {
        let d = word(8 + 2 * i)? as i64;
        let power = weight - i as i32;
        x += d as f64 * 10000f64.powi(power);
        exact = match (exact, power) {
            (Some(acc), p) if p >= 0 => 10000i64
                .checked_pow(p as u32)
                .and_then(|m| d.checked_mul(m))
                .and_then(|v| acc.checked_add(v)),
            (acc, _) if d == 0 => acc,
            _ => None,
        };
    }
    let negative = sign == 0x4000;
    Ok(match exact {
        Some(n) if dscale == 0 || x.fract() == 0.0 => Value::Integer(if negative { -n } else { n }),
        _ => Value::Real(if negative { -x } else { x }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_bare_parameters_are_renumbered_outside_quotes() {
        assert_eq!(
            renumber("SELECT a FROM t WHERE b = ?2 AND c = '?1' AND d = ?1"),
            "SELECT a FROM t WHERE b = $2 AND c = '?1' AND d = $1"
        );
        assert_eq!(renumber("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    #[test]
    fn sqlite_ddl_words_become_postgresql_ones() {
        let pg = ddl(
            "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, h BLOB, n INTEGER, at TEXT)",
        );
        assert_eq!(
            pg,
            "CREATE TABLE t (seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, h BYTEA, n BIGINT, at TEXT COLLATE \"C\")"
        );
    }

    #[test]
    fn a_numeric_sum_reads_back_as_an_integer() {
        // 123456789 = 1|2345|6789 in base 10000: weight 2, three digits.
        let mut raw = vec![0, 3, 0, 2, 0, 0, 0, 0];
        for d in [1u16, 2345, 6789] {
            raw.extend_from_slice(&d.to_be_bytes());
        }
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(123_456_789));
        raw[4] = 0x40; // negative
        assert_eq!(numeric(&raw).unwrap(), Value::Integer(-123_456_789));
    }
}
