//! Paging ListUsage and ListLedger: any page size walks every item once; runs made and settled
//! between pages make a walk neither miss nor repeat anything that was there at its first
//! page; a page token works only for the tenant, account and filters it was given for.

use chrono::Duration;
use creditgate::proto::v1::{Hold, HoldStatus, TaskType};
use futures::StreamExt as _;

use crate::helpers::TestApp;
use crate::helpers::money::{create_account_request, key};
use crate::helpers::status::assert_invalid_field;
use crate::helpers::time::time;
use crate::helpers::usage::{Filters, Listing, Pager, newest_first, repeated, run};

/// Runs of the walks: more than one default page of 50.
const RUNS: usize = 55;
/// Authorize calls in flight at once while making runs.
const IN_FLIGHT: usize = 4;

/// `count` chat runs of 1 on the account, made a few at once.
async fn runs(app: &TestApp, account_id: &str, count: usize) -> Vec<Hold> {
    futures::stream::iter(0..count)
        .map(|_| app.start_run(account_id, "1", run(TaskType::Chat, "acme/text-1", "p")))
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

#[tokio::test]
async fn pages_of_1_7_and_500_walk_every_run_once_newest_first_and_0_means_50() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("1000").await;
    let holds = runs(&app, &account_id, RUNS).await;
    let pager = Pager::new(&app, Listing::Usage, &account_id);
    let expected = newest_first(&holds);
    for page_size in [1, 7, 500, 0] {
        assert_eq!(
            pager.walk(page_size).await,
            expected,
            "pages of {page_size}"
        );
    }
    let first = pager.page(0, "").await.unwrap();
    assert_eq!(first.ids, expected[..50], "a page of 0 is a page of 50");
    assert_ne!(first.next_page_token, "");
    app.finish().await;
}

#[tokio::test]
async fn pages_of_1_7_and_500_walk_every_journal_entry_once_oldest_first() {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("1000").await;
    runs(&app, &account_id, RUNS).await;
    let pager = Pager::new(&app, Listing::Ledger, &account_id);
    let entries = app.ledger(&account_id, &Filters::default(), 500).await;
    // The grant and each hold: two entries each.
    assert_eq!(entries.len(), 2 + 2 * RUNS);
    let keys: Vec<_> = entries
        .iter()
        .map(|entry| {
            (
                time(entry.created_at.as_ref().unwrap()),
                entry.entry_id.clone(),
            )
        })
        .collect();
    assert!(
        keys.windows(2).all(|pair| pair[0] < pair[1]),
        "oldest first by (created_at, entry_id)"
    );
    let expected: Vec<String> = entries.into_iter().map(|entry| entry.entry_id).collect();
    for page_size in [1, 7, 500, 0] {
        assert_eq!(
            pager.walk(page_size).await,
            expected,
            "pages of {page_size}"
        );
    }
    let first = pager.page(0, "").await.unwrap();
    assert_eq!(first.ids, expected[..50], "a page of 0 is a page of 50");
    app.finish().await;
}

/// Page turns during which runs arrive (after them the walk catches up with the journal).
const TURNS_WITH_ARRIVALS: usize = 4;

/// What a walk in pages of 3 saw while, before each of the first page turns, two runs were
/// made and two runs that existed at the first page were settled (one already listed, one
/// not yet): (ids listed just before, ids walked, ids listed just after).
async fn walk_while_runs_arrive(listing: Listing) -> (Vec<String>, Vec<String>, Vec<String>) {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("1000").await;
    let holds = runs(&app, &account_id, 12).await;
    let pager = Pager::new(&app, listing, &account_id);
    let before = pager.walk(500).await;
    let mut unsettled: Vec<String> = newest_first(&holds);
    let mut walked = Vec::new();
    let mut token = String::new();
    for turn in 0.. {
        let page = pager.page(3, &token).await.unwrap();
        walked.extend(page.ids);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
        if turn >= TURNS_WITH_ARRIVALS {
            continue;
        }
        runs(&app, &account_id, 2).await;
        // The newest and the oldest not yet settled: listed already and not yet, newest first.
        for hold_id in [unsettled.remove(0), unsettled.pop().unwrap()] {
            app.settle(&hold_id, "1", false).await.unwrap();
        }
    }
    let after = pager.walk(500).await;
    app.finish().await;
    (before, walked, after)
}

#[tokio::test]
async fn runs_made_and_settled_while_paging_usage_are_neither_missed_nor_repeated() {
    let (before, walked, after) = walk_while_runs_arrive(Listing::Usage).await;
    assert_eq!(repeated(&walked), Vec::<String>::new(), "repeated");
    assert_eq!(
        walked, before,
        "every run there at the first page, once, and no newer one"
    );
    assert!(after.len() > before.len(), "runs were made while paging");
    assert_eq!(
        after[after.len() - before.len()..],
        before,
        "newer runs come first"
    );
}

#[tokio::test]
async fn entries_written_while_paging_the_journal_are_neither_missed_nor_repeated() {
    let (before, walked, after) = walk_while_runs_arrive(Listing::Ledger).await;
    assert_eq!(repeated(&walked), Vec::<String>::new(), "repeated");
    assert_eq!(
        walked[..before.len()],
        before,
        "every entry there at the first page, once"
    );
    assert!(
        after.len() > before.len(),
        "entries were written while paging"
    );
    assert_eq!(walked, after, "newer entries follow, each once");
}

/// One character of `token` changed, at `position`.
fn altered(token: &str, position: usize) -> String {
    let mut characters: Vec<char> = token.chars().collect();
    characters[position] = if characters[position] == 'A' {
        'B'
    } else {
        'A'
    };
    characters.into_iter().collect()
}

/// A page token of `listing` for an account of two runs (after the first of them), reused with
/// every filter changed in turn, another account, another tenant, altered, and garbage, is
/// INVALID_ARGUMENT naming page_token; with another page size it works.
async fn a_page_token_works_only_where_it_was_given(listing: Listing) {
    let app = TestApp::spawn().await;
    let account_id = app.funded_account("100").await;
    runs(&app, &account_id, 2).await;
    let since = app.now() - Duration::hours(1);
    let until = app.now() + Duration::hours(1);
    let filters = Filters {
        task_type: TaskType::Chat as i32,
        model: "acme/text-1".to_owned(),
        project: "p".to_owned(),
        ..Filters::between(Some(since), Some(until))
    };
    let filters = match listing {
        Listing::Usage => filters,
        Listing::Ledger => Filters::between(Some(since), Some(until)),
    };
    let pager = Pager {
        filters: filters.clone(),
        ..Pager::new(&app, listing, &account_id)
    };
    let all = pager.walk(500).await;
    let token = pager.page(1, "").await.unwrap().next_page_token;
    assert_ne!(token, "");
    let rest = pager.page(500, &token).await.unwrap();
    assert_eq!(rest.ids, all[1..], "another page size may follow a token");

    let mut elsewhere = vec![
        (
            "start_time",
            Filters {
                start_time: Some(since - Duration::seconds(1)),
                ..filters.clone()
            },
        ),
        (
            "no start_time",
            Filters {
                start_time: None,
                ..filters.clone()
            },
        ),
        (
            "end_time",
            Filters {
                end_time: Some(until + Duration::seconds(1)),
                ..filters.clone()
            },
        ),
        (
            "no end_time",
            Filters {
                end_time: None,
                ..filters.clone()
            },
        ),
    ];
    if listing == Listing::Usage {
        elsewhere.extend([
            (
                "task_type",
                Filters {
                    task_type: TaskType::Unspecified as i32,
                    ..filters.clone()
                },
            ),
            (
                "model",
                Filters {
                    model: String::new(),
                    ..filters.clone()
                },
            ),
            (
                "status",
                Filters {
                    status: HoldStatus::Active as i32,
                    ..filters.clone()
                },
            ),
            (
                "project",
                Filters {
                    project: String::new(),
                    ..filters.clone()
                },
            ),
        ]);
    }
    for (changed, filters) in elsewhere {
        let status = Pager {
            filters,
            ..Pager::new(&app, listing, &account_id)
        }
        .page(1, &token)
        .await
        .err()
        .unwrap_or_else(|| panic!("accepted with another {changed}"));
        assert_invalid_field(&status, "INVALID_ARGUMENT", "page_token");
    }

    let other_account = app.funded_account("100").await;
    runs(&app, &other_account, 2).await;
    let other_tenant = app.other_tenant_key().await;
    let their_account = app
        .create_account_as(&other_tenant, create_account_request(&key(), "theirs"))
        .await;
    let other_listing = match listing {
        Listing::Usage => Listing::Ledger,
        Listing::Ledger => Listing::Usage,
    };
    let misused = [
        Pager {
            filters: filters.clone(),
            ..Pager::new(&app, listing, &other_account)
        },
        Pager {
            filters: filters.clone(),
            api_key: other_tenant.clone(),
            ..Pager::new(&app, listing, &their_account)
        },
        Pager::new(&app, other_listing, &account_id),
    ];
    for pager in misused {
        let status = pager.page(1, &token).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "page_token");
    }
    let long_garbage = "x".repeat(2_000);
    let bad_tokens = [
        altered(&token, 0),
        altered(&token, token.chars().count() / 2),
        "garbage".to_owned(),
        "AAAA".to_owned(),
        "!!!!".to_owned(),
        long_garbage,
    ];
    for bad in bad_tokens {
        let status = pager.page(1, &bad).await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "page_token");
    }
    for page_size in [-1, 501, i32::MIN, i32::MAX] {
        let status = pager.page(page_size, "").await.unwrap_err();
        assert_invalid_field(&status, "INVALID_ARGUMENT", "page_size");
    }
    app.finish().await;
}

#[tokio::test]
async fn a_usage_page_token_works_only_for_its_tenant_account_and_filters() {
    a_page_token_works_only_where_it_was_given(Listing::Usage).await;
}

#[tokio::test]
async fn a_ledger_page_token_works_only_for_its_tenant_account_and_range() {
    a_page_token_works_only_where_it_was_given(Listing::Ledger).await;
}
