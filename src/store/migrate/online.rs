//! Online migrations: each statement alone, outside a transaction, so that indexes are built
//! `CONCURRENTLY`, constraints validated and rows backfilled while writes go on.

use tokio_postgres::Client;

use super::Migration;
use crate::store::StoreError;

/// The statements of an online migration: its text split at semicolons, comment lines left
/// out.
fn statements(sql: &str) -> Vec<String> {
    let code: String = sql
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    code.split(';')
        .map(str::trim)
        .filter(|statement| !statement.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The index an online statement builds (`… INDEX CONCURRENTLY IF NOT EXISTS name …`).
fn index_built(statement: &str) -> Option<&str> {
    let (_, rest) = statement.split_once("INDEX CONCURRENTLY IF NOT EXISTS ")?;
    rest.split_whitespace().next()
}

/// Runs an online migration's statements one by one, outside a transaction.
pub(super) async fn apply_online(client: &Client, migration: &Migration) -> Result<(), StoreError> {
    // A build `CONCURRENTLY` waits in the lock manager for every older transaction (a backup,
    // a long report): no lock timeout, or any such transaction would throw the build away. A
    // Job killed meanwhile leaves a backend that stops within 10 s instead of building on
    // with the migration lock held.
    client
        .batch_execute(
            "SET statement_timeout = 0; SET lock_timeout = 0; \
             SET client_connection_check_interval = '10s'; \
             SET TimeZone = 'UTC'; SET DateStyle = 'ISO'",
        )
        .await?;
    for statement in statements(migration.sql) {
        if let Some(index) = index_built(&statement) {
            // An interrupted build leaves the index invalid, and `IF NOT EXISTS` would keep it.
            let invalid: bool = client
                .query_one(
                    "SELECT coalesce((SELECT NOT indisvalid FROM pg_index \
                     WHERE indexrelid = to_regclass($1::text)), false)",
                    &[&index],
                )
                .await?
                .get(0);
            if invalid {
                client
                    .batch_execute(&format!("DROP INDEX CONCURRENTLY {index}"))
                    .await?;
            }
        }
        client.batch_execute(&statement).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate::{Kind, MIGRATIONS};

    #[test]
    fn every_statement_of_an_online_migration_can_run_again() {
        for migration in MIGRATIONS.iter().filter(|m| m.kind == Kind::Online) {
            let statements = statements(migration.sql);
            assert!(!statements.is_empty(), "{}", migration.name);
            for statement in statements {
                let again = index_built(&statement).is_some()
                    || statement.contains(" VALIDATE CONSTRAINT ")
                    || statement.ends_with(" ON CONFLICT DO NOTHING");
                assert!(again, "{}: {statement}", migration.name);
            }
        }
    }

    #[test]
    fn an_online_statement_names_the_index_it_builds() {
        let sql = "-- a comment; with a semicolon\nCREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \
                   a_key\n    ON a (b, c);\nALTER TABLE a VALIDATE CONSTRAINT d;\n";
        let statements = statements(sql);
        assert_eq!(statements.len(), 2);
        assert_eq!(index_built(&statements[0]), Some("a_key"));
        assert_eq!(index_built(&statements[1]), None);
    }
}
