//! A few connections to one database, handed out one thread at a time: PostgreSQL's
//! catalog, where a capture's read at a segment boundary should not wait behind another
//! capture's commit in the same process (the writers' lock still serialises the writes, in
//! the database). SQLite keeps one connection, its single writer.

use std::ops::Deref;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{Connection, Location};

/// How many connections a process opens at most to a PostgreSQL catalog. Each costs the
/// server a backend process; a handful is what a node's captures and requests keep busy
/// while one of them holds the writers' lock.
const POSTGRES_CONNECTIONS: usize = 4;

pub struct Pool {
    location: Location,
    max: usize,
    state: Mutex<Idle>,
    returned: Condvar,
}

struct Idle {
    connections: Vec<Connection>,
    /// Connections open, lent or idle: at least the first, so a waiter is always woken.
    opened: usize,
    /// After a connection failed to open, none is tried again before this.
    open_after: Option<Instant>,
}

/// How long after a connection failed to open the pool tries again.
const OPEN_RETRY: Duration = Duration::from_secs(5);

impl Pool {
    /// A pool over `first`, the connection already open at `location` (the one migrations
    /// ran on); more are opened when every one is busy, up to the database's limit.
    pub fn new(location: Location, first: Connection) -> Pool {
        let max = match location {
            Location::Sqlite(_) => 1,
            Location::Postgres(_) => POSTGRES_CONNECTIONS,
        };
        Pool {
            location,
            max,
            state: Mutex::new(Idle {
                connections: vec![first],
                opened: 1,
                open_after: None,
            }),
            returned: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, Idle> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection for this thread until the guard drops: an idle one, a new one while the
    /// pool is below its size, or the next one returned. A connection that cannot be opened
    /// (the server at its limit) is not an error while others exist: the caller waits.
    pub fn get(&self) -> Pooled<'_> {
        let mut state = self.state();
        loop {
            if let Some(conn) = state.connections.pop() {
                return Pooled {
                    pool: self,
                    conn: Some(conn),
                };
            }
            let may_open = state.open_after.is_none_or(|t| Instant::now() >= t);
            if state.opened < self.max && may_open {
                state.opened += 1;
                drop(state);
                match Connection::open(&self.location) {
                    Ok(conn) => {
                        return Pooled {
                            pool: self,
                            conn: Some(conn),
                        };
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "another catalog connection could not be opened; waiting for one in use");
                        state = self.state();
                        state.opened -= 1;
                        state.open_after = Some(Instant::now() + OPEN_RETRY);
                        continue;
                    }
                }
            }
            state = self.returned.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.location, Location::Postgres(_))
    }
}

/// A connection lent by a [`Pool`]; back to it when dropped.
pub struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
}

impl Deref for Pooled<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("lent until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.state().connections.push(conn);
            self.pool.returned.notify_one();
        }
    }
}
