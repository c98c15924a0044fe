//! Calls sent at once: each in its own task, all released together by a barrier.

use std::future::Future;
use std::sync::Arc;

/// Runs every call in its own task, released together by a barrier; the results in order.
pub async fn burst<T, F>(calls: Vec<F>) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(calls.len()));
    let mut tasks = Vec::with_capacity(calls.len());
    for call in calls {
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            call.await
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

/// Runs `count` calls at once, call `i` made by `call(i)`; the results in call order.
pub async fn race<T, F, Fut>(count: usize, call: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    burst((0..count).map(call).collect()).await
}
