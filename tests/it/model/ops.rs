//! The generated operations: what a case does, by index into what exists when it runs, so that
//! any shorter sequence proptest shrinks to still makes sense.

use proptest::prelude::*;
use proptest::sample::Index;
use rust_decimal::Decimal;

use super::reference::Source;

/// One step of a case. Accounts, holds, settlements and keys are picked by index among those
/// that exist when the step runs; a step with nothing to pick is skipped.
#[derive(Debug, Clone)]
pub enum Op {
    CreateAccount {
        cap_at_hold: bool,
    },
    Grant {
        account: Index,
        source: Source,
        amount: Decimal,
        /// Ticks from now; `Some(0)` is a grant already expired (refused, not stored).
        expires_in_ticks: Option<i64>,
        priority: Option<u32>,
        /// Few distinct references, so that repeats happen.
        external_ref: Option<u8>,
    },
    Authorize {
        account: Index,
        amount: Decimal,
        ttl_seconds: u32,
    },
    Extend {
        hold: Pick,
        amount: ExtendAmount,
        ttl_seconds: Option<u32>,
    },
    Settle {
        hold: Pick,
        charge: Charge,
        partial: bool,
    },
    Release {
        hold: Pick,
    },
    Refund {
        settlement: Pick,
        amount: RefundAmount,
    },
    Advance {
        ticks: i64,
        /// Runs the sweeper right after, as the background one may.
        sweep: bool,
    },
    /// The same request again with the same key.
    Retry {
        key: Index,
    },
    /// The same key with another request: of the same RPC, or of another one.
    Reuse {
        key: Index,
        other_rpc: bool,
    },
}

/// Picks one of the last few made (most interesting: still active), or any.
#[derive(Debug, Clone)]
pub struct Pick {
    pub recent: bool,
    pub index: Index,
}

impl Pick {
    pub fn resolve(&self, len: usize) -> Option<usize> {
        match len {
            0 => None,
            _ if self.recent => Some(len - 1 - self.index.index(len.min(3))),
            _ => Some(self.index.index(len)),
        }
    }
}

/// ExtendHold's new total, relative to the hold's amount.
#[derive(Debug, Clone)]
pub enum ExtendAmount {
    Unchanged,
    Same,
    Raise(Decimal),
    /// Half of the hold: refused.
    Lower,
}

/// What a Settle charges.
#[derive(Debug, Clone)]
pub enum Charge {
    /// This percentage of what the hold authorized and has not captured (100 = all of it).
    OfHold(u32),
    Exact(Decimal),
}

/// What a Refund asks for.
#[derive(Debug, Clone)]
pub enum RefundAmount {
    AllLeft,
    /// This percentage of what is left to refund, to 3 places.
    OfLeft(u32),
    Exact(Decimal),
}

/// Seconds the clock moves per tick: every time in a case is a whole number of ticks, far from
/// the milliseconds real time adds between calls.
pub const TICK_SECONDS: i64 = 300;

/// Small amounts with up to 3 decimal places, so sums stay exact and splits across grants happen.
fn amount() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (1i64..=40).prop_map(Decimal::from),
        (1i64..=4_000).prop_map(|cents| Decimal::new(cents, 2)),
        (1i64..=40_000).prop_map(|millis| Decimal::new(millis, 3)),
    ]
}

fn source() -> impl Strategy<Value = Source> {
    proptest::sample::select(Source::ALL.to_vec())
}

/// 0 is the server default (900 s); all are whole ticks.
fn ttl_seconds() -> impl Strategy<Value = u32> {
    proptest::sample::select(vec![0u32, 300, 600, 900, 1_800, 3_600, 86_400])
}

fn pick() -> impl Strategy<Value = Pick> {
    (proptest::bool::weighted(0.7), any::<Index>())
        .prop_map(|(recent, index)| Pick { recent, index })
}

fn grant() -> impl Strategy<Value = Op> {
    (
        any::<Index>(),
        source(),
        amount(),
        prop_oneof![
            2 => Just(None),
            1 => Just(Some(0i64)),
            6 => proptest::sample::select(vec![1i64, 2, 3, 4, 12, 288, 2_016, 2_017]).prop_map(Some),
        ],
        prop_oneof![3 => Just(None), 1 => (0u32..=60).prop_map(Some)],
        prop_oneof![3 => Just(None), 1 => (0u8..4).prop_map(Some)],
    )
        .prop_map(
            |(account, source, amount, expires_in_ticks, priority, external_ref)| Op::Grant {
                account,
                source,
                amount,
                expires_in_ticks,
                priority,
                external_ref,
            },
        )
}

fn charge() -> impl Strategy<Value = Charge> {
    prop_oneof![
        3 => proptest::sample::select(vec![0u32, 30, 50, 99, 100, 100, 101, 150, 300]).prop_map(Charge::OfHold),
        1 => (0u32..=200).prop_map(Charge::OfHold),
        2 => amount().prop_map(Charge::Exact),
    ]
}

fn refund_amount() -> impl Strategy<Value = RefundAmount> {
    prop_oneof![
        2 => Just(RefundAmount::AllLeft),
        2 => (1u32..=100).prop_map(RefundAmount::OfLeft),
        1 => amount().prop_map(RefundAmount::Exact),
    ]
}

fn extend_amount() -> impl Strategy<Value = ExtendAmount> {
    prop_oneof![
        2 => Just(ExtendAmount::Unchanged),
        1 => Just(ExtendAmount::Same),
        3 => amount().prop_map(ExtendAmount::Raise),
        1 => Just(ExtendAmount::Lower),
    ]
}

/// One operation, weighted towards the money path.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<bool>().prop_map(|cap_at_hold| Op::CreateAccount { cap_at_hold }),
        18 => grant(),
        18 => (any::<Index>(), amount(), ttl_seconds()).prop_map(|(account, amount, ttl_seconds)| {
            Op::Authorize { account, amount, ttl_seconds }
        }),
        6 => (pick(), extend_amount(), proptest::option::of(ttl_seconds())).prop_map(
            |(hold, amount, ttl_seconds)| Op::Extend { hold, amount, ttl_seconds }
        ),
        20 => (pick(), charge(), proptest::bool::weighted(0.3)).prop_map(|(hold, charge, partial)| {
            Op::Settle { hold, charge, partial }
        }),
        5 => pick().prop_map(|hold| Op::Release { hold }),
        10 => (pick(), refund_amount()).prop_map(|(settlement, amount)| Op::Refund { settlement, amount }),
        8 => (
            proptest::sample::select(vec![1i64, 1, 2, 3, 4, 12, 288, 2_016, 8_640]),
            proptest::bool::weighted(0.2),
        )
            .prop_map(|(ticks, sweep)| Op::Advance { ticks, sweep }),
        6 => any::<Index>().prop_map(|key| Op::Retry { key }),
        3 => (any::<Index>(), any::<bool>()).prop_map(|(key, other_rpc)| Op::Reuse { key, other_rpc }),
    ]
}

/// A case: an account to start with, then up to `max_ops` operations.
pub fn case(max_ops: usize) -> impl Strategy<Value = Vec<Op>> {
    (any::<bool>(), proptest::collection::vec(op(), 1..=max_ops)).prop_map(
        |(cap_at_hold, mut ops)| {
            ops.insert(0, Op::CreateAccount { cap_at_hold });
            ops
        },
    )
}
