//! Health and reflection: open to everyone, so probes and grpcurl work without a key.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::TestApp;

const CREDITGATE_SERVICES: [&str; 3] = [
    "creditgate.v1.CreditService",
    "creditgate.v1.AccountService",
    "creditgate.v1.CatalogService",
];

#[tokio::test]
async fn health_reports_serving_for_the_server_and_each_service() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel.clone());
    for service in std::iter::once("").chain(CREDITGATE_SERVICES) {
        let response = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status(),
            ServingStatus::Serving,
            "service {service:?}"
        );
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "creditgate.v1.NoSuchService".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn reflection_v1_lists_the_creditgate_services_and_describes_them() {
    use v1::server_reflection_client::ServerReflectionClient;
    use v1::server_reflection_request::MessageRequest;
    use v1::server_reflection_response::MessageResponse;
    let app = TestApp::spawn().await;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let requests = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("creditgate.v1.CreditService".to_owned()),
    ]
    .map(|message| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for service in CREDITGATE_SERVICES.iter().chain(&["grpc.health.v1.Health"]) {
        assert!(
            names.iter().any(|name| name == service),
            "{service} missing from {names:?}"
        );
    }
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the file holding CreditService");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn reflection_v1alpha_answers_older_clients() {
    use v1alpha::server_reflection_client::ServerReflectionClient;
    use v1alpha::server_reflection_request::MessageRequest;
    use v1alpha::server_reflection_response::MessageResponse;
    let app = TestApp::spawn().await;
    let mut reflection = ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    assert!(
        list.service
            .iter()
            .any(|service| service.name == "creditgate.v1.CreditService")
    );
    app.stop().await;
}
