//! The AccountService cases.

use creditgate::proto::v1::{
    AccountStatus, AllowancePeriod, CreateAccountRequest, CreateAccountResponse, GrantRequest,
    GrantResponse, GrantSource, LimitPeriod, SetAllowanceRequest, SetAllowanceResponse,
    SetSpendLimitRequest, SetSpendLimitResponse, SpendScopeKind, UpdateAccountRequest,
    UpdateAccountResponse,
};
use futures::future::BoxFuture;

use super::{Mutating, Naming, objects};
use crate::helpers::TestApp;
use crate::helpers::money::{
    Objects, allowance_request, create_account_request, grant_request, spend_limit_request,
};
use crate::helpers::snapshot::{AccountState, Snapshot, allowance_grant};
use crate::helpers::time::time;

pub struct Grant;

impl Mutating for Grant {
    const RPC: &'static str = "AccountService/Grant";
    type Subject = Objects;
    type Request = GrantRequest;
    type Response = GrantResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    fn request(objects: &Objects, key: &str) -> GrantRequest {
        grant_request(&objects.account_id, key, "25")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, GrantRequest)> {
        let topup = GrantRequest {
            source: GrantSource::Topup as i32,
            ..Self::request(objects, key)
        };
        vec![
            ("amount", grant_request(&objects.account_id, key, "26")),
            ("source", topup),
        ]
    }

    sent_by!(account.grant);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &GrantResponse) {
        let account = books.account_mut(&objects.account_id);
        account.shift("25", "0");
        assert_eq!(response.available, account.available, "{response:?}");
        let grant_id = response.grant.as_ref().unwrap().grant_id.clone();
        books.grants.insert(grant_id, "25".to_owned());
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<GrantRequest>> {
        Some(Naming {
            field: "account_id",
            not_found: "ACCOUNT_NOT_FOUND",
            request: GrantRequest {
                account_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<GrantRequest> {
        Some(grant_request(&objects.account_id, key, amount))
    }
}

pub struct CreateAccount;

impl Mutating for CreateAccount {
    const RPC: &'static str = "AccountService/CreateAccount";
    type Subject = ();
    type Request = CreateAccountRequest;
    type Response = CreateAccountResponse;

    fn prepare(_: &TestApp) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request((): &(), key: &str) -> CreateAccountRequest {
        create_account_request(key, &format!("customer-{key}"))
    }

    fn variants((): &(), key: &str) -> Vec<(&'static str, CreateAccountRequest)> {
        let other = create_account_request(key, &format!("other-{key}"));
        let user = CreateAccountRequest {
            entitlements: vec!["pro".to_owned()],
            ..Self::request(&(), key)
        };
        vec![("external_id", other), ("entitlements", user)]
    }

    sent_by!(account.create_account);

    fn apply(books: &mut Snapshot, (): &(), response: &CreateAccountResponse) {
        let account = response.account.clone().unwrap();
        assert!(account.external_id.starts_with("customer-"), "{account:?}");
        let account_id = account.account_id.clone();
        books
            .accounts
            .insert(account_id, AccountState::new(account));
    }
}

pub struct UpdateAccount;

impl Mutating for UpdateAccount {
    const RPC: &'static str = "AccountService/UpdateAccount";
    type Subject = Objects;
    type Request = UpdateAccountRequest;
    type Response = UpdateAccountResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    fn request(objects: &Objects, key: &str) -> UpdateAccountRequest {
        UpdateAccountRequest {
            account_id: objects.account_id.clone(),
            idempotency_key: key.to_owned(),
            low_balance_threshold: Some("5".to_owned()),
            ..UpdateAccountRequest::default()
        }
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, UpdateAccountRequest)> {
        let threshold = UpdateAccountRequest {
            low_balance_threshold: Some("6".to_owned()),
            ..Self::request(objects, key)
        };
        let suspend = UpdateAccountRequest {
            status: Some(AccountStatus::Suspended as i32),
            ..Self::request(objects, key)
        };
        vec![("low_balance_threshold", threshold), ("status", suspend)]
    }

    sent_by!(account.update_account);

    fn apply(books: &mut Snapshot, objects: &Objects, response: &UpdateAccountResponse) {
        let account = &mut books.account_mut(&objects.account_id).account;
        account.low_balance_threshold = "5".to_owned();
        // When it changed is the server's to say; that it changed is checked.
        let updated_at = response.account.as_ref().unwrap().updated_at;
        assert_ne!(updated_at, account.updated_at, "updated_at did not move");
        account.updated_at = updated_at;
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<UpdateAccountRequest>> {
        Some(Naming {
            field: "account_id",
            not_found: "ACCOUNT_NOT_FOUND",
            request: UpdateAccountRequest {
                account_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }
}

pub struct SetAllowance;

impl Mutating for SetAllowance {
    const RPC: &'static str = "AccountService/SetAllowance";
    type Subject = Objects;
    type Request = SetAllowanceRequest;
    type Response = SetAllowanceResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    /// A new allowance of 5 free credits a UTC day.
    fn request(objects: &Objects, key: &str) -> SetAllowanceRequest {
        allowance_request(&objects.account_id, key, "daily-free", "5")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, SetAllowanceRequest)> {
        let monthly = SetAllowanceRequest {
            period: AllowancePeriod::Month as i32,
            ..Self::request(objects, key)
        };
        vec![
            (
                "amount",
                allowance_request(&objects.account_id, key, "daily-free", "6"),
            ),
            (
                "name",
                allowance_request(&objects.account_id, key, "daily-bonus", "5"),
            ),
            ("period", monthly),
        ]
    }

    sent_by!(account.set_allowance);

    /// The rule is listed as answered, and the day under way is granted at once.
    fn apply(books: &mut Snapshot, objects: &Objects, response: &SetAllowanceResponse) {
        let allowance = response.allowance.clone().unwrap();
        let stored = (
            allowance.name.as_str(),
            allowance.source(),
            allowance.amount.as_str(),
            allowance.period(),
            allowance.time_zone.as_str(),
            allowance.enabled,
        );
        let day = AllowancePeriod::Day;
        let asked = ("daily-free", GrantSource::FreeDaily, "5", day, "UTC", true);
        assert_eq!(stored, asked, "{allowance:?}");
        // A new rule's first period is the one under way, granted in the same call.
        let period_start = time(allowance.effective_from.as_ref().unwrap());
        let granted = allowance_grant(&allowance.allowance_id, period_start);
        books.allowance_grants.insert(granted, "5".to_owned());
        let account = books.account_mut(&objects.account_id);
        account.shift("5", "0");
        account.allowances.push(allowance);
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<SetAllowanceRequest>> {
        Some(Naming {
            field: "account_id",
            not_found: "ACCOUNT_NOT_FOUND",
            request: SetAllowanceRequest {
                account_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<SetAllowanceRequest> {
        Some(allowance_request(
            &objects.account_id,
            key,
            "daily-free",
            amount,
        ))
    }
}

pub struct SetSpendLimit;

impl Mutating for SetSpendLimit {
    const RPC: &'static str = "AccountService/SetSpendLimit";
    const AMOUNT_FIELD: &'static str = "limit";
    /// Zero: nothing may be spent. Empty: the limit is removed.
    const OWN_AMOUNTS: &'static [&'static str] = &["0", ""];
    type Subject = Objects;
    type Request = SetSpendLimitRequest;
    type Response = SetSpendLimitResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Objects> {
        objects(app)
    }

    /// A new limit of 50 a UTC day for the member "alice".
    fn request(objects: &Objects, key: &str) -> SetSpendLimitRequest {
        spend_limit_request(&objects.account_id, key, "alice", "50")
    }

    fn variants(objects: &Objects, key: &str) -> Vec<(&'static str, SetSpendLimitRequest)> {
        let total = SetSpendLimitRequest {
            period: LimitPeriod::Total as i32,
            ..Self::request(objects, key)
        };
        vec![
            (
                "limit",
                spend_limit_request(&objects.account_id, key, "alice", "60"),
            ),
            (
                "scope",
                spend_limit_request(&objects.account_id, key, "bob", "50"),
            ),
            ("period", total),
        ]
    }

    sent_by!(account.set_spend_limit);

    /// The limit is listed as answered; no balance moves, and none of the account's holds
    /// names a scope, so nothing counts against it.
    fn apply(books: &mut Snapshot, objects: &Objects, response: &SetSpendLimitResponse) {
        let limit = response.spend_limit.clone().unwrap();
        let scope = limit.scope.clone().unwrap_or_default();
        let stored = (
            scope.kind(),
            scope.scope_id.as_str(),
            limit.period(),
            limit.limit.as_str(),
            limit.spent.as_str(),
            limit.reserved.as_str(),
        );
        let asked = (
            SpendScopeKind::Member,
            "alice",
            LimitPeriod::Day,
            "50",
            "0",
            "0",
        );
        assert_eq!(stored, asked, "{limit:?}");
        let account = books.account_mut(&objects.account_id);
        account.spend_limits.push(limit);
    }

    fn naming(objects: &Objects, key: &str, id: &str) -> Option<Naming<SetSpendLimitRequest>> {
        Some(Naming {
            field: "account_id",
            not_found: "ACCOUNT_NOT_FOUND",
            request: SetSpendLimitRequest {
                account_id: id.to_owned(),
                ..Self::request(objects, key)
            },
        })
    }

    fn with_amount(objects: &Objects, key: &str, amount: &str) -> Option<SetSpendLimitRequest> {
        Some(spend_limit_request(
            &objects.account_id,
            key,
            "alice",
            amount,
        ))
    }
}
