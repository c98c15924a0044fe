//! One account's history with a run of every kind: each status (an expiry made by moving the
//! clock, a late settle of an expired hold), a refund, a capture above the hold, a partial
//! capture of a live hold, three task types and a run without one, two models, two projects
//! and labels.

use chrono::Duration;
use creditgate::proto::v1::{Hold, RunMetadata, TaskType};

use super::{labels, run};
use crate::helpers::TestApp;
use crate::helpers::money::{key, refund, release_request};

pub const TEXT_MODEL: &str = "acme/text-1";
pub const IMAGE_MODEL: &str = "acme/image-1";

/// Runs of one account, named by what happened to them, in the order they were made.
pub struct History {
    pub account_id: String,
    /// Chat on the text model for `alpha`, labelled; a hold of 10 settled for 7, 2 refunded.
    pub chat_refunded: Hold,
    /// Image for `beta`; released.
    pub image_released: Hold,
    /// Chat on the text model for `beta`; expired when the clock passed its TTL.
    pub chat_expired: Hold,
    /// Image for `alpha`; expired, then settled late for 4 (still EXPIRED).
    pub image_settled_late: Hold,
    /// Search without a model for `alpha`; active, 3 of its 10 captured by a partial settle.
    pub search_active: Hold,
    /// Tool step on the text model for `alpha`; a hold of 10 settled for 12.
    pub tool_above_hold: Hold,
    /// No task type, model nor project; a hold of 5 settled for 3.
    pub unnamed: Hold,
}

impl History {
    /// Makes the history on a new account funded with 1,000.
    pub async fn make(app: &TestApp) -> History {
        let account_id = app.funded_account("1000").await;
        let chat_refunded = RunMetadata {
            run_id: "run-1".to_owned(),
            labels: labels(&[("team", "search"), ("env", "prod")]),
            ..run(TaskType::Chat, TEXT_MODEL, "alpha")
        };
        let chat_refunded = app.start_run(&account_id, "10", chat_refunded).await;
        let settled = app
            .settle(&chat_refunded.hold_id, "7", false)
            .await
            .unwrap();
        refund(app, &settled.settlement.unwrap().settlement_id, "2")
            .await
            .unwrap();

        let image = RunMetadata {
            labels: labels(&[("team", "art")]),
            ..run(TaskType::Image, IMAGE_MODEL, "beta")
        };
        let image_released = app.start_run(&account_id, "10", image).await;
        app.credit()
            .release(release_request(
                &image_released.hold_id,
                &key(),
                "cancelled",
            ))
            .await
            .unwrap();

        let chat = run(TaskType::Chat, TEXT_MODEL, "beta");
        let chat_expired = app.start_run_for(&account_id, "10", chat, 60).await;
        let image = run(TaskType::Image, IMAGE_MODEL, "alpha");
        let image_settled_late = app.start_run_for(&account_id, "10", image, 60).await;
        app.advance(Duration::minutes(2));
        app.sweep().await;
        app.settle(&image_settled_late.hold_id, "4", false)
            .await
            .unwrap();

        let search = run(TaskType::Search, "", "alpha");
        let search_active = app.start_run(&account_id, "10", search).await;
        app.settle(&search_active.hold_id, "3", true).await.unwrap();
        let tool = run(TaskType::Tool, TEXT_MODEL, "alpha");
        let tool_above_hold = app.start_run(&account_id, "10", tool).await;
        app.settle(&tool_above_hold.hold_id, "12", false)
            .await
            .unwrap();
        let unnamed = app
            .start_run(&account_id, "5", RunMetadata::default())
            .await;
        app.settle(&unnamed.hold_id, "3", false).await.unwrap();
        History {
            account_id,
            chat_refunded,
            image_released,
            chat_expired,
            image_settled_late,
            search_active,
            tool_above_hold,
            unnamed,
        }
    }

    /// Every run, newest first.
    pub fn newest_first(&self) -> Vec<&Hold> {
        vec![
            &self.unnamed,
            &self.tool_above_hold,
            &self.search_active,
            &self.image_settled_late,
            &self.chat_expired,
            &self.image_released,
            &self.chat_refunded,
        ]
    }
}
