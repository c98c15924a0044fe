//! `creditgate webhooks` against DATABASE_URL: an endpoint made there is the API's, its secret
//! printed once; list, deliveries, resume and delete work on it.

use creditgate::proto::v1::{GetWebhookEndpointRequest, GrantSource};
use tokio::process::Command;

use super::{deliver_until, verifies};
use crate::helpers::TestApp;
use crate::helpers::receiver::Receiver;

async fn creditgate(app: &TestApp, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_creditgate"))
        .arg("webhooks")
        .args(args)
        .args(["--tenant", "test"])
        .env("DATABASE_URL", app.database_url())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "webhooks {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn an_endpoint_made_on_the_command_line_receives_events() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let created = creditgate(
        &app,
        &["create", "--url", &receiver.url, "--type", "GRANT_ADDED"],
    )
    .await;
    let mut lines = created.lines();
    let (endpoint_id, secret) = (
        lines.next().unwrap().to_owned(),
        lines.next().unwrap().to_owned(),
    );
    assert!(secret.starts_with("whsec_"), "{created}");
    app.webhooks_as(Some(&app.key))
        .get_webhook_endpoint(GetWebhookEndpointRequest {
            endpoint_id: endpoint_id.clone(),
        })
        .await
        .unwrap();
    let listed = creditgate(&app, &["list"]).await;
    assert!(
        listed.contains(&endpoint_id) && !listed.contains(&secret),
        "{listed}"
    );

    let account_id = app.account().await;
    app.grant(&account_id, GrantSource::Promo, "2").await;
    deliver_until(&app, |report| report.delivered >= 1).await;
    let request = &receiver.delivered()[0];
    assert!(verifies(
        &secret,
        request.header("creditgate-signature"),
        &request.body
    ));
    let attempts = creditgate(&app, &["deliveries", "--endpoint", &endpoint_id]).await;
    assert!(
        attempts.contains("delivered") && attempts.contains("200"),
        "{attempts}"
    );

    creditgate(&app, &["resume", "--endpoint", &endpoint_id]).await;
    creditgate(&app, &["delete", "--endpoint", &endpoint_id]).await;
    assert!(creditgate(&app, &["list"]).await.is_empty());
    app.finish().await;
}
