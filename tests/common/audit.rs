//! The audit log of a test's kiroku, read where it lives: `audit/log.jsonl` and
//! `audit/checkpoints.jsonl` in the data dir, or their tables when the catalog is on
//! PostgreSQL (see [`super::postgres`]).

use std::path::Path;

/// The entries, one line each, as `log.jsonl` holds them.
pub fn log(data: &Path) -> String {
    read(data, "log.jsonl", "audit_entries")
}

/// The checkpoints, one line each, as `checkpoints.jsonl` holds them.
pub fn checkpoints(data: &Path) -> String {
    read(data, "checkpoints.jsonl", "audit_checkpoints")
}

fn read(data: &Path, file: &str, table: &str) -> String {
    if super::postgres::whole_suite() {
        return super::postgres::audit_lines(data, table)
            .into_iter()
            .map(|l| l + "\n")
            .collect();
    }
    std::fs::read_to_string(data.join("audit").join(file)).unwrap_or_default()
}

/// Replaces the entries with `text` (a line each), as someone holding the files or the
/// database could.
pub fn rewrite_log(data: &Path, text: &str) {
    rewrite(data, "log.jsonl", "audit_entries", text);
}

/// Replaces the checkpoints with `text` (a line each).
pub fn rewrite_checkpoints(data: &Path, text: &str) {
    rewrite(data, "checkpoints.jsonl", "audit_checkpoints", text);
}

fn rewrite(data: &Path, file: &str, table: &str, text: &str) {
    if !super::postgres::whole_suite() {
        std::fs::write(data.join("audit").join(file), text).unwrap();
        return;
    }
    let schema = super::postgres::schema_for(data);
    let key = if table == "audit_entries" { "seq" } else { "n" };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    super::postgres::admin(|c| {
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(&format!("DELETE FROM {schema}.{table}"))
            .unwrap();
        for (i, line) in lines.iter().enumerate() {
            tx.execute(
                &format!("INSERT INTO {schema}.{table} ({key}, line) VALUES ($1, $2)"),
                &[&(i as i64 + 1), line],
            )
            .unwrap();
        }
        if key == "n" {
            // The identity goes on after the rows written here.
            tx.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{schema}.{table}', 'n'), \
                 (SELECT COALESCE(MAX(n), 0) + 1 FROM {schema}.{table}), false)"
            ))
            .unwrap();
        }
        tx.commit().unwrap();
    });
}
