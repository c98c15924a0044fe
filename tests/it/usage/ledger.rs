//! ListLedger: the journal of an account's life (grants, a hold captured and the rest released,
//! a refund, a release, and a hold and a grant expired by moving the clock) listed oldest
//! first as stored, each entry with its references, each transaction summing to zero.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;
use creditgate::proto::v1::{
    GrantRequest, GrantSource, LedgerAccount, LedgerEntry, MovementKind, TaskType,
};
use rust_decimal::Decimal;

use crate::helpers::TestApp;
use crate::helpers::money::{grant_request, key, refund, release_request};
use crate::helpers::time::{time, timestamp};
use crate::helpers::usage::{Filters, credits, decimal, run};

/// Entries per page: the account's few dozen entries over several pages.
const PAGE_SIZE: i32 = 4;

/// The account's journal as stored, in the order ListLedger must list it.
async fn stored_journal(app: &TestApp, account_id: &str) -> Vec<LedgerEntry> {
    let client = app.pool.get().await.unwrap();
    let account: uuid::Uuid = account_id.parse().unwrap();
    let text = |id: Option<uuid::Uuid>| id.map(|id| id.to_string()).unwrap_or_default();
    client
        .query(
            "SELECT entry_id, transaction_id, ledger_account, amount, kind, hold_id, grant_id, \
             settlement_id, refund_id, created_at FROM journal_entries WHERE account_id = $1 \
             ORDER BY created_at, entry_id",
            &[&account],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| LedgerEntry {
            entry_id: row.get::<_, uuid::Uuid>(0).to_string(),
            transaction_id: row.get::<_, uuid::Uuid>(1).to_string(),
            ledger_account: LedgerAccount::from_str_name(&format!(
                "LEDGER_ACCOUNT_{}",
                row.get::<_, String>(2)
            ))
            .unwrap() as i32,
            amount: credits(row.get::<_, Decimal>(3)),
            kind: MovementKind::from_str_name(&format!("MOVEMENT_KIND_{}", row.get::<_, String>(4)))
                .unwrap() as i32,
            hold_id: text(row.get(5)),
            grant_id: text(row.get(6)),
            settlement_id: text(row.get(7)),
            refund_id: text(row.get(8)),
            created_at: Some(timestamp(row.get(9))),
        })
        .collect()
}

/// What the entries of one movement kind add up to on each ledger account, and the ids they
/// name: (kind, [(ledger account, sum)], hold ids, grant ids, settlement ids, refund ids).
type Movement = (
    MovementKind,
    Vec<(LedgerAccount, String)>,
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<String>,
    BTreeSet<String>,
);

fn movement(entries: &[LedgerEntry], kind: MovementKind) -> Movement {
    let of_kind: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|entry| entry.kind() == kind)
        .collect();
    let mut sums: BTreeMap<i32, Decimal> = BTreeMap::new();
    for entry in &of_kind {
        *sums.entry(entry.ledger_account).or_default() += decimal(&entry.amount);
    }
    let named = |id: fn(&LedgerEntry) -> &String| -> BTreeSet<String> {
        of_kind
            .iter()
            .map(|entry| id(entry).clone())
            .filter(|id| !id.is_empty())
            .collect()
    };
    (
        kind,
        sums.into_iter()
            .map(|(ledger, sum)| (LedgerAccount::try_from(ledger).unwrap(), credits(sum)))
            .collect(),
        named(|entry| &entry.hold_id),
        named(|entry| &entry.grant_id),
        named(|entry| &entry.settlement_id),
        named(|entry| &entry.refund_id),
    )
}

fn set<Id: AsRef<str>>(ids: &[Id]) -> BTreeSet<String> {
    ids.iter().map(|id| id.as_ref().to_owned()).collect()
}

#[tokio::test]
async fn the_journal_is_listed_oldest_first_as_stored_with_every_reference() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let purchase = app.grant(&account_id, GrantSource::Purchase, "100").await;
    let purchase = purchase.grant.unwrap().grant_id;
    // Spent first (promo before purchase), expiring in an hour.
    let promo = app
        .grant_request(GrantRequest {
            source: GrantSource::Promo as i32,
            expires_at: Some(timestamp(app.now() + Duration::hours(1))),
            ..grant_request(&account_id, &key(), "20")
        })
        .await
        .unwrap()
        .grant
        .unwrap()
        .grant_id;
    let chat = run(TaskType::Chat, "acme/text-1", "");
    let settled = app.start_run(&account_id, "10", chat.clone()).await.hold_id;
    let settlement = app.settle(&settled, "6", false).await.unwrap();
    let settlement = settlement.settlement.unwrap().settlement_id;
    let refunded = refund(&app, &settlement, "2")
        .await
        .unwrap()
        .refund
        .unwrap();
    let expiring = app
        .start_run_for(&account_id, "5", chat.clone(), 60)
        .await
        .hold_id;
    let released = app.start_run(&account_id, "1", chat).await.hold_id;
    app.credit()
        .release(release_request(&released, &key(), "cancelled"))
        .await
        .unwrap();
    let before_expiry = app.now();
    app.advance(Duration::hours(2));
    app.sweep().await;

    let entries = app
        .ledger(&account_id, &Filters::default(), PAGE_SIZE)
        .await;
    assert_eq!(entries, stored_journal(&app, &account_id).await);
    let keys: Vec<_> = entries
        .iter()
        .map(|entry| (time(entry.created_at.as_ref().unwrap()), &entry.entry_id))
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first"
    );
    let mut transactions: BTreeMap<&str, Decimal> = BTreeMap::new();
    for entry in &entries {
        *transactions.entry(&entry.transaction_id).or_default() += decimal(&entry.amount);
    }
    for (transaction, sum) in transactions {
        assert_eq!(sum, Decimal::ZERO, "transaction {transaction}");
    }
    assert_eq!(
        (entries[0].kind(), entries[0].grant_id.as_str()),
        (MovementKind::Grant, purchase.as_str()),
        "the first grant comes first"
    );

    use LedgerAccount::{Available, Expired, Held, Issued, Revenue};
    let none = BTreeSet::new;
    let both = [promo.as_str(), purchase.as_str()];
    let holds = [settled.as_str(), expiring.as_str(), released.as_str()];
    let expected: Vec<Movement> = vec![
        (
            MovementKind::Grant,
            vec![(Available, "120".into()), (Issued, "-120".into())],
            none(),
            set(&both),
            none(),
            none(),
        ),
        (
            MovementKind::Hold,
            vec![(Available, "-16".into()), (Held, "16".into())],
            set(&holds),
            set(&[&promo]),
            none(),
            none(),
        ),
        (
            MovementKind::Capture,
            vec![(Held, "-6".into()), (Revenue, "6".into())],
            set(&[&settled]),
            set(&[&promo]),
            set(&[&settlement]),
            none(),
        ),
        (
            MovementKind::Release,
            vec![(Available, "10".into()), (Held, "-10".into())],
            set(&holds),
            set(&[&promo]),
            movement(&entries, MovementKind::Release).4,
            none(),
        ),
        (
            MovementKind::Refund,
            vec![(Available, "2".into()), (Revenue, "-2".into())],
            set(&[&settled]),
            set(&[&promo]),
            set(&[&settlement]),
            set(&[&refunded.refund_id]),
        ),
        (
            MovementKind::Expiry,
            vec![(Available, "-16".into()), (Expired, "16".into())],
            none(),
            set(&[&promo]),
            none(),
            none(),
        ),
    ];
    let kinds = expected.iter().map(|movement| movement.0);
    let found: Vec<Movement> = kinds.map(|kind| movement(&entries, kind)).collect();
    assert_eq!(found, expected);
    let others: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|entry| !expected.iter().any(|movement| movement.0 == entry.kind()))
        .collect();
    assert!(others.is_empty(), "no other movement: {others:#?}");

    // The range is on when the entries were written: the expiry is all after `before_expiry`.
    let range = Filters::between(None, Some(before_expiry));
    let before: Vec<LedgerEntry> = app.ledger(&account_id, &range, PAGE_SIZE).await;
    let expected_before: Vec<LedgerEntry> = entries
        .iter()
        .filter(|entry| time(entry.created_at.as_ref().unwrap()) < before_expiry)
        .cloned()
        .collect();
    assert_eq!(before, expected_before);
    assert!(
        before
            .iter()
            .all(|entry| entry.kind() != MovementKind::Expiry)
    );
    let range = Filters::between(Some(before_expiry), None);
    let after = app.ledger(&account_id, &range, PAGE_SIZE).await;
    assert_eq!(after, entries[before.len()..]);
    app.finish().await;
}
