//! Connections and funded accounts for a bench run.

use std::net::SocketAddr;

use anyhow::Context as _;
use futures::{StreamExt as _, TryStreamExt as _};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use crate::proto::v1::account_service_client::AccountServiceClient;
use crate::proto::v1::credit_service_client::CreditServiceClient;
use crate::proto::v1::{
    AccountKind, AllowancePeriod, CreateAccountRequest, GrantRequest, GrantSource, LimitPeriod,
    SetAllowanceRequest, SetSpendLimitRequest, SpendScope, SpendScopeKind,
};

/// Accounts created at once during setup.
const SETUP_CONCURRENCY: usize = 32;
/// Credits each bench account starts with: enough never to run out.
const FUNDING: &str = "1000000000";
/// The member every run counts against with `--plans`.
pub const PLAN_MEMBER: &str = "bench-member";
/// The daily free allowance of each account with `--plans`.
const PLAN_ALLOWANCE: &str = "100";
/// The member's daily limit with `--plans`: as much as the account holds, so it never refuses.
const PLAN_LIMIT: &str = FUNDING;

/// Adds the bearer key to every call.
#[derive(Debug, Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// Clients over a few connections.
#[derive(Debug, Clone)]
pub struct Clients {
    channels: Vec<Channel>,
    bearer: Bearer,
}

impl Clients {
    /// Opens `connections` HTTP/2 connections to each of `addresses`, interleaved so that
    /// consecutive indexes reach different servers.
    pub async fn connect(
        addresses: &[SocketAddr],
        key: &str,
        connections: usize,
    ) -> anyhow::Result<Clients> {
        let bearer = Bearer(
            format!("Bearer {key}")
                .parse()
                .context("the API key is not valid metadata")?,
        );
        let mut channels = Vec::with_capacity(connections * addresses.len());
        for address in (0..connections).flat_map(|_| addresses) {
            let channel = Channel::from_shared(format!("http://{address}"))?
                .tcp_nodelay(true)
                .connect()
                .await
                .with_context(|| format!("connecting to {address}"))?;
            channels.push(channel);
        }
        Ok(Clients { channels, bearer })
    }

    fn channel(&self, index: usize) -> Channel {
        self.channels[index % self.channels.len()].clone()
    }

    /// A CreditService client on connection `index` (modulo the count).
    pub fn credit(&self, index: usize) -> CreditServiceClient<Authed> {
        CreditServiceClient::with_interceptor(self.channel(index), self.bearer.clone())
    }

    /// An AccountService client on connection `index`.
    pub fn account(&self, index: usize) -> AccountServiceClient<Authed> {
        AccountServiceClient::with_interceptor(self.channel(index), self.bearer.clone())
    }
}

/// Creates `count` accounts, each funded with plenty of credits (and, with `plans`, an
/// allowance and a member limit); returns their ids.
pub async fn fund_accounts(
    clients: &Clients,
    count: usize,
    plans: bool,
) -> anyhow::Result<Vec<String>> {
    let run = uuid::Uuid::now_v7().simple().to_string();
    futures::stream::iter(0..count)
        .map(|index| {
            let run = run.clone();
            async move {
                let account = clients
                    .account(index)
                    .create_account(CreateAccountRequest {
                        idempotency_key: format!("bench-{run}-account-{index}"),
                        external_id: format!("bench-{run}-{index}"),
                        kind: AccountKind::Organization as i32,
                        ..CreateAccountRequest::default()
                    })
                    .await
                    .context("creating a bench account (the key needs scope billing)")?
                    .into_inner()
                    .account
                    .context("CreateAccount answered without an account")?;
                clients
                    .account(index)
                    .grant(GrantRequest {
                        account_id: account.account_id.clone(),
                        idempotency_key: format!("bench-{run}-grant-{index}"),
                        source: GrantSource::Topup as i32,
                        amount: FUNDING.to_owned(),
                        ..GrantRequest::default()
                    })
                    .await
                    .context("funding a bench account")?;
                if plans {
                    add_plans(clients, index, &run, &account.account_id).await?;
                }
                anyhow::Ok(account.account_id)
            }
        })
        .buffered(SETUP_CONCURRENCY)
        .try_collect()
        .await
}

/// A daily free allowance and a daily limit for [`PLAN_MEMBER`] on the account.
async fn add_plans(
    clients: &Clients,
    index: usize,
    run: &str,
    account_id: &str,
) -> anyhow::Result<()> {
    clients
        .account(index)
        .set_allowance(SetAllowanceRequest {
            account_id: account_id.to_owned(),
            idempotency_key: format!("bench-{run}-allowance-{index}"),
            name: "bench-daily".to_owned(),
            source: GrantSource::FreeDaily as i32,
            amount: PLAN_ALLOWANCE.to_owned(),
            period: AllowancePeriod::Day as i32,
            enabled: true,
            ..SetAllowanceRequest::default()
        })
        .await
        .context("setting a bench allowance")?;
    clients
        .account(index)
        .set_spend_limit(SetSpendLimitRequest {
            account_id: account_id.to_owned(),
            idempotency_key: format!("bench-{run}-limit-{index}"),
            scope: Some(SpendScope {
                kind: SpendScopeKind::Member as i32,
                scope_id: PLAN_MEMBER.to_owned(),
            }),
            period: LimitPeriod::Day as i32,
            limit: PLAN_LIMIT.to_owned(),
        })
        .await
        .context("setting a bench spend limit")?;
    Ok(())
}
