//! Hostile input through the gRPC surface: generated strings in amounts, quote ids, usage,
//! ids and idempotency keys of Quote, Authorize, Settle and Grant are refused as the caller's
//! mistake (INVALID_ARGUMENT, or NOT_FOUND for a well-formed unknown id), never as a server
//! failure, and the refusal stays small.

use creditgate::proto::v1::{
    AuthorizeRequest, GrantRequest, ImageUsage, QuoteRequest, SettleRequest, Usage,
    authorize_request, settle_request,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tonic::Code;

use crate::helpers::TestApp;
use crate::helpers::money::{authorize_request, grant_request, key, settle_request};

/// Generated requests per run.
const CASES: u32 = 64;
/// Largest refusal: status message and metadata together.
const MAX_REFUSAL_BYTES: usize = 1_024;
/// Longest caller text in a generated field: the 1 MB request limit is its own test.
const MAX_TEXT_CHARS: usize = 20_000;

/// Codes that say the caller sent something wrong, or that the request was fine.
const CALLER_CODES: [Code; 6] = [
    Code::Ok,
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::AlreadyExists,
    Code::PermissionDenied,
];

/// Text a hostile or broken client may put in a string field.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,100}",
        "[0-9]{1,2000}",
        "[0-9]{1,40}\\.[0-9]{1,40}",
        "[0-9]{1,6}(\\.[0-9]{1,4})?[eE][+-]?[0-9]{1,6}",
        "[-+][0-9]{1,12}(\\.[0-9]{1,9})?",
        "-0(\\.0{1,9})?",
        "[٠-٩०-९０-９]{1,20}",
        "[0-9a-f\\x00-]{1,40}",
        prop::sample::select(vec!["", " ", "NaN", "Infinity", "0x1F", "1_000", "1e3"])
            .prop_map(str::to_owned),
        (any::<char>(), 100..MAX_TEXT_CHARS).prop_map(|(c, count)| c.to_string().repeat(count)),
        "[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    ]
}

/// Token counts around the bounds.
fn hostile_count() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(u64::MAX),
        Just(1_000_000_000_001),
        Just(1_000_000_000_000),
        any::<u64>(),
        0..100_000_u64,
    ]
}

/// Which field of which request carries the hostile value.
#[derive(Debug, Clone)]
enum Case {
    AuthorizeAmount(String),
    SettleAmount(String),
    GrantAmount(String),
    QuoteId(String),
    AccountId(Rpc, String),
    HoldId(String),
    IdempotencyKey(Rpc, String),
    Usage(Rpc, Usage),
}

#[derive(Debug, Clone, Copy)]
enum Rpc {
    Quote,
    Authorize,
    Settle,
    Grant,
}

fn rpc() -> impl Strategy<Value = Rpc> {
    prop::sample::select(vec![Rpc::Quote, Rpc::Authorize, Rpc::Settle, Rpc::Grant])
}

prop_compose! {
    fn hostile_usage()(
        tokens in prop::array::uniform4(hostile_count()),
        image in prop::option::of((
            any::<u32>(),
            hostile_text(),
            hostile_text(),
            hostile_text(),
        )),
        video_seconds in prop_oneof![Just(String::new()), hostile_text()],
        resolution in prop_oneof![Just(0), Just(3), any::<i32>()],
        counts in prop::array::uniform3(any::<u32>()),
        multipliers in prop::collection::vec(hostile_text(), 0..3),
    ) -> Usage {
        Usage {
            input_tokens: tokens[0],
            output_tokens: tokens[1],
            cached_read_tokens: tokens[2],
            reasoning_tokens: tokens[3],
            images: image
                .into_iter()
                .map(|(count, size, megapixels, quality)| ImageUsage { count, size, megapixels, quality })
                .collect(),
            video_seconds,
            resolution,
            searches: counts[0],
            tool_calls: counts[1],
            agent_steps: counts[2],
            multipliers,
        }
    }
}

fn hostile_case() -> impl Strategy<Value = Case> {
    prop_oneof![
        hostile_text().prop_map(Case::AuthorizeAmount),
        hostile_text().prop_map(Case::SettleAmount),
        hostile_text().prop_map(Case::GrantAmount),
        hostile_text().prop_map(Case::QuoteId),
        (rpc(), hostile_text()).prop_map(|(rpc, text)| Case::AccountId(rpc, text)),
        hostile_text().prop_map(Case::HoldId),
        (rpc(), hostile_text()).prop_map(|(rpc, text)| Case::IdempotencyKey(rpc, text)),
        (rpc(), hostile_usage()).prop_map(|(rpc, usage)| Case::Usage(rpc, usage)),
    ]
}

/// Whether `text` is a wire amount: digits, optionally a point and 1-9 digits.
fn is_plain_amount(text: &str) -> bool {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "1"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    digits(whole) && digits(fraction) && fraction.len() <= 9
}

/// Whether `text` is an idempotency key the server takes: 1-255 bytes, no control characters.
fn is_usable_key(text: &str) -> bool {
    !text.is_empty() && text.len() <= 255 && !text.chars().any(char::is_control)
}

/// A request with every field valid, one account with credits and a live hold to settle.
struct Fixture {
    app: TestApp,
    account_id: String,
    hold_id: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let app = TestApp::spawn().await;
        let account_id = app.funded_account("1000000").await;
        let hold = app.hold(&account_id, "10").await;
        Fixture {
            app,
            account_id,
            hold_id: hold.hold_id,
        }
    }

    fn quote(&self) -> QuoteRequest {
        QuoteRequest {
            model: "openai/o3-pro".to_owned(),
            usage: Some(Usage {
                input_tokens: 1_000,
                ..Usage::default()
            }),
            account_id: self.account_id.clone(),
            ..QuoteRequest::default()
        }
    }

    fn authorize(&self) -> AuthorizeRequest {
        authorize_request(&self.account_id, &key(), "1")
    }

    fn settle(&self) -> SettleRequest {
        SettleRequest {
            // Partial, so the hold stays open for the next case.
            partial: true,
            ..settle_request(&self.hold_id, &key(), "0.5")
        }
    }

    fn grant(&self) -> GrantRequest {
        grant_request(&self.account_id, &key(), "1")
    }

    /// Sends `rpc`'s valid request after `change`.
    async fn send(
        &self,
        rpc: Rpc,
        change: impl FnOnce(&mut dyn Fields),
    ) -> Result<(), tonic::Status> {
        let mut credit = self.app.credit();
        let mut account = self.app.account_as(Some(&self.app.key));
        match rpc {
            Rpc::Quote => {
                let mut request = self.quote();
                change(&mut request);
                credit.quote(request).await.map(drop)
            }
            Rpc::Authorize => {
                let mut request = self.authorize();
                change(&mut request);
                credit.authorize(request).await.map(drop)
            }
            Rpc::Settle => {
                let mut request = self.settle();
                change(&mut request);
                credit.settle(request).await.map(drop)
            }
            Rpc::Grant => {
                let mut request = self.grant();
                change(&mut request);
                account.grant(request).await.map(drop)
            }
        }
    }

    /// Sends `rpc` with `text` as its amount: anything but a plain decimal is INVALID_ARGUMENT.
    async fn amount(
        &self,
        rpc: Rpc,
        text: String,
    ) -> (Result<(), tonic::Status>, Option<&'static [Code]>) {
        let expected: Option<&'static [Code]> =
            (!is_plain_amount(&text)).then_some(&[Code::InvalidArgument]);
        (
            self.send(rpc, |fields| fields.set_amount(text)).await,
            expected,
        )
    }

    /// Sends the case; returns the code and whether only a caller's-mistake code is right.
    async fn answer(&self, case: Case) -> (Result<(), tonic::Status>, Option<&'static [Code]>) {
        const INVALID: &[Code] = &[Code::InvalidArgument];
        const INVALID_OR_UNKNOWN: &[Code] = &[Code::InvalidArgument, Code::NotFound];
        match case {
            Case::AuthorizeAmount(text) => self.amount(Rpc::Authorize, text).await,
            Case::SettleAmount(text) => self.amount(Rpc::Settle, text).await,
            Case::GrantAmount(text) => self.amount(Rpc::Grant, text).await,
            Case::QuoteId(text) => {
                let answer = self
                    .send(Rpc::Authorize, |fields| fields.set_quote_id(text))
                    .await;
                (answer, Some(INVALID_OR_UNKNOWN))
            }
            Case::AccountId(rpc, text) => {
                let rpc = if matches!(rpc, Rpc::Settle) {
                    Rpc::Authorize
                } else {
                    rpc
                };
                let expected = if text.is_empty() && matches!(rpc, Rpc::Quote) {
                    None
                } else {
                    Some(INVALID_OR_UNKNOWN)
                };
                (self.send(rpc, |fields| fields.set_id(text)).await, expected)
            }
            Case::HoldId(text) => (
                self.send(Rpc::Settle, |fields| fields.set_id(text)).await,
                Some(INVALID_OR_UNKNOWN),
            ),
            Case::IdempotencyKey(rpc, text) => {
                let rpc = if matches!(rpc, Rpc::Quote) {
                    Rpc::Grant
                } else {
                    rpc
                };
                let expected = (!is_usable_key(&text)).then_some(INVALID);
                (
                    self.send(rpc, |fields| fields.set_key(text)).await,
                    expected,
                )
            }
            Case::Usage(rpc, usage) => {
                let rpc = if matches!(rpc, Rpc::Grant) {
                    Rpc::Quote
                } else {
                    rpc
                };
                let out_of_bounds = [
                    usage.input_tokens,
                    usage.output_tokens,
                    usage.cached_read_tokens,
                    usage.reasoning_tokens,
                ]
                .iter()
                .any(|tokens| *tokens > 1_000_000_000_000);
                let expected = out_of_bounds.then_some(INVALID);
                (
                    self.send(rpc, |fields| fields.set_usage(usage)).await,
                    expected,
                )
            }
        }
    }
}

/// The fields a case replaces, on each request type.
trait Fields {
    fn set_amount(&mut self, _text: String) {}
    fn set_quote_id(&mut self, _text: String) {}
    fn set_id(&mut self, text: String);
    fn set_key(&mut self, _text: String) {}
    fn set_usage(&mut self, _usage: Usage) {}
}

impl Fields for QuoteRequest {
    fn set_id(&mut self, text: String) {
        self.account_id = text;
    }
    fn set_usage(&mut self, usage: Usage) {
        self.usage = Some(usage);
    }
}

impl Fields for AuthorizeRequest {
    fn set_amount(&mut self, text: String) {
        self.price = Some(authorize_request::Price::Amount(text));
    }
    fn set_quote_id(&mut self, text: String) {
        self.price = Some(authorize_request::Price::QuoteId(text));
    }
    fn set_id(&mut self, text: String) {
        self.account_id = text;
    }
    fn set_key(&mut self, text: String) {
        self.idempotency_key = text;
    }
    fn set_usage(&mut self, usage: Usage) {
        self.price = Some(authorize_request::Price::Usage(usage));
    }
}

impl Fields for SettleRequest {
    fn set_amount(&mut self, text: String) {
        self.charge = Some(settle_request::Charge::Amount(text));
    }
    fn set_id(&mut self, text: String) {
        self.hold_id = text;
    }
    fn set_key(&mut self, text: String) {
        self.idempotency_key = text;
    }
    fn set_usage(&mut self, usage: Usage) {
        self.charge = Some(settle_request::Charge::Usage(usage));
    }
}

impl Fields for GrantRequest {
    fn set_amount(&mut self, text: String) {
        self.amount = text;
    }
    fn set_id(&mut self, text: String) {
        self.account_id = text;
    }
    fn set_key(&mut self, text: String) {
        self.idempotency_key = text;
    }
}

/// Bytes a refusal puts on the wire besides its code.
fn refusal_bytes(status: &tonic::Status) -> usize {
    let metadata: usize = status
        .metadata()
        .iter()
        .map(|entry| match entry {
            tonic::metadata::KeyAndValueRef::Ascii(key, value) => key.as_str().len() + value.len(),
            tonic::metadata::KeyAndValueRef::Binary(key, value) => {
                key.as_str().len() + value.as_encoded_bytes().len()
            }
        })
        .sum();
    status.message().len() + metadata
}

fn check(
    case: &Case,
    answer: Result<(), tonic::Status>,
    expected: Option<&[Code]>,
) -> Result<(), TestCaseError> {
    let Err(status) = answer else {
        prop_assert!(expected.is_none(), "{case:?} succeeded");
        return Ok(());
    };
    prop_assert!(
        CALLER_CODES.contains(&status.code()),
        "{case:?} answered {status:?}"
    );
    if let Some(expected) = expected {
        prop_assert!(
            expected.contains(&status.code()),
            "{case:?} answered {status:?}"
        );
    }
    prop_assert!(
        refusal_bytes(&status) < MAX_REFUSAL_BYTES,
        "{case:?} was refused with {} bytes: {:?}",
        refusal_bytes(&status),
        status.message().chars().take(200).collect::<String>()
    );
    Ok(())
}

#[test]
fn hostile_fields_are_the_callers_mistake_and_refused_briefly() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fixture = runtime.block_on(Fixture::new());
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&hostile_case(), |case| {
        let (answer, expected) = runtime.block_on(fixture.answer(case.clone()));
        check(&case, answer, expected)
    });
    runtime.block_on(fixture.app.finish());
    outcome.unwrap();
}

/// An AuthorizeRequest as raw fields, so that text can be sent that is not UTF-8.
#[derive(Clone, PartialEq, prost::Message)]
struct RawAuthorize {
    #[prost(string, tag = "1")]
    account_id: String,
    #[prost(string, tag = "2")]
    idempotency_key: String,
    #[prost(bytes = "vec", tag = "3")]
    amount: Vec<u8>,
}

#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument() {
    let app = TestApp::spawn().await;
    let account_id = app.account().await;
    let channel = tonic::service::interceptor::InterceptedService::new(
        app.channel.clone(),
        crate::helpers::BearerKey::for_key(&app.key),
    );
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let request = RawAuthorize {
        account_id,
        idempotency_key: key(),
        amount: vec![b'1', 0xff],
    };
    let path = http::uri::PathAndQuery::from_static("/creditgate.v1.CreditService/Authorize");
    let codec =
        tonic_prost::ProstCodec::<RawAuthorize, creditgate::proto::v1::AuthorizeResponse>::default(
        );
    let status = grpc
        .unary(tonic::Request::new(request), path, codec)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        crate::helpers::reason(&status).as_deref(),
        Some("INVALID_ARGUMENT")
    );
    app.finish().await;
}
