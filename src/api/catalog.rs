//! CatalogService: publish catalog versions, read them, list models. Every RPC is authenticated
//! by `RequireKey` (publishing needs `admin`).

use prost::Message as _;
use tonic::{Request, Response, Status};

use super::{caller, parse, pricing};
use crate::proto::v1::catalog_service_server::CatalogService;
use crate::proto::v1::{
    GetCatalogRequest, GetCatalogResponse, ListModelsRequest, ListModelsResponse,
    PublishCatalogRequest, PublishCatalogResponse,
};
use crate::service::idempotency::Rpc;
use crate::service::{Context, ServiceError, catalog};

/// Models per page when the request names no size.
const DEFAULT_PAGE_SIZE: usize = 50;
/// Most models per page.
const MAX_PAGE_SIZE: usize = 500;

/// Serves `creditgate.v1.CatalogService`.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    context: Context,
}

impl CatalogApi {
    /// A service over `context`.
    pub fn new(context: Context) -> Self {
        CatalogApi { context }
    }

    async fn catalog(
        &self,
        tenant_id: crate::ids::TenantId,
        version: u64,
    ) -> Result<std::sync::Arc<crate::pricing::Catalog>, ServiceError> {
        match version {
            0 => catalog::active(&self.context, tenant_id).await,
            version => {
                let version =
                    i64::try_from(version).map_err(|_| ServiceError::InvalidArgument {
                        field: "version",
                        message: "out of range".to_owned(),
                    })?;
                catalog::version(&self.context, tenant_id, version).await
            }
        }
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn publish_catalog(
        &self,
        request: Request<PublishCatalogRequest>,
    ) -> Result<Response<PublishCatalogResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.into_inner();
        let fingerprint =
            parse::fingerprint(&message.idempotency_key, Rpc::PublishCatalog, &message)?;
        let wire = message
            .catalog
            .as_ref()
            .ok_or_else(|| ServiceError::InvalidArgument {
                field: "catalog",
                message: "required".to_owned(),
            })?;
        let document = pricing::catalog_from(wire)?;
        let effective_at = message
            .effective_at
            .as_ref()
            .map(|timestamp| parse::time("effective_at", timestamp))
            .transpose()?;
        let encode = |published: &crate::pricing::Catalog| {
            PublishCatalogResponse {
                catalog: Some(pricing::catalog(published)),
            }
            .encode_to_vec()
        };
        let bytes = catalog::publish(
            &self.context,
            caller,
            document,
            effective_at,
            fingerprint,
            encode,
        )
        .await?;
        Ok(Response::new(parse::decode(&bytes)?))
    }

    async fn get_catalog(
        &self,
        request: Request<GetCatalogRequest>,
    ) -> Result<Response<GetCatalogResponse>, Status> {
        let caller = caller(&request)?;
        let catalog = self
            .catalog(caller.tenant_id, request.get_ref().version)
            .await?;
        Ok(Response::new(GetCatalogResponse {
            catalog: Some(pricing::catalog(&catalog)),
        }))
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let caller = caller(&request)?;
        let message = request.get_ref();
        let page_size = match usize::try_from(message.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => {
                return Err(ServiceError::InvalidArgument {
                    field: "page_size",
                    message: "must not be negative".to_owned(),
                }
                .into());
            }
        };
        let modality = pricing::modality(message.modality);
        let catalog = self.catalog(caller.tenant_id, message.version).await?;
        let mut models: Vec<&crate::pricing::Model> = catalog
            .models
            .iter()
            .filter(|model| modality.is_none_or(|modality| model.modality == modality))
            .filter(|model| {
                message.page_token.is_empty() || model.id.as_str() > message.page_token.as_str()
            })
            .collect();
        models.sort_by(|left, right| left.id.cmp(&right.id));
        let more = models.len() > page_size;
        models.truncate(page_size);
        let next_page_token = if more {
            models
                .last()
                .map(|model| model.id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListModelsResponse {
            models: models.into_iter().map(pricing::model).collect(),
            next_page_token,
            catalog_version: u64::try_from(catalog.version).unwrap_or(0),
        }))
    }
}
