//! CatalogService: The pricing catalog: publish versions, read them, list models.
//! Every RPC is authenticated by `RequireKey`; unserved ones answer UNIMPLEMENTED.

use tonic::{Request, Response, Status};

use crate::proto::v1::catalog_service_server::CatalogService;
use crate::proto::v1::{
    GetCatalogRequest, GetCatalogResponse, ListModelsRequest, ListModelsResponse,
    PublishCatalogRequest, PublishCatalogResponse,
};
use crate::service::Context;

/// Serves `creditgate.v1.CatalogService`.
#[derive(Debug, Clone)]
pub struct CatalogApi {
    #[allow(dead_code)]
    context: Context,
}

impl CatalogApi {
    /// A service over `context`.
    pub fn new(context: Context) -> Self {
        CatalogApi { context }
    }
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    async fn publish_catalog(
        &self,
        request: Request<PublishCatalogRequest>,
    ) -> Result<Response<PublishCatalogResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CatalogService/PublishCatalog")
    }

    async fn get_catalog(
        &self,
        request: Request<GetCatalogRequest>,
    ) -> Result<Response<GetCatalogResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CatalogService/GetCatalog")
    }

    async fn list_models(
        &self,
        request: Request<ListModelsRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        crate::api::not_implemented(&request, "creditgate.v1.CatalogService/ListModels")
    }
}
