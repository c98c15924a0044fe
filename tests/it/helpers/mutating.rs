//! Every mutating RPC as one case: what it acts on, its request under a key, requests that
//! differ from it in one named field, how it is sent, and what one application of it does to
//! the books. The behaviours every mutating RPC shares (idempotency, bad input) are written
//! once over [`Mutating`] and run for each case; a new RPC is one more case.

/// `Mutating::send` by `$client`'s `$method`.
macro_rules! sent_by {
    ($client:ident . $method:ident) => {
        fn send(
            clients: crate::helpers::Clients,
            request: Self::Request,
        ) -> futures::future::BoxFuture<'static, Result<Self::Response, tonic::Status>> {
            let mut client = clients.$client;
            Box::pin(async move {
                client
                    .$method(request)
                    .await
                    .map(tonic::Response::into_inner)
            })
        }
    };
}

mod account;
mod catalog;
mod credit;

use futures::future::BoxFuture;
use tonic::Status;

pub use self::account::{CreateAccount, Grant, SetAllowance, SetSpendLimit, UpdateAccount};
pub use self::catalog::{CreateWebhookEndpoint, PublishCatalog};
pub use self::credit::{Authorize, ExtendHold, Refund, Release, Settle};
use super::money::Objects;
use super::snapshot::Snapshot;
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
    /// The field [`Mutating::with_amount`] sets, which a bad amount's refusal names.
    const AMOUNT_FIELD: &'static str = "amount";
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

    /// The request for `amount` in its [`Mutating::AMOUNT_FIELD`]; `None` when it carries no
    /// amount.
    fn with_amount(_subject: &Self::Subject, _key: &str, _amount: &str) -> Option<Self::Request> {
        None
    }

    /// [`Mutating::request`] naming `account_id` as its object's account (`None`: the object's
    /// own); `None` when the RPC has no such optional field (its object is the account itself,
    /// or the tenant).
    fn on_account(
        _subject: &Self::Subject,
        _key: &str,
        _account_id: Option<&str>,
    ) -> Option<Self::Request> {
        None
    }
}

/// Objects made with the app's key.
pub(super) fn objects(app: &TestApp) -> BoxFuture<'_, Objects> {
    Box::pin(app.objects_of(&app.key))
}

/// Asserts `after` is `before` with one application of the call that answered `response`.
#[track_caller]
pub fn assert_applied_once<R: Mutating>(
    before: &Snapshot,
    after: &Snapshot,
    subject: &R::Subject,
    response: &R::Response,
) {
    let mut expected = before.clone();
    R::apply(&mut expected, subject, response);
    expected.idempotency_records += 1;
    // However many entries one operation writes, `verify` (at the end of every test) checks
    // that the journal explains the balances, which are compared here.
    expected.journal_entries = after.journal_entries;
    after.assert_is(&expected, &format!("{} applied once", R::RPC));
}
