//! The locked transaction's reads that run with generic plans (planned once per connection,
//! whatever the tables held then) look up keys whatever the statistics: planned on empty,
//! freshly analyzed tables, as on a new database, every scan of their plans is bounded by an
//! index condition. A plan that scanned a table or a whole index would walk a hot account's
//! rows under its lock once the table had grown.

use serde_json::Value;

use crate::helpers::TestApp;

/// Every scan node of `plan` (and of its children), as (node type, relation, index condition).
fn scans(plan: &Value, found: &mut Vec<(String, String, Option<String>)>) {
    let node = plan["Node Type"].as_str().unwrap_or_default().to_owned();
    // A bitmap heap scan is bounded by its bitmap index scans, checked as children.
    let bounded_by_children = node == "Bitmap Heap Scan";
    if node.ends_with("Scan") && plan.get("Relation Name").is_some() && !bounded_by_children
        || node == "Bitmap Index Scan"
    {
        let relation = plan["Relation Name"]
            .as_str()
            .or_else(|| plan["Index Name"].as_str())
            .unwrap_or_default()
            .to_owned();
        let condition = plan["Index Cond"].as_str().map(str::to_owned);
        found.push((node, relation, condition));
    }
    for child in plan["Plans"].as_array().into_iter().flatten() {
        scans(child, found);
    }
}

#[tokio::test]
async fn generic_plans_of_the_locked_reads_look_up_keys_even_planned_on_empty_tables() {
    let app = TestApp::spawn().await;
    let client = app.pool.get().await.unwrap();
    client.batch_execute("VACUUM ANALYZE").await.unwrap();
    client
        .batch_execute("SET enable_seqscan = off; SET plan_cache_mode = force_generic_plan")
        .await
        .unwrap();
    for (index, (name, sql)) in creditgate::store::book::generic_plan_reads()
        .into_iter()
        .enumerate()
    {
        let parameters = client.prepare(sql).await.unwrap().params().len();
        client
            .batch_execute(&format!("PREPARE read_{index} AS {sql}"))
            .await
            .unwrap();
        let nulls = vec!["NULL"; parameters].join(", ");
        let explained = client
            .query_one(
                &format!("EXPLAIN (FORMAT JSON) EXECUTE read_{index}({nulls})"),
                &[],
            )
            .await
            .unwrap();
        let plan: Value = explained.get(0);
        let mut found = Vec::new();
        scans(&plan[0]["Plan"], &mut found);
        assert!(!found.is_empty(), "{name}: no scan in {plan}");
        for (node, relation, condition) in &found {
            assert!(
                node != "Seq Scan" && condition.is_some(),
                "{name}: {node} of {relation} without an index condition: {plan:#}"
            );
        }
    }
    app.finish().await;
}
