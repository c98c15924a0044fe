//! The schema against the distribution rules of docs/SCALING.md, read from `pg_catalog` of a
//! migrated database: every table is classified (reference, distributed by account or by
//! tenant, local), and every unique key and foreign key of a distributed table names its
//! distribution column. The keys that do not yet are listed in SCALING.md §3 with what they
//! become; this test pins that list, so a new table or key that breaks the rule fails here
//! until it is designed for (and a key that is fixed must leave the list).

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::TestApp;

/// How a table is placed (docs/SCALING.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// A copy on every node.
    Reference,
    /// Sharded by this column.
    Distributed(&'static str),
    /// On the coordinator only, or dropped before distributing.
    Local,
}

use Placement::{Distributed, Local, Reference};

/// Every table of the schema, as SCALING.md §2 places it.
const TABLES: [(&str, Placement); 26] = [
    ("tenants", Reference),
    ("api_keys", Reference),
    ("signing_keys", Reference),
    ("catalog_versions", Reference),
    ("accounts", Distributed("account_id")),
    ("grants", Distributed("account_id")),
    ("holds", Distributed("account_id")),
    ("authorize_keys", Distributed("account_id")),
    ("hold_allocations", Distributed("account_id")),
    ("settlements", Distributed("account_id")),
    ("settlement_parts", Distributed("account_id")),
    ("refunds", Distributed("account_id")),
    ("journal_entries", Distributed("account_id")),
    ("allowances", Distributed("account_id")),
    ("allowance_grants", Distributed("account_id")),
    ("spend_limits", Distributed("account_id")),
    ("usage_rollups", Distributed("account_id")),
    ("usage_months", Distributed("account_id")),
    ("usage_folds", Distributed("account_id")),
    ("idempotency_records", Distributed("account_id")),
    ("events", Distributed("account_id")),
    ("event_horizons", Distributed("tenant_id")),
    ("webhook_endpoints", Distributed("tenant_id")),
    ("webhook_deliveries", Distributed("tenant_id")),
    ("account_external_ids", Distributed("tenant_id")),
    ("schema_migrations", Local),
];

/// Tables that exist today but are not distributed: `quotes` is dropped first (SCALING.md §2).
const TO_DROP: [&str; 1] = ["quotes"];

/// The keys SCALING.md §3 says do not name the distribution column yet, each with what it
/// becomes there.
const KNOWN_BREAKS: [&str; 2] = ["events_pkey", "idempotency_records_pkey"];

/// The schema's ordinary and partitioned tables (partitions are their parent's).
const SCHEMA_TABLES: &str = "SELECT c.relname::text FROM pg_class c \
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') \
     AND NOT c.relispartition";

/// Every unique index of those tables with its key columns (not its INCLUDE columns).
const UNIQUE_KEYS: &str = "SELECT c.relname::text, i.relname::text, \
     array_agg(a.attname::text ORDER BY k.ord) \
     FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid \
     CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
     WHERE c.relnamespace = current_schema()::regnamespace AND x.indisunique \
     AND NOT c.relispartition AND k.ord <= x.indnkeyatts \
     GROUP BY 1, 2";

/// Every foreign key: its table, name, columns and the table it references.
const FOREIGN_KEYS: &str = "SELECT c.relname::text, f.conname::text, \
     array_agg(a.attname::text ORDER BY k.ord), r.relname::text \
     FROM pg_constraint f JOIN pg_class c ON c.oid = f.conrelid JOIN pg_class r ON r.oid = f.confrelid \
     CROSS JOIN LATERAL unnest(f.conkey) WITH ORDINALITY AS k(attnum, ord) \
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
     WHERE f.contype = 'f' AND c.relnamespace = current_schema()::regnamespace \
     GROUP BY 1, 2, 4";

#[tokio::test]
async fn every_key_of_a_distributed_table_names_its_distribution_column_or_is_a_known_break() {
    let app = TestApp::spawn().await;
    let client = app.pool.get().await.unwrap();
    let placement: BTreeMap<&str, Placement> = TABLES.into_iter().collect();

    let tables: BTreeSet<String> = client
        .query(SCHEMA_TABLES, &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let unplaced: Vec<&String> = tables
        .iter()
        .filter(|table| !placement.contains_key(table.as_str()))
        .filter(|table| !TO_DROP.contains(&table.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "tables not placed in docs/SCALING.md §2 (and in TABLES here): {unplaced:?}"
    );
    let gone: Vec<&str> = placement
        .keys()
        .copied()
        .filter(|table| !tables.contains(*table))
        .collect();
    assert!(gone.is_empty(), "placed but not in the schema: {gone:?}");

    let mut breaks = BTreeSet::new();
    for row in client.query(UNIQUE_KEYS, &[]).await.unwrap() {
        let (table, key, columns): (String, String, Vec<String>) =
            (row.get(0), row.get(1), row.get(2));
        if let Some(Distributed(column)) = placement.get(table.as_str()) {
            if !columns.iter().any(|name| name == column) {
                breaks.insert(key);
            }
        }
    }
    for row in client.query(FOREIGN_KEYS, &[]).await.unwrap() {
        let (table, key, columns, referenced): (String, String, Vec<String>, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let from = placement.get(table.as_str()).copied().unwrap_or(Local);
        let to = placement.get(referenced.as_str()).copied().unwrap_or(Local);
        let fine = match (from, to) {
            // Anything may reference a table every node has.
            (_, Reference) => true,
            // Between distributed tables only through the distribution column.
            (Distributed(column), Distributed(_)) => columns.iter().any(|name| name == column),
            _ => false,
        };
        if !fine && !TO_DROP.contains(&table.as_str()) {
            breaks.insert(key);
        }
    }
    let known: BTreeSet<String> = KNOWN_BREAKS.iter().map(|key| (*key).to_owned()).collect();
    let new: Vec<&String> = breaks.difference(&known).collect();
    let fixed: Vec<&String> = known.difference(&breaks).collect();
    assert!(
        new.is_empty(),
        "keys that do not name their table's distribution column (docs/SCALING.md §3): {new:?}"
    );
    assert!(
        fixed.is_empty(),
        "keys that now follow the rule: remove them from KNOWN_BREAKS and SCALING.md §3: {fixed:?}"
    );
    app.finish().await;
}
