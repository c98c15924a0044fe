//! The AccountService cases.

use creditgate::proto::v1::{
    AccountStatus, CreateAccountRequest, CreateAccountResponse, GrantRequest, GrantResponse,
    GrantSource, UpdateAccountRequest, UpdateAccountResponse,
};
use futures::future::BoxFuture;

use super::{Mutating, Naming, objects};
use crate::helpers::TestApp;
use crate::helpers::money::{Objects, create_account_request, grant_request};
use crate::helpers::snapshot::{AccountState, Snapshot};

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
        let created = AccountState {
            account: account.clone(),
            available: "0".to_owned(),
            held: "0".to_owned(),
            debt: "0".to_owned(),
        };
        books.accounts.insert(account.account_id, created);
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
