//! The random operations of a property run, and their strategies.

use super::*;

/// What a settle's total is, relative to the hold's outstanding reservation.
#[derive(Debug, Clone)]
pub(super) enum Total {
    Exact,
    Below(Credits),
    Above(Credits),
    /// Above the hold and everything spendable: debt or write-off.
    AboveAll(Credits),
    Raw(Credits),
}

#[derive(Debug, Clone)]
pub(super) enum Change {
    Keep,
    Raise(Credits),
    Lower(Credits),
}

#[derive(Debug, Clone)]
pub(super) enum RefundAmount {
    Rest,
    UpToRefundable(Credits),
    Raw(Credits),
}

/// Which hold an operation is about: any hold made so far, or (mostly) an active one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pick {
    pub(super) index: usize,
    pub(super) active: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Grant {
        source: GrantSource,
        priority: Option<i32>,
        starts_in: i64,
        expires_in: Option<i64>,
        amount: Credits,
    },
    Authorize {
        amount: Credits,
        ttl: i64,
    },
    Extend {
        pick: Pick,
        change: Change,
        ttl: Option<i64>,
    },
    Settle {
        pick: Pick,
        total: Total,
        partial: bool,
    },
    Release {
        pick: Pick,
    },
    Refund {
        pick: usize,
        amount: RefundAmount,
        expires_in: i64,
    },
    Advance {
        minutes: i64,
    },
    Sweep,
    Balance,
}

/// Credits below `max_units` with 0 to 9 decimals.
fn credits(max_units: i64) -> impl Strategy<Value = Credits> {
    (0..max_units, 0u32..=9, any::<i64>()).prop_map(|(units, scale, fraction)| {
        let unit = 10i64.pow(scale);
        Credits::from_decimal(Decimal::new(
            units * unit + fraction.rem_euclid(unit),
            scale,
        ))
    })
}

fn pick() -> impl Strategy<Value = Pick> {
    (any::<usize>(), prop::bool::weighted(0.8)).prop_map(|(index, active)| Pick { index, active })
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let source = prop::sample::select(vec![
        GrantSource::FreeDaily,
        GrantSource::Subscription,
        GrantSource::Purchase,
        GrantSource::Topup,
        GrantSource::Promo,
        GrantSource::Refund,
    ]);
    let grant = (
        source,
        prop::option::weighted(0.3, 0..60i32),
        prop_oneof![4 => Just(0i64), 1 => 1..120i64],
        prop::option::weighted(0.6, -10..600i64),
        credits(30),
    )
        .prop_map(
            |(source, priority, starts_in, expires_in, amount)| Op::Grant {
                source,
                priority,
                starts_in,
                expires_in,
                amount,
            },
        );
    let authorize =
        (credits(25), 1..240i64).prop_map(|(amount, ttl)| Op::Authorize { amount, ttl });
    let change = prop_oneof![
        Just(Change::Keep),
        credits(10).prop_map(Change::Raise),
        credits(5).prop_map(Change::Lower),
    ];
    let extend = (pick(), change, prop::option::of(-5..240i64))
        .prop_map(|(pick, change, ttl)| Op::Extend { pick, change, ttl });
    let total = prop_oneof![
        Just(Total::Exact),
        credits(10).prop_map(Total::Below),
        credits(15).prop_map(Total::Above),
        credits(5).prop_map(Total::AboveAll),
        credits(30).prop_map(Total::Raw),
    ];
    let settle =
        (pick(), total, prop::bool::weighted(0.3)).prop_map(|(pick, total, partial)| Op::Settle {
            pick,
            total,
            partial,
        });
    let release = pick().prop_map(|pick| Op::Release { pick });
    let refund_amount = prop_oneof![
        Just(RefundAmount::Rest),
        credits(10).prop_map(RefundAmount::UpToRefundable),
        credits(20).prop_map(RefundAmount::Raw),
    ];
    let refund =
        (any::<usize>(), refund_amount, -5..600i64).prop_map(|(pick, amount, expires_in)| {
            Op::Refund {
                pick,
                amount,
                expires_in,
            }
        });
    let advance = prop_oneof![1..30i64, 30..300i64].prop_map(|minutes| Op::Advance { minutes });
    prop_oneof![
        4 => grant,
        4 => authorize,
        1 => extend,
        4 => settle,
        1 => release,
        2 => refund,
        2 => advance,
        1 => Just(Op::Sweep),
        1 => Just(Op::Balance),
    ]
}
