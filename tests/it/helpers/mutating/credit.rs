//! The CreditService cases.

use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, ExtendHoldRequest, ExtendHoldResponse, HoldStatus,
    RefundRequest, RefundResponse, ReleaseRequest, ReleaseResponse, SettleRequest, SettleResponse,
};
use futures::future::BoxFuture;

use super::{Mutating, Naming, objects};
use crate::helpers::TestApp;
use crate::helpers::money::{
    Objects, authorize_request, extend_request, refund_request, release_request, settle_request,
};
use crate::helpers::snapshot::{HoldRow, SettlementRow, Snapshot};

pub struct Authorize;

impl Mutating for Authorize {
    const RPC: &'static str = "CreditService/Authorize";
    type Subject = Objects;
    type Request = AuthorizeRequest;
    type Response = AuthorizeResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    fn request(objects: &Objects, key: &str) -> AuthorizeRequest {
        authorize_request(&objects.account_id, key, "10")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, AuthorizeRequest)> {
        let longer = AuthorizeRequest {
            ttl_seconds: 60,
            ..Self::request(objects, key)
        };
        vec![
            ("amount", authorize_request(&objects.account_id, key, "11")),
            ("ttl_seconds", longer),
        ]
    }

    sent_by!(credit.authorize);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &AuthorizeResponse) {
        let account = books.account_mut(&objects.account_id);
        account.shift("-10", "10");
        assert_eq!(response.available, account.available, "{response:?}");
        let hold = response.hold.as_ref().unwrap();
        assert_eq!(
            (hold.amount.as_str(), hold.status()),
            ("10", HoldStatus::Active)
        );
        books
            .holds
            .insert(hold.hold_id.clone(), HoldRow::active("10"));
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<AuthorizeRequest>> {
        Some(Naming {
            field: "account_id",
            not_found: "ACCOUNT_NOT_FOUND",
            request: AuthorizeRequest {
                account_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<AuthorizeRequest> {
        Some(authorize_request(&objects.account_id, key, amount))
    }
}

pub struct ExtendHold;

impl Mutating for ExtendHold {
    const RPC: &'static str = "CreditService/ExtendHold";
    /// Empty: the amount stays as it is.
    const OWN_AMOUNTS: &'static [&'static str] = &[""];
    type Subject = Objects;
    type Request = ExtendHoldRequest;
    type Response = ExtendHoldResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    fn request(objects: &Objects, key: &str) -> ExtendHoldRequest {
        extend_request(&objects.hold_id, key, "15", 0)
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, ExtendHoldRequest)> {
        vec![
            ("amount", extend_request(&objects.hold_id, key, "16", 0)),
            (
                "hold_id",
                extend_request(&objects.spare_hold_id, key, "15", 0),
            ),
        ]
    }

    sent_by!(credit.extend_hold);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &ExtendHoldResponse) {
        let account = books.account_mut(&objects.account_id);
        account.shift("-5", "5");
        assert_eq!(response.available, account.available, "{response:?}");
        assert_eq!(response.hold.as_ref().unwrap().amount, "15", "{response:?}");
        books.hold_mut(&objects.hold_id).amount = "15".to_owned();
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<ExtendHoldRequest>> {
        Some(Naming {
            field: "hold_id",
            not_found: "HOLD_NOT_FOUND",
            request: ExtendHoldRequest {
                hold_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<ExtendHoldRequest> {
        Some(extend_request(&objects.hold_id, key, amount, 0))
    }

    fn on_account(
        objects: &Objects,
        key: &str,
        account_id: Option<&str>,
    ) -> Option<ExtendHoldRequest> {
        Some(ExtendHoldRequest {
            account_id: account_id.unwrap_or(&objects.account_id).to_owned(),
            ..Self::request(objects, key)
        })
    }
}

pub struct Settle;

impl Mutating for Settle {
    const RPC: &'static str = "CreditService/Settle";
    /// Zero: the run cost nothing.
    const OWN_AMOUNTS: &'static [&'static str] = &["0"];
    type Subject = Objects;
    type Request = SettleRequest;
    type Response = SettleResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    /// Above the hold of 10: 2 come from the balance.
    fn request(objects: &Objects, key: &str) -> SettleRequest {
        settle_request(&objects.hold_id, key, "12")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, SettleRequest)> {
        vec![
            ("amount", settle_request(&objects.hold_id, key, "6")),
            ("hold_id", settle_request(&objects.spare_hold_id, key, "12")),
        ]
    }

    sent_by!(credit.settle);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &SettleResponse) {
        books.account_mut(&objects.account_id).shift("-2", "-10");
        let hold = books.hold_mut(&objects.hold_id);
        hold.status = "SETTLED".to_owned();
        hold.captured = "12".to_owned();
        let settlement = SettlementRow {
            total: "12".to_owned(),
            refunded: "0".to_owned(),
        };
        let settled = response.settlement.as_ref().unwrap();
        let figures = (
            &*settled.from_hold,
            &*settled.from_balance,
            &*settled.released,
        );
        assert_eq!(figures, ("10", "2", "0"), "{settled:?}");
        books
            .settlements
            .insert(settled.settlement_id.clone(), settlement);
    }

    fn naming(_: &Objects, key: &str, id: &str) -> Option<Naming<SettleRequest>> {
        Some(Naming {
            field: "hold_id",
            not_found: "HOLD_NOT_FOUND",
            request: settle_request(id, key, "12"),
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<SettleRequest> {
        Some(settle_request(&objects.hold_id, key, amount))
    }

    fn on_account(objects: &Objects, key: &str, account_id: Option<&str>) -> Option<SettleRequest> {
        Some(SettleRequest {
            account_id: account_id.unwrap_or(&objects.account_id).to_owned(),
            ..Self::request(objects, key)
        })
    }
}

pub struct Release;

impl Mutating for Release {
    const RPC: &'static str = "CreditService/Release";
    type Subject = Objects;
    type Request = ReleaseRequest;
    type Response = ReleaseResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    fn request(objects: &Objects, key: &str) -> ReleaseRequest {
        release_request(&objects.hold_id, key, "run failed")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, ReleaseRequest)> {
        vec![
            (
                "hold_id",
                release_request(&objects.spare_hold_id, key, "run failed"),
            ),
            (
                "reason",
                release_request(&objects.hold_id, key, "another reason"),
            ),
        ]
    }

    sent_by!(credit.release);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &ReleaseResponse) {
        let hold = response.hold.as_ref().unwrap();
        assert_eq!(
            (response.released.as_str(), hold.status()),
            ("10", HoldStatus::Released),
            "{response:?}"
        );
        books.account_mut(&objects.account_id).shift("10", "-10");
        books.hold_mut(&objects.hold_id).status = "RELEASED".to_owned();
    }

    fn naming(_: &Objects, key: &str, id: &str) -> Option<Naming<ReleaseRequest>> {
        Some(Naming {
            field: "hold_id",
            not_found: "HOLD_NOT_FOUND",
            request: release_request(id, key, "run failed"),
        })
    }

    fn on_account(
        objects: &Objects,
        key: &str,
        account_id: Option<&str>,
    ) -> Option<ReleaseRequest> {
        Some(ReleaseRequest {
            account_id: account_id.unwrap_or(&objects.account_id).to_owned(),
            ..Self::request(objects, key)
        })
    }
}

pub struct Refund;

impl Mutating for Refund {
    const RPC: &'static str = "CreditService/Refund";
    /// Empty: all that is left.
    const OWN_AMOUNTS: &'static [&'static str] = &[""];
    type Subject = Objects;
    type Request = RefundRequest;
    type Response = RefundResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    /// Of the 5 captured.
    fn request(objects: &Objects, key: &str) -> RefundRequest {
        refund_request(&objects.settlement_id, key, "4")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, RefundRequest)> {
        let why = RefundRequest {
            reason: "another reason".to_owned(),
            ..Self::request(objects, key)
        };
        vec![
            ("amount", refund_request(&objects.settlement_id, key, "3")),
            ("reason", why),
        ]
    }

    sent_by!(credit.refund);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &RefundResponse) {
        books.account_mut(&objects.account_id).shift("4", "0");
        let settlement = books.settlements.get_mut(&objects.settlement_id).unwrap();
        settlement.refunded = "4".to_owned();
        let refund = response.refund.as_ref().unwrap();
        assert_eq!(refund.amount, "4", "{refund:?}");
        books
            .refunds
            .insert(refund.refund_id.clone(), "4".to_owned());
    }

    fn naming(_: &Objects, key: &str, id: &str) -> Option<Naming<RefundRequest>> {
        Some(Naming {
            field: "settlement_id",
            not_found: "SETTLEMENT_NOT_FOUND",
            request: refund_request(id, key, "4"),
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<RefundRequest> {
        Some(refund_request(&objects.settlement_id, key, amount))
    }

    fn on_account(objects: &Objects, key: &str, account_id: Option<&str>) -> Option<RefundRequest> {
        Some(RefundRequest {
            account_id: account_id.unwrap_or(&objects.account_id).to_owned(),
            ..Self::request(objects, key)
        })
    }
}
