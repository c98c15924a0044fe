//! Requests as sent and answers as received, kept whole so a retry can be compared with the
//! first answer field by field.

use creditgate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, CreateAccountRequest, CreateAccountResponse,
    ExtendHoldRequest, ExtendHoldResponse, GetHoldRequest, GetHoldResponse, GrantRequest,
    GrantResponse, RefundRequest, RefundResponse, ReleaseRequest, ReleaseResponse, SettleRequest,
    SettleResponse, get_hold_request,
};
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::helpers::TestApp;

/// A mutating request.
#[derive(Debug, Clone)]
pub enum Request {
    CreateAccount(CreateAccountRequest),
    Grant(GrantRequest),
    Authorize(AuthorizeRequest),
    Extend(ExtendHoldRequest),
    Settle(SettleRequest),
    Release(ReleaseRequest),
    Refund(RefundRequest),
}

/// Its answer (boxed: the messages differ much in size).
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    CreateAccount(Box<CreateAccountResponse>),
    Grant(Box<GrantResponse>),
    Authorize(Box<AuthorizeResponse>),
    Extend(Box<ExtendHoldResponse>),
    Settle(Box<SettleResponse>),
    Release(Box<ReleaseResponse>),
    Refund(Box<RefundResponse>),
}

/// An error answer: everything a retry must repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub code: Code,
    pub message: String,
    pub reason: Option<String>,
    /// ErrorInfo metadata `fields` (IDEMPOTENCY_KEY_REUSED).
    pub fields: Option<String>,
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        let info = status.get_details_error_info();
        Failure {
            code: status.code(),
            message: status.message().to_owned(),
            reason: info.as_ref().map(|info| info.reason.clone()),
            fields: info.and_then(|info| info.metadata.get("fields").cloned()),
        }
    }
}

pub type Reply = Result<Response, Failure>;

impl Request {
    pub fn key(&self) -> &str {
        match self {
            Request::CreateAccount(request) => &request.idempotency_key,
            Request::Grant(request) => &request.idempotency_key,
            Request::Authorize(request) => &request.idempotency_key,
            Request::Extend(request) => &request.idempotency_key,
            Request::Settle(request) => &request.idempotency_key,
            Request::Release(request) => &request.idempotency_key,
            Request::Refund(request) => &request.idempotency_key,
        }
    }

    /// Sends it through the real gRPC surface.
    pub async fn send(&self, app: &TestApp) -> Reply {
        let credit = app.credit();
        let account = app.account_as(Some(&app.key));
        let reply = match self.clone() {
            Request::CreateAccount(request) => {
                let mut account = account;
                account
                    .create_account(request)
                    .await
                    .map(|response| Response::CreateAccount(Box::new(response.into_inner())))
            }
            Request::Grant(request) => {
                let mut account = account;
                account
                    .grant(request)
                    .await
                    .map(|response| Response::Grant(Box::new(response.into_inner())))
            }
            Request::Authorize(request) => {
                let mut credit = credit;
                credit
                    .authorize(request)
                    .await
                    .map(|response| Response::Authorize(Box::new(response.into_inner())))
            }
            Request::Extend(request) => {
                let mut credit = credit;
                credit
                    .extend_hold(request)
                    .await
                    .map(|response| Response::Extend(Box::new(response.into_inner())))
            }
            Request::Settle(request) => {
                let mut credit = credit;
                credit
                    .settle(request)
                    .await
                    .map(|response| Response::Settle(Box::new(response.into_inner())))
            }
            Request::Release(request) => {
                let mut credit = credit;
                credit
                    .release(request)
                    .await
                    .map(|response| Response::Release(Box::new(response.into_inner())))
            }
            Request::Refund(request) => {
                let mut credit = credit;
                credit
                    .refund(request)
                    .await
                    .map(|response| Response::Refund(Box::new(response.into_inner())))
            }
        };
        reply.map_err(Failure::from)
    }
}

/// GetHold by id.
pub async fn hold(app: &TestApp, hold_id: &str) -> GetHoldResponse {
    app.credit()
        .get_hold(GetHoldRequest {
            lookup: Some(get_hold_request::Lookup::HoldId(hold_id.to_owned())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}
