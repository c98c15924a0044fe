//! Quote totals, computed by hand: tokens, images, video and megapixels.

use chrono::Duration;
use creditgate::proto::v1::{ImageUsage, QuoteRequest, Usage, VideoResolution};
use tonic::Code;

use super::{FLASH, FLASH_LITE, O3_PRO, SEED, item, quote, quote_request, token_item, tokens};
use crate::helpers::TestApp;
use crate::helpers::status::expect_refused;
use crate::helpers::time::time;

#[tokio::test]
async fn quote_matches_hand_computation() {
    let app = TestApp::spawn().await;

    let before = app.now();
    let o3 = quote(&app, O3_PRO, tokens(10_000, 10_000, 0))
        .await
        .unwrap();
    let after = app.now();
    assert_eq!(o3.total, "2.5");
    assert_eq!(
        o3.line_items,
        vec![
            token_item("input_tokens", O3_PRO, "1", "0.5", "0.5"),
            token_item("output_tokens", O3_PRO, "1", "2", "2"),
        ]
    );
    assert_eq!(o3.catalog_version, 1);
    assert!(
        !o3.quote_id.is_empty() && o3.quote_id.len() <= 1_024,
        "{o3:?}"
    );
    let expires_at = time(o3.expires_at.as_ref().unwrap());
    assert!(
        expires_at >= before + Duration::minutes(10) && expires_at <= after + Duration::minutes(10),
        "expires_at {expires_at} is not now + 10 minutes ({before} .. {after})"
    );
    // Without an account, eligibility is not evaluated.
    assert!(!o3.allowed && !o3.affordable, "{o3:?}");
    assert_eq!(o3.denial_reason, "");
    assert_eq!(o3.available, "");

    let lite = quote(&app, FLASH_LITE, tokens(0, 0, 12_345)).await.unwrap();
    assert_eq!(lite.total, "0.000308625");
    assert_eq!(
        lite.line_items,
        vec![token_item(
            "cached_read_tokens",
            FLASH_LITE,
            "1.2345",
            "0.00025",
            "0.000308625"
        )]
    );
    assert_eq!(lite.catalog_version, 1);

    let seed = quote(&app, SEED, tokens(1_000, 2_000, 500_000))
        .await
        .unwrap();
    assert_eq!(seed.total, "0.073125");
    assert_eq!(
        seed.line_items,
        vec![
            token_item("input_tokens", SEED, "0.1", "0.00625", "0.000625"),
            token_item("output_tokens", SEED, "0.2", "0.05", "0.01"),
            token_item("cached_read_tokens", SEED, "50", "0.00125", "0.0625"),
        ]
    );
    assert_eq!(seed.catalog_version, 1);

    // Every quote has its own id.
    assert_ne!(o3.quote_id, lite.quote_id);
    assert_ne!(lite.quote_id, seed.quote_id);

    // A tool: its fee, its default model, a surcharge, then the batch multiplier on the subtotal.
    let research = quote_request(
        &app,
        QuoteRequest {
            tool: "web-research".to_owned(),
            usage: Some(Usage {
                searches: 2,
                multipliers: vec!["batch".to_owned()],
                ..tokens(10_000, 10_000, 0)
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        research.line_items,
        vec![
            item(
                "tool_execution",
                "web-research execution",
                "1",
                "execution",
                "0.1",
                "0.1"
            ),
            token_item("input_tokens", FLASH, "1", "0.0075", "0.0075"),
            token_item("output_tokens", FLASH, "1", "0.0625", "0.0625"),
            item(
                "web_search",
                "web_search surcharge",
                "2",
                "search",
                "0.25",
                "0.5"
            ),
            item(
                "multiplier",
                "batch × 0.5",
                "0.67",
                "credits",
                "-0.5",
                "-0.335"
            ),
        ]
    );
    assert_eq!(research.total, "0.335");

    app.finish().await;
}

#[tokio::test]
async fn quote_prices_images_video_and_megapixels() {
    let app = TestApp::spawn().await;

    // A tool's default model, an explicit quality tier, and a size with no quality named
    // (the first tier listed for it: "standard").
    let images = quote_request(
        &app,
        QuoteRequest {
            tool: "image-studio".to_owned(),
            usage: Some(Usage {
                images: vec![
                    ImageUsage {
                        count: 2,
                        size: "1024x1536".to_owned(),
                        quality: "hd".to_owned(),
                        ..ImageUsage::default()
                    },
                    ImageUsage {
                        count: 3,
                        size: "1024x1024".to_owned(),
                        ..ImageUsage::default()
                    },
                ],
                ..Usage::default()
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        images.line_items,
        vec![
            item(
                "tool_execution",
                "image-studio execution",
                "1",
                "execution",
                "0.5",
                "0.5"
            ),
            item(
                "image",
                "openai/gpt-image-1 image 1024x1536 hd",
                "2",
                "image",
                "31",
                "62"
            ),
            item(
                "image",
                "openai/gpt-image-1 image 1024x1024 standard",
                "3",
                "image",
                "8",
                "24"
            ),
        ]
    );
    assert_eq!(images.total, "86.5");

    // A size the model has no tier for, priced per megapixel.
    let flux = quote(
        &app,
        "black-forest-labs/flux-1.1-pro",
        Usage {
            images: vec![ImageUsage {
                count: 2,
                megapixels: "1.25".to_owned(),
                ..ImageUsage::default()
            }],
            ..Usage::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        flux.line_items,
        vec![item(
            "image",
            "black-forest-labs/flux-1.1-pro image 1.25 megapixels",
            "2.5",
            "megapixel",
            "4",
            "10"
        )]
    );
    assert_eq!(flux.total, "10");
    // gpt-image-1 has no per-megapixel rate: refused, never free.
    expect_refused(
        quote(
            &app,
            "openai/gpt-image-1",
            Usage {
                images: vec![ImageUsage {
                    count: 1,
                    megapixels: "1".to_owned(),
                    ..ImageUsage::default()
                }],
                ..Usage::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );

    // Video seconds by resolution, with the tool's fee.
    let video = quote_request(
        &app,
        QuoteRequest {
            tool: "video-studio".to_owned(),
            model: "kling/kling-2.1".to_owned(),
            usage: Some(Usage {
                video_seconds: "7.5".to_owned(),
                resolution: VideoResolution::VideoResolution1080p as i32,
                ..Usage::default()
            }),
            ..QuoteRequest::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        video.line_items,
        vec![
            item(
                "tool_execution",
                "video-studio execution",
                "1",
                "execution",
                "1",
                "1"
            ),
            item(
                "video",
                "kling/kling-2.1 video 1080p",
                "7.5",
                "second",
                "11",
                "82.5"
            ),
        ]
    );
    assert_eq!(video.total, "83.5");
    // Video without a resolution is refused.
    expect_refused(
        quote(
            &app,
            "kling/kling-2.1",
            Usage {
                video_seconds: "5".to_owned(),
                ..Usage::default()
            },
        )
        .await,
        Code::InvalidArgument,
        "INVALID_USAGE",
    );

    app.finish().await;
}
