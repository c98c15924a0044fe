//! Period boundaries in UTC: a new day or month starts spent at zero and keeps the
//! reservations of holds still active; a TOTAL limit never resets; of two limits on one scope
//! the one that would be passed refuses.

use chrono::Duration;
use creditgate::proto::v1::{LimitPeriod, SpendScopeKind};

use crate::helpers::TestApp;
use crate::helpers::limits::{assert_limit_reached, member, next_day, next_month, scope};
use crate::helpers::time::timestamp;

/// Three hours: a hold made an hour before midnight is still active an hour after it.
const ACROSS_MIDNIGHT_SECONDS: u32 = 10_800;

#[tokio::test]
async fn a_new_utc_day_clears_spent_and_keeps_the_reservations_of_active_holds() {
    let app = TestApp::spawn().await;
    // The midnight after next: an hour before it is always ahead of the clock.
    let midnight = next_day(app.now()) + Duration::days(1);
    app.advance_to(midnight - Duration::hours(1));
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    app.limit(&account, &alice, LimitPeriod::Day, "3").await;
    let carried = app
        .scoped_hold(&account, &alice, "1", ACROSS_MIDNIGHT_SECONDS)
        .await;
    let spent = app.scoped_hold(&account, &alice, "2", 0).await;
    app.settle(&spent.hold_id, "2", false).await.unwrap();
    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "2", "1"));

    app.advance(Duration::hours(2));
    let listed = app
        .listed_limit(&account, &alice, LimitPeriod::Day)
        .await
        .unwrap();
    assert_eq!((&*listed.spent, &*listed.reserved), ("0", "1"));
    assert_eq!(listed.period_start, Some(timestamp(midnight)));
    app.scoped_hold(&account, &alice, "2", 0).await;
    let refused = app
        .scoped_authorize(&account, &alice, "0.000000001")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "0", "3"));
    app.settle(&carried.hold_id, "1", false).await.unwrap();
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("3", "1", "2"))
        .await;
    app.finish().await;
}

#[tokio::test]
async fn a_month_limit_resets_on_the_first_a_total_limit_never_and_the_tighter_limit_refuses() {
    let app = TestApp::spawn().await;
    let second_of_month = next_month(app.now()) + Duration::days(1) + Duration::hours(1);
    app.advance_to(second_of_month);
    let account = app.funded_account("1000").await;
    let alice = member("alice");
    let project = scope(SpendScopeKind::Project, "p");
    app.limit(&account, &alice, LimitPeriod::Day, "3").await;
    app.limit(&account, &alice, LimitPeriod::Month, "5").await;
    app.limit(&account, &project, LimitPeriod::Total, "4").await;

    app.spend(&account, &alice, "3").await;
    app.spend(&account, &project, "4").await;
    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Day, ("3", "3", "0"));
    let refused = app
        .scoped_authorize(&account, &project, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &project, LimitPeriod::Total, ("4", "4", "0"));

    // The third: the day starts afresh, the month goes on.
    app.advance(Duration::days(1));
    app.spend(&account, &alice, "2").await;
    app.assert_limit(&account, &alice, LimitPeriod::Day, ("3", "2", "0"))
        .await;
    app.assert_limit(&account, &alice, LimitPeriod::Month, ("5", "5", "0"))
        .await;
    let refused = app
        .scoped_authorize(&account, &alice, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &alice, LimitPeriod::Month, ("5", "5", "0"));

    let first_of_next = next_month(second_of_month);
    app.advance_to(first_of_next + Duration::hours(1));
    let month = app
        .listed_limit(&account, &alice, LimitPeriod::Month)
        .await
        .unwrap();
    assert_eq!((&*month.spent, &*month.reserved), ("0", "0"));
    assert_eq!(month.period_start, Some(timestamp(first_of_next)));
    app.spend(&account, &alice, "3").await;
    let total = app
        .listed_limit(&account, &project, LimitPeriod::Total)
        .await
        .unwrap();
    assert_eq!((&*total.spent, total.period_start), ("4", None));
    let refused = app
        .scoped_authorize(&account, &project, "1")
        .await
        .unwrap_err();
    assert_limit_reached(&refused, &project, LimitPeriod::Total, ("4", "4", "0"));
    app.finish().await;
}
