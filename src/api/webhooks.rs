//! WebhookService: register, list, read, delete and resume a tenant's webhook endpoints, and
//! list their delivery attempts. Every RPC is authenticated by `RequireKey` and needs `admin`.

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::convert::{timestamp, timestamp_opt};
use super::{caller, parse};
use crate::ledger::EventType;
use crate::proto::v1::webhook_service_server::WebhookService;
use crate::proto::v1::{
    self as wire, CreateWebhookEndpointRequest, CreateWebhookEndpointResponse,
    DeleteWebhookEndpointRequest, DeleteWebhookEndpointResponse, GetWebhookEndpointRequest,
    GetWebhookEndpointResponse, ListWebhookDeliveriesRequest, ListWebhookDeliveriesResponse,
    ListWebhookEndpointsRequest, ListWebhookEndpointsResponse, ResumeWebhookEndpointRequest,
    ResumeWebhookEndpointResponse,
};
use crate::service::idempotency::Rpc;
use crate::service::webhooks::{
    self, Attempt, DEFAULT_PAGE_SIZE, Endpoint, EndpointStatus, MAX_DELIVERY_PAGE_SIZE,
    MAX_ENDPOINT_PAGE_SIZE, Registration, WebhookUrl,
};
use crate::service::{Context, ServiceError};

/// Serves `creditgate.v1.WebhookService`.
#[derive(Debug, Clone)]
pub struct WebhookApi {
    context: Context,
}

impl WebhookApi {
    /// A service over `context`.
    pub fn new(context: Context) -> Self {
        WebhookApi { context }
    }
}

/// The page size asked for: 0 = the default; 1 to `max`.
fn page_size(value: i32, max: i64) -> Result<i64, ServiceError> {
    match i64::from(value) {
        0 => Ok(DEFAULT_PAGE_SIZE),
        size if (1..=max).contains(&size) => Ok(size),
        size => Err(ServiceError::InvalidArgument {
            field: "page_size",
            message: format!("{size} is out of range: 1 to {max}, or 0 for {DEFAULT_PAGE_SIZE}"),
        }),
    }
}

fn event_type(value: i32) -> Result<EventType, ServiceError> {
    let kind = match wire::EventType::try_from(value) {
        Ok(wire::EventType::BalanceLow) => EventType::BalanceLow,
        Ok(wire::EventType::CreditsExpiring) => EventType::CreditsExpiring,
        Ok(wire::EventType::CreditsExpired) => EventType::CreditsExpired,
        Ok(wire::EventType::HoldExpired) => EventType::HoldExpired,
        Ok(wire::EventType::DebtIncurred) => EventType::DebtIncurred,
        Ok(wire::EventType::GrantAdded) => EventType::GrantAdded,
        Ok(wire::EventType::Unspecified) | Err(_) => {
            return Err(ServiceError::InvalidArgument {
                field: "types",
                message: format!("{value} is not an event type"),
            });
        }
    };
    Ok(kind)
}

fn wire_event_type(kind: EventType) -> wire::EventType {
    match kind {
        EventType::BalanceLow => wire::EventType::BalanceLow,
        EventType::CreditsExpiring => wire::EventType::CreditsExpiring,
        EventType::CreditsExpired => wire::EventType::CreditsExpired,
        EventType::HoldExpired => wire::EventType::HoldExpired,
        EventType::DebtIncurred => wire::EventType::DebtIncurred,
        EventType::GrantAdded => wire::EventType::GrantAdded,
    }
}

fn registration(message: &CreateWebhookEndpointRequest) -> Result<Registration, ServiceError> {
    let url = WebhookUrl::parse(&message.url)?;
    let account_id = match message.account_id.as_str() {
        "" => None,
        text => Some(parse::id("account_id", text)?),
    };
    let mut event_types = message
        .types
        .iter()
        .map(|value| event_type(*value))
        .collect::<Result<Vec<_>, _>>()?;
    event_types.sort();
    event_types.dedup();
    Ok(Registration {
        url,
        account_id,
        event_types,
    })
}

fn endpoint(row: &Endpoint) -> wire::WebhookEndpoint {
    wire::WebhookEndpoint {
        endpoint_id: row.endpoint_id.to_string(),
        url: row.url.clone(),
        account_id: row.account_id.map(|id| id.to_string()).unwrap_or_default(),
        types: row
            .event_types
            .iter()
            .map(|kind| wire_event_type(*kind) as i32)
            .collect(),
        status: match row.status {
            EndpointStatus::Active => wire::WebhookEndpointStatus::Active,
            EndpointStatus::Paused => wire::WebhookEndpointStatus::Paused,
        } as i32,
        failed_attempts: u32::try_from(row.attempts).unwrap_or(0),
        failing_since: timestamp_opt(row.first_failed_at),
        next_attempt_at: Some(timestamp(row.next_attempt_at)),
        last_error: row.last_error.clone().unwrap_or_default(),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

fn delivery(row: &Attempt) -> wire::WebhookDelivery {
    wire::WebhookDelivery {
        delivery_id: row.delivery_id.to_string(),
        endpoint_id: row.endpoint_id.to_string(),
        event_id: row.event_id.to_string(),
        cursor: crate::service::events::cursor::encode(row.position),
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        http_status: row.http_status.unwrap_or(0),
        error: row.error.clone().unwrap_or_default(),
        succeeded: row.succeeded,
        duration_ms: u32::try_from(row.duration_ms).unwrap_or(0),
        attempted_at: Some(timestamp(row.attempted_at)),
    }
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook_endpoint(
        &self,
        request: Request<CreateWebhookEndpointRequest>,
    ) -> Result<Response<CreateWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint = parse::fingerprint(
            &message.idempotency_key,
            Rpc::CreateWebhookEndpoint,
            &message,
        )?;
        let registration = registration(&message)?;
        let encode = |created: &webhooks::Created| {
            CreateWebhookEndpointResponse {
                endpoint: Some(endpoint(&created.endpoint)),
                secret: created.secret.clone(),
            }
            .encode_to_vec()
        };
        let bytes = webhooks::create(
            &self.context,
            caller.tenant_id,
            registration,
            &fingerprint,
            encode,
        )
        .await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn list_webhook_endpoints(
        &self,
        request: Request<ListWebhookEndpointsRequest>,
    ) -> Result<Response<ListWebhookEndpointsResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let size = page_size(message.page_size, MAX_ENDPOINT_PAGE_SIZE)?;
        let page =
            webhooks::list(&self.context, caller.tenant_id, &message.page_token, size).await?;
        Ok(Response::new(ListWebhookEndpointsResponse {
            endpoints: page.rows.iter().map(endpoint).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_webhook_endpoint(
        &self,
        request: Request<GetWebhookEndpointRequest>,
    ) -> Result<Response<GetWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let endpoint_id = parse::id("endpoint_id", &request.get_ref().endpoint_id)?;
        let row = webhooks::get(&self.context, caller.tenant_id, endpoint_id).await?;
        Ok(Response::new(GetWebhookEndpointResponse {
            endpoint: Some(endpoint(&row)),
        }))
    }

    async fn delete_webhook_endpoint(
        &self,
        request: Request<DeleteWebhookEndpointRequest>,
    ) -> Result<Response<DeleteWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let endpoint_id = parse::id("endpoint_id", &request.get_ref().endpoint_id)?;
        let row = webhooks::delete(&self.context, caller.tenant_id, endpoint_id).await?;
        Ok(Response::new(DeleteWebhookEndpointResponse {
            endpoint: Some(endpoint(&row)),
        }))
    }

    async fn resume_webhook_endpoint(
        &self,
        request: Request<ResumeWebhookEndpointRequest>,
    ) -> Result<Response<ResumeWebhookEndpointResponse>, Status> {
        let caller = caller(&request)?;
        let endpoint_id = parse::id("endpoint_id", &request.get_ref().endpoint_id)?;
        let row = webhooks::resume(&self.context, caller.tenant_id, endpoint_id).await?;
        Ok(Response::new(ResumeWebhookEndpointResponse {
            endpoint: Some(endpoint(&row)),
        }))
    }

    async fn list_webhook_deliveries(
        &self,
        request: Request<ListWebhookDeliveriesRequest>,
    ) -> Result<Response<ListWebhookDeliveriesResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let endpoint_id = parse::id("endpoint_id", &message.endpoint_id)?;
        let size = page_size(message.page_size, MAX_DELIVERY_PAGE_SIZE)?;
        let page = webhooks::deliveries(
            &self.context,
            caller.tenant_id,
            endpoint_id,
            &message.page_token,
            size,
        )
        .await?;
        Ok(Response::new(ListWebhookDeliveriesResponse {
            deliveries: page.rows.iter().map(delivery).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}
