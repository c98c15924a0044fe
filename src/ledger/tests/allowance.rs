//! Allowances: one grant per period, made when the book is first opened in it, expiring at the
//! period's end; nothing back-filled; a replaced rule waits for the next period, a resumed one
//! grants a period nothing was granted for.

use super::*;
use crate::ids::AllowanceId;
use crate::ledger::AllowanceRule;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn rule(
    name: &str,
    source: GrantSource,
    amount: i64,
    every: Every,
    anchor: &str,
) -> AllowanceState {
    let recurrence = Recurrence {
        every,
        anchor: parse_date(anchor).unwrap(),
        zone: parse_zone("Europe/Berlin").unwrap(),
    };
    AllowanceState {
        allowance_id: AllowanceId::now_v7(),
        name: name.to_owned(),
        source,
        amount: c(amount),
        effective_from: AllowanceState::effective_from_when_set(
            None,
            &recurrence,
            at("2025-01-01T00:00:00Z"),
        ),
        recurrence,
        enabled: true,
        granted_period: None,
        granted_until: None,
        created_at: at("2025-01-01T00:00:00Z"),
    }
}

fn daily_free() -> AllowanceState {
    rule(
        "daily-free",
        GrantSource::FreeDaily,
        5,
        Every::Day,
        "2025-01-01",
    )
}

fn monthly_subscription() -> AllowanceState {
    rule(
        "pro",
        GrantSource::Subscription,
        100,
        Every::Month,
        "2025-01-31",
    )
}

fn book_at(now: DateTime<Utc>, allowances: Vec<AllowanceState>) -> AccountBook {
    AccountBook::new(account(SettlePolicy::Debt), Vec::new(), Vec::new(), now)
        .with_allowances(allowances)
}

#[test]
fn the_first_operation_of_a_day_grants_its_credits_once_until_midnight_in_the_rules_zone() {
    let mut book = book_at(at("2025-03-10T12:00:00Z"), vec![daily_free()]);
    let hold = authorize(&mut book, c(2), Duration::minutes(5));
    authorize(&mut book, c(1), Duration::minutes(5));
    let changes = book.clone().into_changes();
    assert_eq!(changes.allowance_grants.len(), 1, "one grant for the day");
    let grant = book
        .grant_state(changes.allowance_grants[0].grant_id)
        .unwrap();
    assert_eq!(grant.amount, c(5));
    assert_eq!(grant.source, GrantSource::FreeDaily);
    // Berlin is UTC+1 in March before the switch: the day runs 23:00Z to 23:00Z.
    assert_eq!(grant.effective_at, at("2025-03-09T23:00:00Z"));
    assert_eq!(grant.expires_at, Some(at("2025-03-10T23:00:00Z")));
    assert_eq!(
        changes.allowances[0].granted_period,
        Some(grant.effective_at)
    );
    assert_eq!(book.available(), c(2));
    assert!(book.hold(hold).is_some());
}

#[test]
fn the_next_day_grants_again_and_the_last_days_credits_expire_unused() {
    let mut book = book_at(at("2025-03-10T12:00:00Z"), vec![daily_free()]);
    book.sweep();
    let today = book.into_changes();
    let mut tomorrow = AccountBook::new(
        account(SettlePolicy::Debt),
        today.grants.clone(),
        Vec::new(),
        at("2025-03-11T08:00:00Z"),
    )
    .with_allowances(today.allowances.clone());
    tomorrow.grant(grant_of(
        GrantSource::Topup,
        c(1),
        at("2025-03-01T00:00:00Z"),
        None,
    ));
    let changes = tomorrow.clone().into_changes();
    assert_eq!(changes.allowance_grants.len(), 1);
    assert_eq!(
        changes.allowance_grants[0].period_start,
        at("2025-03-10T23:00:00Z")
    );
    assert_eq!(
        tomorrow.available(),
        c(6),
        "today's 5 and the top-up; yesterday's 5 expired"
    );
}

#[test]
fn an_idle_account_gets_the_current_period_only() {
    let mut rule = monthly_subscription();
    rule.granted_period = Some(at("2025-01-30T23:00:00Z"));
    let mut book = book_at(at("2025-06-15T00:00:00Z"), vec![rule]);
    book.sweep();
    let changes = book.into_changes();
    assert_eq!(
        changes.allowance_grants.len(),
        1,
        "no back-fill of February to May"
    );
    // The anchor's 31st falls on 31 May (22:00Z in summer time); June has 30 days.
    assert_eq!(
        changes.allowance_grants[0].period_start,
        at("2025-05-30T22:00:00Z")
    );
    assert_eq!(
        changes.grants[0].expires_at,
        Some(at("2025-06-29T22:00:00Z"))
    );
}

#[test]
fn a_book_opened_twice_in_a_period_grants_nothing_the_second_time() {
    let mut first = book_at(at("2025-03-10T12:00:00Z"), vec![daily_free()]);
    first.sweep();
    let stored = first.into_changes().allowances;
    let mut second = book_at(at("2025-03-10T22:59:59Z"), stored);
    second.sweep();
    assert!(second.into_changes().is_empty());
}

#[test]
fn a_paused_rule_grants_nothing_and_a_resumed_one_grants_an_owed_period_once() {
    let mut paused = daily_free();
    paused.enabled = false;
    let now = at("2025-03-10T12:00:00Z");
    let mut book = book_at(now, vec![paused.clone()]);
    book.sweep();
    assert!(book.into_changes().is_empty());

    // Resumed in a period nothing was granted for: that period is owed.
    let mut book = book_at(now, vec![paused.clone()]);
    book.set_allowance(&rule_of(&paused, 5, true));
    assert_eq!(book.available(), c(5));
    // Paused and resumed again the same day: today was granted, so nothing more.
    let stored = book.into_changes().allowances;
    let mut book = book_at(now, stored);
    book.set_allowance(&rule_of(&paused, 5, false));
    book.set_allowance(&rule_of(&paused, 5, true));
    assert_eq!(
        book.available(),
        c(0),
        "the grant made above is not loaded here"
    );
    assert!(book.into_changes().allowance_grants.is_empty());
}

#[test]
fn a_rule_replaced_twice_in_a_period_grants_again_from_the_next() {
    let daily = daily_free();
    let now = at("2025-03-10T12:00:00Z");
    let mut book = book_at(now, vec![daily.clone()]);
    book.sweep();
    let mut monthly = rule_of(&daily, 30, true);
    monthly.recurrence.every = Every::Month;
    book.set_allowance(&monthly);
    book.set_allowance(&rule_of(&daily, 7, true));
    let stored = book.into_changes().allowances;
    let mut tomorrow = book_at(at("2025-03-10T23:00:00Z"), stored);
    tomorrow.sweep();
    assert_eq!(tomorrow.available(), c(7), "no gap after a correction");
}

/// A SetAllowance of `allowance`'s name and recurrence with another amount and state.
fn rule_of(allowance: &AllowanceState, amount: i64, enabled: bool) -> AllowanceRule {
    AllowanceRule {
        new_id: allowance.allowance_id,
        name: allowance.name.clone(),
        source: allowance.source,
        amount: c(amount),
        recurrence: allowance.recurrence,
        enabled,
    }
}

#[test]
fn a_replaced_rule_keeps_the_period_under_way_and_the_new_one_starts_with_the_next() {
    let old = daily_free();
    let now = at("2025-03-10T12:00:00Z");
    let mut book = book_at(now, vec![old.clone()]);
    book.sweep();
    let granted = book.into_changes().allowances.remove(0);
    let bigger = AllowanceState {
        amount: c(50),
        effective_from: AllowanceState::effective_from_when_set(
            Some(&granted),
            &granted.recurrence,
            now,
        ),
        ..granted
    };
    assert_eq!(bigger.due_period(now), None, "today stays the old rule's");
    let mut tomorrow = book_at(at("2025-03-11T00:00:00Z"), vec![bigger]);
    tomorrow.sweep();
    assert_eq!(tomorrow.available(), c(50));
}

#[test]
fn a_new_rule_grants_the_period_under_way_and_nothing_before_its_anchor() {
    let now = at("2025-03-10T12:00:00Z");
    let recurrence = daily_free().recurrence;
    assert_eq!(
        AllowanceState::effective_from_when_set(None, &recurrence, now),
        at("2025-03-09T23:00:00Z")
    );
    let mut later = rule("later", GrantSource::FreeDaily, 5, Every::Day, "2025-04-01");
    later.effective_from = AllowanceState::effective_from_when_set(None, &later.recurrence, now);
    assert_eq!(later.due_period(now), None);
    assert!(later.due_period(at("2025-03-31T22:00:00Z")).is_some());
}

#[test]
fn free_credits_are_spent_before_the_subscription_before_a_top_up() {
    let now = at("2025-03-10T12:00:00Z");
    let mut book = book_at(now, vec![monthly_subscription(), daily_free()]);
    book.grant(grant_of(
        GrantSource::Topup,
        c(10),
        at("2025-03-01T00:00:00Z"),
        None,
    ));
    authorize(&mut book, c(7), Duration::minutes(5));
    let left = |source: GrantSource| {
        book.grants
            .values()
            .filter(|grant| grant.source == source)
            .map(|grant| grant.remaining)
            .sum::<Credits>()
    };
    assert_eq!(left(GrantSource::FreeDaily), c(0));
    assert_eq!(left(GrantSource::Subscription), c(98));
    assert_eq!(left(GrantSource::Topup), c(10));
}

#[test]
fn a_balance_read_counts_the_period_before_any_write() {
    let book = book_at(
        at("2025-03-10T12:00:00Z"),
        vec![daily_free(), monthly_subscription()],
    );
    assert_eq!(book.balance(Duration::zero()).available, c(105));
    assert!(book.into_changes().is_empty(), "a read writes nothing");
}

proptest! {
    #[test]
    fn opening_the_book_at_any_times_grants_each_period_visited_exactly_once(
        by_month in any::<bool>(),
        steps in prop::collection::vec(0_i64..40 * 3600, 1..40),
    ) {
        let mut allowance = if by_month { monthly_subscription() } else { daily_free() };
        let mut now = at("2025-01-31T00:00:00Z");
        let mut granted = Vec::new();
        for step in steps {
            now += Duration::seconds(step * if by_month { 24 } else { 1 });
            let mut book = book_at(now, vec![allowance.clone()]);
            book.sweep();
            let changes = book.into_changes();
            granted.extend(changes.allowance_grants.iter().map(|grant| grant.period_start));
            if let Some(updated) = changes.allowances.into_iter().next() {
                allowance = updated;
            }
            let current = allowance.recurrence.period_at(now).unwrap();
            prop_assert_eq!(granted.last(), Some(&current.start));
        }
        let mut distinct = granted.clone();
        distinct.dedup();
        prop_assert_eq!(distinct, granted);
    }
}

/// One store of an account's rules: `lazy` gives the book only the rules whose `due_from` has
/// come (all of them to set one), as a locked transaction reads them; otherwise all.
struct RuleStore {
    lazy: bool,
    rules: Vec<AllowanceState>,
    granted: Vec<DateTime<Utc>>,
}

impl RuleStore {
    fn new(lazy: bool, rules: Vec<AllowanceState>) -> Self {
        RuleStore {
            lazy,
            rules,
            granted: Vec::new(),
        }
    }

    /// Opens the book at `now` and sets the first rule's `enabled` and amount, or only sweeps.
    fn open(&mut self, now: DateTime<Utc>, set: Option<(bool, i64)>) {
        let book = AccountBook::new(account(SettlePolicy::Debt), Vec::new(), Vec::new(), now);
        let mut book = if self.lazy && set.is_none() {
            let due = self
                .rules
                .iter()
                .filter(|rule| rule.due_from().is_some_and(|from| from <= now))
                .cloned()
                .collect();
            book.with_due_allowances(due)
        } else {
            book.with_allowances(self.rules.clone())
        };
        match set {
            Some((enabled, amount)) => {
                let current = &self.rules[0];
                book.set_allowance(&AllowanceRule {
                    new_id: AllowanceId::now_v7(),
                    name: current.name.clone(),
                    source: current.source,
                    amount: c(amount),
                    recurrence: current.recurrence,
                    enabled,
                });
            }
            None => book.sweep(),
        }
        let changes = book.into_changes();
        self.granted.extend(
            changes
                .allowance_grants
                .iter()
                .map(|grant| grant.period_start),
        );
        for updated in changes.allowances {
            let index = self
                .rules
                .iter()
                .position(|rule| rule.allowance_id == updated.allowance_id)
                .unwrap();
            self.rules[index] = updated;
        }
    }
}

proptest! {
    #[test]
    fn giving_the_book_only_the_rules_due_grants_what_giving_it_all_grants(
        by_month in any::<bool>(),
        steps in prop::collection::vec((0_i64..40 * 3600, 0_u8..8, 1_i64..9), 1..40),
    ) {
        // The rule that is paused, resumed and replaced, and one that only renews.
        let (changed, steady) = if by_month {
            (monthly_subscription(), daily_free())
        } else {
            (daily_free(), monthly_subscription())
        };
        let rules = vec![changed, steady];
        let mut all = RuleStore::new(false, rules.clone());
        let mut due = RuleStore::new(true, rules);
        let mut now = at("2025-01-31T00:00:00Z");
        for (step, action, amount) in steps {
            now += Duration::seconds(step * if by_month { 24 } else { 1 });
            // Mostly operations; now and then the rule is paused, resumed or replaced.
            let set = match action {
                0 => Some((false, amount)),
                1 | 2 => Some((true, amount)),
                _ => None,
            };
            all.open(now, set);
            due.open(now, set);
            prop_assert_eq!(&due.granted, &all.granted);
            prop_assert_eq!(&due.rules, &all.rules);
        }
    }
}
