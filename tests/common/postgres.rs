//! The PostgreSQL catalog in tests: the throwaway cluster `scripts/test.sh` starts (its
//! admin URL in `TEST_POSTGRES_URL`), and a schema of its own for each test's data dir, so
//! tests sharing the cluster never see each other's rows. With `TEST_CATALOG=postgres`
//! every test's kiroku keeps its catalog there ([`super::app::config`], [`super::cli`]):
//! the whole suite runs on PostgreSQL too.

use std::path::Path;

/// The cluster's admin URL; a test that needs PostgreSQL and has none fails saying how to
/// start one.
pub fn admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "TEST_POSTGRES_URL is not set: start a cluster with \
             `bash scripts/pg-cluster.sh start /tmp/kiroku-pg 5439` and set \
             TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5439/postgres (make test does both)"
        )
    })
}

/// Whether every test's catalog is on PostgreSQL (`TEST_CATALOG=postgres`).
pub fn whole_suite() -> bool {
    std::env::var("TEST_CATALOG").is_ok_and(|v| v == "postgres")
}

/// Runs `f` with a client on the cluster as its admin, on a thread of its own (the blocking
/// client may not run inside a test's tokio runtime).
pub fn admin<T: Send>(f: impl FnOnce(&mut postgres::Client) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = postgres::Client::connect(&admin_url(), postgres::NoTls)
                .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", admin_url()));
            f(&mut c)
        })
        .join()
        .unwrap()
    })
}

/// The schema that holds `dir`'s catalog: named after the folder, so the CLI, a served
/// kiroku and the test itself all reach the same one.
pub fn schema_for(dir: &Path) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, dir.as_os_str().as_encoded_bytes());
    format!("t_{}", hex::encode(&digest.as_ref()[..10]))
}

/// The catalog URL for `dir`: its own schema (made if missing) on the test cluster.
pub fn catalog_url_for(dir: &Path) -> String {
    url_for_schema(&schema_for(dir))
}

/// The keyring's URL for `dir`: a schema of its own beside the catalog's (`<schema>_keys`), as
/// an operator keeps the keyring's database apart from the catalog's.
pub fn keyring_url_for(dir: &Path) -> String {
    url_for_schema(&format!("{}_keys", schema_for(dir)))
}

/// The URL of `schema` (made if missing) on the test cluster.
pub fn url_for_schema(schema: &str) -> String {
    admin(|c| {
        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .unwrap()
    });
    format!("{}?options=-csearch_path%3D{schema}", admin_url())
}

/// The lines of one of `dir`'s audit tables (`audit_entries`, `audit_checkpoints`), in order.
pub fn audit_lines(dir: &Path, table: &str) -> Vec<String> {
    let order = if table == "audit_entries" { "seq" } else { "n" };
    let sql = format!(
        "SELECT line FROM {}.{table} ORDER BY {order}",
        schema_for(dir)
    );
    admin(|c| {
        c.query(&sql, &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    })
}

/// A connection to `dir`'s catalog wherever it is (the SQLite file, or its schema here), for
/// tests that set a row as time or a fault would have left it.
pub fn catalog_db(dir: &Path) -> kiroku::sqldb::Connection {
    if whole_suite() {
        kiroku::sqldb::Connection::open_postgres(&catalog_url_for(dir)).unwrap()
    } else {
        kiroku::sqldb::Connection::open_sqlite(&dir.join("catalog.db")).unwrap()
    }
}

/// A copy of schema `from` (a catalog with its audit log, or a keyring) under the name `copy`,
/// as a backup of the database holds it: the URL that opens the copy.
pub fn copy_schema(from: &str, copy: &str) -> String {
    let (from, copy) = (from.to_string(), copy.to_string());
    admin(|c| {
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {copy} CASCADE; CREATE SCHEMA {copy}"
        ))
        .unwrap();
        let tables: Vec<String> = tx
            .query(
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
                &[&from],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for t in &tables {
            tx.batch_execute(&format!(
                "CREATE TABLE {copy}.{t} (LIKE {from}.{t} INCLUDING ALL);
                 INSERT INTO {copy}.{t} SELECT * FROM {from}.{t};"
            ))
            .unwrap();
        }
        // Identity columns go on after the rows copied, as in the original.
        let identities: Vec<(String, String)> = tx
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = $1 AND is_identity = 'YES'",
                &[&copy],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        for (t, col) in identities {
            tx.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{copy}.{t}', '{col}'), \
                 (SELECT COALESCE(MAX({col}), 0) + 1 FROM {copy}.{t}), false)"
            ))
            .unwrap();
        }
        tx.commit().unwrap();
    });
    format!("{}?options=-csearch_path%3D{copy}", admin_url())
}

/// Puts the copy named `copy` back as `dir`'s schema, as restoring the database's backup.
pub fn restore_schema(dir: &Path, copy: &str) {
    let schema = schema_for(dir);
    let sql = format!("DROP SCHEMA {schema} CASCADE; ALTER SCHEMA {copy} RENAME TO {schema}");
    admin(|c| c.batch_execute(&sql).unwrap());
}
