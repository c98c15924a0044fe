//! Cursor classification, snapshots and position order.

use super::*;

const fn at(tx: i64, seq: i32) -> Position {
    Position { tx, seq }
}

#[test]
fn a_cursor_is_expired_only_when_events_after_it_were_pruned() {
    let pruned = Some(at(10, 2));
    let oldest = Some(at(11, 0));
    assert_eq!(
        classify(true, at(12, 0), pruned, oldest),
        CursorCheck::Valid
    );
    assert_eq!(
        classify(false, at(10, 2), pruned, oldest),
        CursorCheck::Valid
    );
    assert_eq!(
        classify(false, at(10, 1), pruned, oldest),
        CursorCheck::Expired(oldest)
    );
    assert_eq!(
        classify(false, at(12, 5), pruned, oldest),
        CursorCheck::Unknown
    );
    assert_eq!(
        classify(false, at(3, 0), None, oldest),
        CursorCheck::Unknown
    );
}

#[test]
fn a_snapshot_has_ended_what_is_older_than_it_and_not_running() {
    let ended = Ended {
        xmin: 10,
        xmax: 14,
        running: vec![10, 12],
    };
    let ended_txs: Vec<i64> = (8..16).filter(|tx| ended.includes(*tx)).collect();
    assert_eq!(ended_txs, [8, 9, 11, 13]);
    assert_eq!(ended.start(), Position::before_tx(10));
}

#[test]
fn positions_order_by_transaction_then_place() {
    assert!(at(5, 9) < at(6, 0));
    assert!(Position::before_tx(6) < at(6, 0));
    assert!(at(5, 9) < Position::before_tx(6));
}
