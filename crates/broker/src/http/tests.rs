//! The router driven in-process (tower's `oneshot`): readiness around the node's life, and
//! the shapes the e2e tests (tests/e2e/test_http_api.py) do not pin byte by byte.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::{router, HttpLimits, HttpState};
use crate::{Broker, BrokerConfig};

async fn call(state: &Arc<HttpState>, req: Request<Body>) -> (StatusCode, Value) {
    send(router(Arc::clone(state)), req).await
}

/// Calls `app` (a clone of one router shares its limits).
async fn send(app: axum::Router, req: Request<Body>) -> (StatusCode, Value) {
    let response = app.oneshot(req).await.expect("infallible");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("every answer is JSON")
    };
    (status, json)
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

fn post_json(uri: &str, content_type: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn probes_answer_before_the_node_serves() {
    let state = Arc::new(HttpState::new(HttpLimits::default()));
    let (status, body) = call(&state, get("/livez")).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("live"))
    );
    for uri in [
        "/readyz",
        "/v1/status",
        "/v3/clusters",
        "/topics/t/partitions/0/records?offset=0",
    ] {
        let (status, body) = call(&state, get(uri)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert_eq!(body["error_code"], 50302, "{uri}");
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.contains("starting")));
    }
}

#[tokio::test]
async fn answers_follow_rest_proxy_and_readiness_follows_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let broker = Broker::start(config).await.expect("start");
    let state = Arc::new(HttpState::new(HttpLimits::default()));
    let _ = state.node.set(broker.ctx());
    let (status, _) = call(&state, get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);

    let cluster = broker.cluster_id().to_string();
    let (status, topic) = call(
        &state,
        post_json(
            &format!("/v3/clusters/{cluster}/topics"),
            "application/json",
            r#"{"topic_name": "t", "partitions_count": 2}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    // REST Proxy's order: kind and metadata first.
    let keys: Vec<&String> = topic.as_object().expect("object").keys().collect();
    assert_eq!(keys[..2], ["kind", "metadata"]);
    assert_eq!(topic["kind"], "KafkaTopic");
    assert_eq!(
        topic["metadata"]["resource_name"],
        format!("crn:///kafka={cluster}/topic=t")
    );
    assert_eq!(topic["partitions_count"], 2);

    let (status, produced) = call(
        &state,
        post_json(
            "/topics/t/partitions/1",
            "application/vnd.kafka.binary.v2+json",
            r#"{"records": [{"key": "aw==", "value": "dg=="}, {"value": null}]}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        produced["offsets"],
        serde_json::json!([
            {"partition": 1, "offset": 0, "error_code": null, "error": null},
            {"partition": 1, "offset": 1, "error_code": null, "error": null},
        ])
    );

    let (status, partition) = call(
        &state,
        get(&format!("/v3/clusters/{cluster}/topics/t/partitions/1")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(partition["kind"], "KafkaPartition");
    assert_eq!(
        (
            partition["log_start_offset"].as_u64(),
            partition["high_watermark"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert_eq!(partition["leader_id"], 1);
    assert!(partition["size_bytes"].as_u64().is_some_and(|s| s > 0));

    let ready = Arc::clone(&state);
    broker.shutdown().await;
    let (status, body) = call(&ready, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error_code"], 50302);
}

/// With one slot, a request waits while a consume holds it; the consume, asking to wait
/// longer than the request timeout, is cut off at the timeout with 503 50301, which frees
/// the slot for the one waiting.
#[tokio::test]
async fn requests_wait_for_a_slot_within_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = BrokerConfig::new(
        dir.path().to_path_buf(),
        "127.0.0.1:0".parse().expect("addr"),
    );
    let broker = Broker::start(config).await.expect("start");
    let node = broker.ctx();
    let created = crate::node::topics::NewTopic {
        name: "t".into(),
        partitions: 1,
        replication_factor: -1,
        ..Default::default()
    };
    node.create_topic(&created, false).await.expect("topic");
    let limits = HttpLimits {
        max_in_flight: 1,
        request_timeout: std::time::Duration::from_millis(300),
        ..HttpLimits::default()
    };
    let state = Arc::new(HttpState::new(limits));
    let _ = state.node.set(node);

    let app = router(Arc::clone(&state));
    let long = {
        let app = app.clone();
        tokio::spawn(async move {
            send(
                app,
                get("/topics/t/partitions/0/records?offset=0&timeout_ms=5000"),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let (status, _) = send(
        app.clone(),
        get(&format!("/v3/clusters/{}", broker.cluster_id())),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(150)
            && waited < std::time::Duration::from_secs(3),
        "waited {waited:?} for the slot"
    );
    let (status, body) = long.await.expect("task");
    assert_eq!(
        (status, body["error_code"].as_u64()),
        (StatusCode::SERVICE_UNAVAILABLE, Some(50301))
    );
    // Probes do not wait for a slot.
    let (status, _) = send(app, get("/livez")).await;
    assert_eq!(status, StatusCode::OK);
    broker.shutdown().await;
}
