//! CreditService: the hot path for workers: Quote, Authorize, ExtendHold, Settle, Release,
//! Refund, GetHold. Every RPC is authenticated by `RequireKey`.

use chrono::Duration;
use prost::Message as _;
use tonic::{Request, Response, Status};

use super::pricing;
use super::{caller, convert, parse, plans};
use crate::config::MoneyLimits;
use crate::ids::{AccountId, HoldId};
use crate::ledger::{Reason, RefundRecord, SettlementRecord};
use crate::money::Credits;
use crate::proto::v1::credit_service_server::CreditService;
use crate::proto::v1::{
    AuthorizeRequest, AuthorizeResponse, ExtendHoldRequest, ExtendHoldResponse, GetHoldRequest,
    GetHoldResponse, QuoteRequest, QuoteResponse, RefundRequest, RefundResponse, ReleaseRequest,
    ReleaseResponse, SettleRequest, SettleResponse, authorize_request, get_hold_request,
    settle_request,
};
use crate::service::holds::{
    self, AuthorizeCommand, Encoder, ExtendCommand, RefundCommand, SettleCommand,
};
use crate::service::idempotency::Rpc;
use crate::service::priced::{Charge, HoldPrice};
use crate::service::quote::{self, QuoteCommand};
use crate::service::{Context, ServiceError};

/// Serves `creditgate.v1.CreditService`.
#[derive(Debug, Clone)]
pub struct CreditApi {
    context: Context,
}

impl CreditApi {
    /// A service over `context`.
    pub fn new(context: Context) -> Self {
        CreditApi { context }
    }
}

fn ttl(
    field: &'static str,
    seconds: u32,
    limits: &MoneyLimits,
    default: Option<Duration>,
) -> Result<Option<Duration>, ServiceError> {
    if seconds == 0 {
        return Ok(default);
    }
    if seconds > limits.max_hold_ttl_seconds {
        return Err(ServiceError::InvalidArgument {
            field,
            message: format!(
                "{seconds} is above the maximum of {} seconds",
                limits.max_hold_ttl_seconds
            ),
        });
    }
    Ok(Some(Duration::seconds(i64::from(seconds))))
}

/// Encodes the response of an operation that leaves a hold (Authorize, ExtendHold).
fn hold_answer<R: prost::Message + 'static>(
    build: fn(crate::proto::v1::Hold, String) -> R,
) -> Encoder<HoldId> {
    Box::new(move |book, hold_id| {
        let account_id = book.account().account_id;
        let hold = book
            .hold(hold_id)
            .map(|hold| convert::hold(account_id, hold))
            .unwrap_or_default();
        build(hold, book.available().to_string()).encode_to_vec()
    })
}

#[tonic::async_trait]
impl CreditService for CreditApi {
    async fn quote(
        &self,
        request: Request<QuoteRequest>,
    ) -> Result<Response<QuoteResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let non_empty = |field: &'static str, text: &str| -> Result<Option<String>, ServiceError> {
            let text = parse::text(field, text)?;
            Ok((!text.is_empty()).then_some(text))
        };
        let spend_scope = plans::spend_scope(message.spend_scope.as_ref())?;
        if spend_scope.is_some() && message.account_id.is_empty() {
            return Err(ServiceError::InvalidArgument {
                field: "spend_scope",
                message: "a spend scope needs account_id".to_owned(),
            }
            .into());
        }
        let command = QuoteCommand {
            spend_scope,
            tool: non_empty("tool", &message.tool)?,
            model: non_empty("model", &message.model)?,
            usage: pricing::usage(&message.usage.unwrap_or_default())?,
            account_id: parse::optional_id("account_id", &message.account_id)?,
            catalog_version: match message.catalog_version {
                0 => None,
                version => {
                    Some(
                        i64::try_from(version).map_err(|_| ServiceError::InvalidArgument {
                            field: "catalog_version",
                            message: "out of range".to_owned(),
                        })?,
                    )
                }
            },
        };
        let outcome = quote::quote(&self.context, caller, command).await?;
        let quote = &outcome.quote;
        let eligibility = outcome.eligibility.as_ref();
        Ok(Response::new(QuoteResponse {
            quote_id: outcome.token.clone(),
            line_items: outcome.line_items.iter().map(pricing::line_item).collect(),
            total: quote.total.to_string(),
            catalog_version: u64::try_from(quote.catalog_version).unwrap_or(0),
            expires_at: Some(convert::timestamp(quote.expires_at)),
            allowed: eligibility.is_some_and(|eligibility| eligibility.allowed),
            affordable: eligibility.is_some_and(|eligibility| eligibility.affordable),
            denial_reason: eligibility
                .and_then(|eligibility| eligibility.denial_reason)
                .map(Reason::as_str)
                .unwrap_or_default()
                .to_owned(),
            available: eligibility
                .map(|eligibility| eligibility.available.to_string())
                .unwrap_or_default(),
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::Authorize, &message)?;
        let limits = &self.context.limits;
        let account_id = parse::id("account_id", &message.account_id)?;
        let price = match &message.price {
            Some(authorize_request::Price::Amount(text)) => {
                HoldPrice::Amount(parse::amount("amount", text, limits.max_amount, false)?)
            }
            Some(authorize_request::Price::QuoteId(text)) => {
                HoldPrice::Quote(parse::quote_id(text)?)
            }
            Some(authorize_request::Price::Usage(usage)) => {
                HoldPrice::Usage(pricing::usage(usage)?)
            }
            None => {
                return Err(ServiceError::InvalidAmount {
                    field: "amount",
                    message: "one of amount, quote_id or usage is required".to_owned(),
                }
                .into());
            }
        };
        let ttl = ttl(
            "ttl_seconds",
            message.ttl_seconds,
            limits,
            Some(limits.default_hold_ttl),
        )?
        .unwrap_or(limits.default_hold_ttl);
        let mut meta = parse::run_meta(&message.idempotency_key, message.run.as_ref())?;
        meta.spend_scope = plans::spend_scope(message.spend_scope.as_ref())?;
        let command = AuthorizeCommand {
            account_id,
            price,
            ttl,
            meta,
        };
        let encode = hold_answer(|hold, available| AuthorizeResponse {
            hold: Some(hold),
            available,
        });
        let bytes = holds::authorize(&self.context, caller, command, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn extend_hold(
        &self,
        request: Request<ExtendHoldRequest>,
    ) -> Result<Response<ExtendHoldResponse>, Status> {
        let caller = caller(&request)?;
        let mut message = request.into_inner();
        let named = named_account(&mut message.account_id)?;
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::ExtendHold, &message)?;
        let limits = &self.context.limits;
        let command = ExtendCommand {
            hold_id: parse::id("hold_id", &message.hold_id)?,
            account_id: named,
            amount: parse::optional_amount("amount", &message.amount, limits.max_amount, false)?,
            ttl: ttl("ttl_seconds", message.ttl_seconds, limits, None)?,
        };
        if command.amount.is_none() && command.ttl.is_none() {
            return Err(ServiceError::InvalidArgument {
                field: "amount",
                message: "set amount, ttl_seconds or both".to_owned(),
            }
            .into());
        }
        let encode = hold_answer(|hold, available| ExtendHoldResponse {
            hold: Some(hold),
            available,
        });
        let bytes = holds::extend(&self.context, caller, command, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn settle(
        &self,
        request: Request<SettleRequest>,
    ) -> Result<Response<SettleResponse>, Status> {
        let caller = caller(&request)?;
        let mut message = request.into_inner();
        let named = named_account(&mut message.account_id)?;
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::Settle, &message)?;
        let charge = match &message.charge {
            Some(settle_request::Charge::Amount(text)) => Charge::Amount(parse::amount(
                "amount",
                text,
                self.context.limits.max_amount,
                true,
            )?),
            Some(settle_request::Charge::Usage(usage)) => Charge::Usage(pricing::usage(usage)?),
            None => {
                return Err(ServiceError::InvalidAmount {
                    field: "amount",
                    message: "one of amount or usage is required".to_owned(),
                }
                .into());
            }
        };
        let command = SettleCommand {
            hold_id: parse::id("hold_id", &message.hold_id)?,
            account_id: named,
            charge,
            partial: message.partial,
        };
        let encode: Encoder<SettlementRecord> = Box::new(|book, record| {
            let account_id = book.account().account_id;
            let hold = book.hold(record.hold_id);
            let catalog_version = hold.map_or(0, |hold| hold.meta.catalog_version);
            SettleResponse {
                settlement: Some(convert::settlement(account_id, catalog_version, &record)),
                hold: hold.map(|hold| convert::hold(account_id, hold)),
            }
            .encode_to_vec()
        });
        let bytes = holds::settle(&self.context, caller, command, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn release(
        &self,
        request: Request<ReleaseRequest>,
    ) -> Result<Response<ReleaseResponse>, Status> {
        let caller = caller(&request)?;
        let mut message = request.into_inner();
        let named = named_account(&mut message.account_id)?;
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::Release, &message)?;
        let hold_id = parse::id("hold_id", &message.hold_id)?;
        parse::text("reason", &message.reason)?;
        let encode: Encoder<Credits> = Box::new(move |book, released| {
            let account_id = book.account().account_id;
            ReleaseResponse {
                hold: book
                    .hold(hold_id)
                    .map(|hold| convert::hold(account_id, hold)),
                released: released.to_string(),
            }
            .encode_to_vec()
        });
        let bytes =
            holds::release(&self.context, caller, (hold_id, named), fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn refund(
        &self,
        request: Request<RefundRequest>,
    ) -> Result<Response<RefundResponse>, Status> {
        let caller = caller(&request)?;
        let mut message = request.into_inner();
        let named = named_account(&mut message.account_id)?;
        let fingerprint = parse::fingerprint(&message.idempotency_key, Rpc::Refund, &message)?;
        let command = RefundCommand {
            settlement_id: parse::id("settlement_id", &message.settlement_id)?,
            account_id: named,
            amount: parse::optional_amount(
                "amount",
                &message.amount,
                self.context.limits.max_amount,
                false,
            )?,
            reason: parse::text("reason", &message.reason)?,
        };
        let encode: Encoder<RefundRecord> = Box::new(|book, record| {
            RefundResponse {
                refund: Some(convert::refund(book.account().account_id, &record)),
            }
            .encode_to_vec()
        });
        let bytes = holds::refund(&self.context, caller, command, fingerprint, encode).await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn get_hold(
        &self,
        request: Request<GetHoldRequest>,
    ) -> Result<Response<GetHoldResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let account_id = parse::optional_id("account_id", &message.account_id)?;
        let view = match &message.lookup {
            Some(get_hold_request::Lookup::HoldId(hold_id)) => {
                holds::get_hold(
                    &self.context,
                    caller,
                    Some(parse::id("hold_id", hold_id)?),
                    None,
                    account_id,
                )
                .await?
            }
            Some(get_hold_request::Lookup::AuthorizeIdempotencyKey(key)) => {
                holds::get_hold(
                    &self.context,
                    caller,
                    None,
                    Some(parse::text("authorize_idempotency_key", key)?.as_str()),
                    account_id,
                )
                .await?
            }
            None => {
                return Err(ServiceError::InvalidArgument {
                    field: "lookup",
                    message: "set hold_id or authorize_idempotency_key".to_owned(),
                }
                .into());
            }
        };
        let catalog_version = view.hold.meta.catalog_version;
        Ok(Response::new(GetHoldResponse {
            hold: Some(convert::hold(view.account_id, &view.hold)),
            settlements: view
                .settlements
                .iter()
                .map(|record| convert::settlement(view.account_id, catalog_version, record))
                .collect(),
        }))
    }
}

/// The optional account a request names its hold's or settlement's by, taken out of the request
/// before it is fingerprinted: it says where the object is, not what to do, so a retry that adds
/// or drops it is the same request (and servers before it, which drop it as unknown, fingerprint
/// alike). A wrong one is refused before any replay.
fn named_account(field: &mut String) -> Result<Option<AccountId>, ServiceError> {
    parse::optional_id("account_id", &std::mem::take(field))
}
