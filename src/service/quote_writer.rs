//! Group insert of quotes: concurrent Quote calls are written together, one statement per
//! batch, and each call returns once its quote is stored. A quote is therefore usable by any
//! replica as soon as Quote answers, at a fraction of the cost of one insert per call.

use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::ServiceError;
use crate::store::StoreError;
use crate::store::catalog::{QuoteRow, insert_quotes};

/// Quotes waiting to be written, at most (callers wait beyond it).
const QUEUE: usize = 4_096;
/// Most quotes in one insert.
const MAX_BATCH: usize = 512;

type Pending = (Uuid, QuoteRow, oneshot::Sender<Result<(), String>>);

/// The writer of one server.
#[derive(Debug, Default)]
pub struct QuoteWriter {
    queue: OnceLock<mpsc::Sender<Pending>>,
}

impl QuoteWriter {
    /// Stores `quote`, together with the others submitted meanwhile.
    pub async fn store(
        &self,
        pool: &deadpool_postgres::Pool,
        tenant_id: Uuid,
        quote: QuoteRow,
    ) -> Result<(), ServiceError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(write_batches(pool.clone(), receiver));
            sender
        });
        let (done, written) = oneshot::channel();
        let unavailable = || {
            ServiceError::Unavailable(StoreError::Unavailable(
                "the quote writer stopped".to_owned(),
            ))
        };
        queue
            .send((tenant_id, quote, done))
            .await
            .map_err(|_| unavailable())?;
        match written.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(ServiceError::Unavailable(StoreError::Unavailable(message))),
            Err(_) => Err(unavailable()),
        }
    }
}

async fn write_batches(pool: deadpool_postgres::Pool, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let rows: Vec<(Uuid, QuoteRow)> = batch
            .iter()
            .map(|(tenant_id, quote, _)| (*tenant_id, quote.clone()))
            .collect();
        let result = insert_quotes(&pool, &rows).await.map_err(|error| {
            tracing::warn!(%error, quotes = rows.len(), "storing quotes failed");
            "storing the quote failed; quote again".to_owned()
        });
        for (_, _, done) in batch.drain(..) {
            let _ = done.send(result.clone());
        }
    }
}
