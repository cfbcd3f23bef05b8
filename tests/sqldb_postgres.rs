//! The PostgreSQL side of kiroku's database layer under the conditions a node meets: a write
//! refused by a constraint, a transaction whose last writes go out in one round trip with its
//! commit, several pooled connections reading then writing at once, and many threads of one
//! process appending to the shared audit chain (batched into group commits), including a
//! batch that fails. Each test has a schema of its own on the test cluster.

mod common;

use std::sync::Arc;

use kiroku::audit::{Actor, Audit, CheckpointPolicy, Event};
use kiroku::signing::OperatorKey;
use kiroku::sqldb::{Connection, Location, Pool, Value};

/// A fresh schema on the test cluster, its location and name.
fn fresh(name: &str) -> (Location, String) {
    let schema = format!("sqldb_{name}_{}", std::process::id());
    common::postgres::admin(|c| {
        c.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .unwrap()
    });
    (
        Location::Postgres(common::postgres::url_for_schema(&schema)),
        schema,
    )
}

fn count(db: &Connection, table: &str) -> i64 {
    db.query_row(
        &format!("SELECT COUNT(*) FROM {table}"),
        Vec::<Value>::new(),
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn a_write_refused_by_a_constraint_rolls_back_alone_and_the_connection_goes_on() {
    let (at, _) = fresh("refused");
    let db = Connection::open(&at).unwrap();
    db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
        .unwrap();
    db.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("a".into())],
    )
    .unwrap();
    let err = db
        .execute(
            "INSERT INTO t (k) VALUES (?1)",
            vec![Value::Text("a".into())],
        )
        .unwrap_err();
    assert!(err.is_constraint_violation(), "{err}");
    // The refused write's transaction ended (its COMMIT became a rollback): the next write
    // is not stuck in an aborted transaction.
    db.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("b".into())],
    )
    .unwrap();
    assert_eq!(count(&db, "t"), 2);
}

#[test]
fn a_transactions_last_writes_are_all_or_nothing_when_one_is_refused() {
    let (at, _) = fresh("all_or_nothing");
    let db = Connection::open(&at).unwrap();
    db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
        .unwrap();
    db.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("taken".into())],
    )
    .unwrap();
    let (tx, read) = db
        .transaction_reading(&[
            "SELECT k FROM t ORDER BY k LIMIT 1",
            "SELECT k FROM t WHERE k = 'absent'",
        ])
        .unwrap();
    assert_eq!(read, [Some("taken".to_string()), None]);
    let insert = "INSERT INTO t (k) VALUES (?1)";
    let err = tx
        .commit_with(&[
            (insert, vec![Value::Text("fresh".into())]),
            (insert, vec![Value::Text("taken".into())]),
            (insert, vec![Value::Text("later".into())]),
        ])
        .unwrap_err();
    assert!(err.is_constraint_violation(), "{err}");
    assert_eq!(
        count(&db, "t"),
        1,
        "nothing of the refused transaction stays"
    );
    let (tx, _) = db.transaction_reading(&[]).unwrap();
    tx.commit_with(&[(insert, vec![Value::Text("fresh".into())])])
        .unwrap();
    assert_eq!(count(&db, "t"), 2);
}

#[test]
fn pooled_connections_reading_then_writing_at_once_lose_no_update() {
    let (at, _) = fresh("pool");
    let first = Connection::open(&at).unwrap();
    first
        .execute_batch("CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0)")
        .unwrap();
    let pool = Arc::new(Pool::new(at, first));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for _ in 0..25 {
                    let db = pool.get();
                    let tx = db.transaction().unwrap();
                    let n: i64 = tx
                        .query_row("SELECT n FROM counter", Vec::<Value>::new(), |r| r.get(0))
                        .unwrap();
                    tx.execute("UPDATE counter SET n = ?1", vec![Value::Integer(n + 1)])
                        .unwrap();
                    tx.commit().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n: i64 = pool
        .get()
        .query_row("SELECT n FROM counter", Vec::<Value>::new(), |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200, "each read-then-write held the writers' lock");
}

fn shared_audit(name: &str) -> (Audit, String, String, tempfile::TempDir) {
    let (at, schema) = fresh(name);
    let Location::Postgres(url) = at else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(OperatorKey::load_or_create(&dir.path().join("operator.pk8")).unwrap());
    let public = key.public_key_hex();
    let policy = CheckpointPolicy {
        every_entries: 10,
        every_seconds: 3600,
        publish_dir: None,
        sinks: Vec::new(),
    };
    let audit = Audit::open_shared(&dir.path().join("audit"), &url, key, policy).unwrap();
    (audit, public, schema, dir)
}

fn notice(i: usize) -> Event {
    Event::NoticeRegistered {
        notice: format!("notice-{i}"),
        language: "ja".into(),
        text_sha256: "ab".repeat(32),
    }
}

#[test]
fn many_threads_appending_at_once_leave_one_chain_with_every_entry_once() {
    let (audit, public, _, _dir) = shared_audit("group_commit");
    let audit = Arc::new(audit);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let audit = audit.clone();
            std::thread::spawn(move || {
                (0..30)
                    .map(|i| audit.record(notice(t * 100 + i), &Actor::System).unwrap())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (1..=240).collect::<Vec<u64>>(),
        "each entry its own seq"
    );
    let report = audit.verify(&public, &[]).unwrap();
    assert_eq!(report.entries, 240, "{report:?}");
}

#[test]
fn every_append_waiting_on_a_batch_that_fails_gets_the_error() {
    let (audit, _, schema, _dir) = shared_audit("batch_fails");
    audit.record(notice(0), &Actor::System).unwrap();
    common::postgres::admin(|c| {
        c.batch_execute(&format!("DROP TABLE {schema}.audit_entries"))
            .unwrap()
    });
    let audit = Arc::new(audit);
    let threads: Vec<_> = (1..=8)
        .map(|i| {
            let audit = audit.clone();
            std::thread::spawn(move || audit.record(notice(i), &Actor::System))
        })
        .collect();
    for t in threads {
        let appended = t.join().unwrap();
        assert!(
            appended.is_err(),
            "an entry the log lost was reported written: {appended:?}"
        );
    }
}

#[test]
fn a_last_write_that_does_not_parse_ends_its_transaction_rolled_back() {
    let (at, _) = fresh("unparsed");
    let db = Connection::open(&at).unwrap();
    db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
        .unwrap();
    let (tx, _) = db.transaction_reading(&[]).unwrap();
    tx.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("early".into())],
    )
    .unwrap();
    assert!(
        tx.commit_with(&[("INSERT INTO nowhere VALUES (?1)", vec![Value::Integer(1)])])
            .is_err()
    );
    assert_eq!(
        count(&db, "t"),
        0,
        "the transaction's earlier write went with it"
    );
    db.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("after".into())],
    )
    .unwrap();
    assert_eq!(count(&db, "t"), 1);
}

/// The server drops idle connections (a restart, a failover, `pg_terminate_backend`): the
/// next statement of each kind runs on a fresh connection rather than failing, whether the
/// drop comes to light before the statement is sent or only when its answer does not come.
#[test]
fn statements_after_the_server_dropped_the_connection_run_on_a_fresh_one() {
    let (at, _) = fresh("reconnect");
    let Location::Postgres(url) = at else {
        unreachable!()
    };
    let at = Location::Postgres(format!("{url}&application_name=kiroku_sqldb_reconnect"));
    let db = Connection::open(&at).unwrap();
    db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
        .unwrap();
    let insert = |k: &str| db.execute("INSERT INTO t (k) VALUES (?1)", vec![Value::Text(k.into())]);
    insert("before").unwrap();
    let drop_connection = || {
        common::postgres::admin(|c| {
            c.batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'kiroku_sqldb_reconnect'",
            )
            .unwrap();
            // Gone for good before the test goes on.
            while c
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity \
                     WHERE application_name = 'kiroku_sqldb_reconnect'",
                    &[],
                )
                .unwrap()
                .get::<_, i64>(0)
                > 0
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    drop_connection();
    insert("a write").unwrap();
    drop_connection();
    assert_eq!(count(&db, "t"), 2, "a read");
    drop_connection();
    let (tx, read) = db
        .transaction_reading(&["SELECT k FROM t WHERE k = 'before'"])
        .unwrap();
    assert_eq!(read, [Some("before".to_string())], "a transaction's start");
    tx.commit_with(&[(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("in a transaction".into())],
    )])
    .unwrap();
    assert_eq!(count(&db, "t"), 3);
}

/// A transaction whose connection the server dropped fails; nothing of it stays, and the
/// next statement runs on a fresh connection.
#[test]
fn a_transaction_whose_connection_was_dropped_fails_and_leaves_nothing() {
    let (at, _) = fresh("dropped_tx");
    let Location::Postgres(url) = at else {
        unreachable!()
    };
    let at = Location::Postgres(format!("{url}&application_name=kiroku_sqldb_dropped_tx"));
    let db = Connection::open(&at).unwrap();
    db.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY)")
        .unwrap();
    let (tx, _) = db.transaction_reading(&[]).unwrap();
    tx.execute(
        "INSERT INTO t (k) VALUES (?1)",
        vec![Value::Text("lost".into())],
    )
    .unwrap();
    common::postgres::admin(|c| {
        c.batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'kiroku_sqldb_dropped_tx'",
        )
        .unwrap()
    });
    assert!(
        tx.commit_with(&[(
            "INSERT INTO t (k) VALUES (?1)",
            vec![Value::Text("also lost".into())],
        )])
        .is_err(),
        "a transaction cut by its connection reported committed"
    );
    assert_eq!(count(&db, "t"), 0);
}

#[test]
fn a_pool_whose_server_refuses_more_connections_shares_the_ones_it_has() {
    let (at, schema) = fresh("limited");
    let role = format!("{schema}_role");
    common::postgres::admin(|c| {
        c.batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN CONNECTION LIMIT 1; \
             GRANT ALL ON SCHEMA {schema} TO {role}"
        ))
        .unwrap()
    });
    let Location::Postgres(url) = at else {
        unreachable!()
    };
    let at =
        Location::Postgres(url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1));
    let first = Connection::open(&at).unwrap();
    first
        .execute_batch("CREATE TABLE t (n BIGINT NOT NULL)")
        .unwrap();
    let pool = Arc::new(Pool::new(at, first));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    pool.get()
                        .execute(
                            "INSERT INTO t (n) VALUES (?1)",
                            vec![Value::Integer(t * 10 + i)],
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(count(&pool.get(), "t"), 40);
}
