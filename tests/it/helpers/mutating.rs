//! Every mutating RPC as one case: what it acts on, its request under a key, requests that
//! differ from it in one named field, how it is sent, and what one application of it does to
//! the books. The behaviours every mutating RPC shares (idempotency, bad input) are written
//! once over [`Mutating`] and run for each case; a new RPC is one more case.

use creditgate::proto::v1::{
    AccountStatus, AuthorizeRequest, AuthorizeResponse, Catalog, CreateAccountRequest,
    CreateAccountResponse, ExtendHoldRequest, ExtendHoldResponse, GetCatalogRequest, GrantRequest,
    GrantResponse, GrantSource, PublishCatalogRequest, PublishCatalogResponse, RefundRequest,
    RefundResponse, ReleaseRequest, ReleaseResponse, SettleRequest, SettleResponse,
    UpdateAccountRequest, UpdateAccountResponse,
};
use futures::future::BoxFuture;
use tonic::Status;

use super::money::{
    Objects, authorize_request, create_account_request, extend_request, grant_request,
    refund_request, release_request, settle_request,
};
use super::snapshot::{AccountState, HoldRow, SettlementRow, Snapshot};
use super::{Clients, TestApp};

/// What a request names as the object it acts on.
pub struct Naming<Request> {
    /// The field that carries the id.
    pub field: &'static str,
    /// The ErrorInfo reason when no such object is found.
    pub not_found: &'static str,
    pub request: Request,
}

/// One mutating RPC; see the module documentation.
pub trait Mutating {
    /// The RPC as the contract names it, e.g. `CreditService/Authorize`.
    const RPC: &'static str;
    /// Among the amounts that are bad elsewhere, those this RPC takes with a meaning of its own.
    const OWN_AMOUNTS: &'static [&'static str] = &[];
    /// What the request acts on, made before it is sent.
    type Subject: Send + Sync;
    type Request: Clone + std::fmt::Debug + Send + 'static;
    type Response: Clone + std::fmt::Debug + PartialEq + Send + 'static;

    /// Makes what the request acts on, with the app's key.
    fn prepare(app: &TestApp) -> BoxFuture<'_, Self::Subject>;

    /// The request, under `key`.
    fn request(subject: &Self::Subject, key: &str) -> Self::Request;

    /// Requests that differ from [`Mutating::request`] in one field each, with that field.
    fn variants(subject: &Self::Subject, key: &str) -> Vec<(&'static str, Self::Request)>;

    fn send(
        clients: Clients,
        request: Self::Request,
    ) -> BoxFuture<'static, Result<Self::Response, Status>>;

    /// Changes `books` (read before the call) as one application of the call that answered
    /// `response` changes them (its idempotency record aside).
    fn apply(books: &mut Snapshot, subject: &Self::Subject, response: &Self::Response);

    /// The request naming `id` as its object; `None` when it acts on the tenant as a whole.
    fn naming(_subject: &Self::Subject, _key: &str, _id: &str) -> Option<Naming<Self::Request>> {
        None
    }

    /// The request for `amount`; `None` when it carries no amount.
    fn with_amount(_subject: &Self::Subject, _key: &str, _amount: &str) -> Option<Self::Request> {
        None
    }
}

/// Sends `$request` with `$client`'s `$method`, answering the response's message.
macro_rules! send_with {
    ($clients:ident . $client:ident . $method:ident ($request:expr)) => {{
        let mut client = $clients.$client;
        let request = $request;
        Box::pin(async move {
            client
                .$method(request)
                .await
                .map(tonic::Response::into_inner)
        })
    }};
}

/// Objects made with the app's key.
fn objects(app: &TestApp) -> BoxFuture<'_, Objects> {
    Box::pin(app.objects_of(&app.key))
}

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

    fn send(
        clients: Clients,
        request: AuthorizeRequest,
    ) -> BoxFuture<'static, Result<AuthorizeResponse, Status>> {
        send_with!(clients.credit.authorize(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, response: &AuthorizeResponse) {
        books.account_mut(&objects.account_id).shift("-10", "10");
        let hold_id = response.hold.as_ref().unwrap().hold_id.clone();
        books.holds.insert(hold_id, HoldRow::active("10"));
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

    fn send(
        clients: Clients,
        request: ExtendHoldRequest,
    ) -> BoxFuture<'static, Result<ExtendHoldResponse, Status>> {
        send_with!(clients.credit.extend_hold(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, _: &ExtendHoldResponse) {
        books.account_mut(&objects.account_id).shift("-5", "5");
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

    fn send(
        clients: Clients,
        request: SettleRequest,
    ) -> BoxFuture<'static, Result<SettleResponse, Status>> {
        send_with!(clients.credit.settle(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, response: &SettleResponse) {
        books.account_mut(&objects.account_id).shift("-2", "-10");
        let hold = books.hold_mut(&objects.hold_id);
        hold.status = "SETTLED".to_owned();
        hold.captured = "12".to_owned();
        let settlement = SettlementRow {
            total: "12".to_owned(),
            refunded: "0".to_owned(),
        };
        let settlement_id = response.settlement.as_ref().unwrap().settlement_id.clone();
        books.settlements.insert(settlement_id, settlement);
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

    fn send(
        clients: Clients,
        request: ReleaseRequest,
    ) -> BoxFuture<'static, Result<ReleaseResponse, Status>> {
        send_with!(clients.credit.release(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, response: &ReleaseResponse) {
        assert_eq!(response.released, "10", "{response:?}");
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

    fn send(
        clients: Clients,
        request: RefundRequest,
    ) -> BoxFuture<'static, Result<RefundResponse, Status>> {
        send_with!(clients.credit.refund(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, response: &RefundResponse) {
        books.account_mut(&objects.account_id).shift("4", "0");
        let settlement = books.settlements.get_mut(&objects.settlement_id).unwrap();
        settlement.refunded = "4".to_owned();
        let refund = response.refund.as_ref().unwrap();
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
}

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

    fn send(
        clients: Clients,
        request: GrantRequest,
    ) -> BoxFuture<'static, Result<GrantResponse, Status>> {
        send_with!(clients.account.grant(request))
    }

    fn apply(books: &mut Snapshot, objects: &Objects, response: &GrantResponse) {
        books.account_mut(&objects.account_id).shift("25", "0");
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

    fn send(
        clients: Clients,
        request: CreateAccountRequest,
    ) -> BoxFuture<'static, Result<CreateAccountResponse, Status>> {
        send_with!(clients.account.create_account(request))
    }

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

    fn send(
        clients: Clients,
        request: UpdateAccountRequest,
    ) -> BoxFuture<'static, Result<UpdateAccountResponse, Status>> {
        send_with!(clients.account.update_account(request))
    }

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

pub struct PublishCatalog;

impl Mutating for PublishCatalog {
    const RPC: &'static str = "CatalogService/PublishCatalog";
    /// The active catalog, to publish again.
    type Subject = Catalog;
    type Request = PublishCatalogRequest;
    type Response = PublishCatalogResponse;

    fn prepare(app: &TestApp) -> BoxFuture<'_, Catalog> {
        Box::pin(async {
            app.catalog_as(Some(&app.key))
                .get_catalog(GetCatalogRequest { version: 0 })
                .await
                .unwrap()
                .into_inner()
                .catalog
                .unwrap()
        })
    }

    fn request(active: &Catalog, key: &str) -> PublishCatalogRequest {
        let catalog = Catalog {
            description: "republished".to_owned(),
            ..active.clone()
        };
        PublishCatalogRequest {
            idempotency_key: key.to_owned(),
            catalog: Some(catalog),
            effective_at: None,
        }
    }

    fn variants(active: &Catalog, key: &str) -> Vec<(&'static str, PublishCatalogRequest)> {
        let mut other = Self::request(active, key);
        other.catalog.as_mut().unwrap().description = "something else".to_owned();
        vec![("catalog", other)]
    }

    fn send(
        clients: Clients,
        request: PublishCatalogRequest,
    ) -> BoxFuture<'static, Result<PublishCatalogResponse, Status>> {
        send_with!(clients.catalog.publish_catalog(request))
    }

    fn apply(books: &mut Snapshot, active: &Catalog, response: &PublishCatalogResponse) {
        let published = response.catalog.as_ref().unwrap();
        assert_eq!(published.version, active.version + 1, "{published:?}");
        assert_eq!(published.models, active.models);
        books.catalog_versions += 1;
    }
}
