//! ExportUsage as a stream: every chunk of an export, a client that reads slowly, many runs
//! made at once in the database, and the database reads an export leaves running.

use std::time::{Duration, Instant};

use creditgate::proto::v1::account_service_client::AccountServiceClient;
use creditgate::proto::v1::{ExportUsageRequest, RunMetadata, TaskType};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use super::{labels, run};
use crate::helpers::money::{key, release_request};
use crate::helpers::{Authed, BearerKey, TestApp};

/// The smallest HTTP/2 window: a server streaming to a client that does not read is held back
/// once this much is in flight.
const SMALLEST_WINDOW_BYTES: u32 = 65_535;

/// How long the server may take to notice a cancelled export.
pub const NOTICE_LIMIT: Duration = Duration::from_secs(10);

/// Spacing of the polls while waiting for the server to notice (not a wait for an event).
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The database side of a run copied by [`TestApp::copy_run`], and the rollups rebuilt from
/// the holds as the migration builds them.
const COPY_RUN: &str = "
    INSERT INTO holds (hold_id, tenant_id, account_id, status, amount, captured, expires_at,
                       authorize_key, task_type, tool, model, project, run_id, label_keys,
                       label_values, created_at, resolved_at)
    SELECT gen_random_uuid(), tenant_id, account_id, status, amount, captured, expires_at,
           authorize_key || '/' || n, task_type, tool, model, project, run_id || '/' || n,
           label_keys, label_values, created_at + n * interval '1 microsecond',
           resolved_at + n * interval '1 microsecond'
    FROM holds, generate_series(1, $2::int) AS n
    WHERE hold_id = $1 AND status = 'RELEASED' AND captured = 0";

const DROP_ROLLUPS: &str = "DELETE FROM usage_rollups WHERE account_id = $1";

/// The rollups as the write path keeps them: resolved runs, and the refunds of all.
const REBUILD_ROLLUPS: &str = "
    INSERT INTO usage_rollups (account_id, day, task_type, model, runs, captured, refunded,
                               last_run_at)
    SELECT h.account_id, (h.created_at AT TIME ZONE 'UTC')::date, h.task_type, h.model,
           count(*) FILTER (WHERE h.status <> 'ACTIVE'),
           coalesce(sum(h.captured) FILTER (WHERE h.status <> 'ACTIVE'), 0),
           coalesce(sum(s.refunded), 0), max(h.created_at) FILTER (WHERE h.status <> 'ACTIVE')
    FROM holds h
    LEFT JOIN (SELECT hold_id, sum(refunded) AS refunded FROM settlements GROUP BY hold_id) s
           ON s.hold_id = h.hold_id
    WHERE h.account_id = $1
    GROUP BY 1, 2, 3, 4
    HAVING count(*) FILTER (WHERE h.status <> 'ACTIVE') > 0 OR coalesce(sum(s.refunded), 0) > 0";

/// Connections to the app's database, other than the asking one, inside a transaction or
/// running a statement: while no call is in flight, only an export's read.
const OPEN_READS: &str = "
    SELECT count(*) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND backend_type = 'client backend' AND state <> 'idle'";

impl TestApp {
    /// Every chunk of an export, in order.
    pub async fn export_chunks(&self, request: ExportUsageRequest) -> Result<Vec<String>, Status> {
        let mut stream = self
            .account_as(Some(&self.key))
            .export_usage(request)
            .await?
            .into_inner();
        let mut chunks = Vec::new();
        while let Some(chunk) = stream.message().await? {
            chunks.push(chunk.csv_chunk);
        }
        Ok(chunks)
    }

    /// An AccountService client with the app's key on a connection of its own whose HTTP/2
    /// windows are the smallest, so an export it does not read stays in progress.
    pub async fn slow_reader(&self) -> AccountServiceClient<Authed> {
        let channel: Channel = Endpoint::from_shared(format!("http://{}", self.address))
            .unwrap()
            .initial_stream_window_size(SMALLEST_WINDOW_BYTES)
            .initial_connection_window_size(SMALLEST_WINDOW_BYTES)
            .connect()
            .await
            .unwrap();
        AccountServiceClient::with_interceptor(channel, BearerKey::for_key(&self.key))
    }

    /// `count` released, uncharged chat runs on the account, each with labels of about
    /// `label_bytes` bytes: the first through Authorize and Release, the others copied from
    /// it.
    pub async fn bulk_runs(&self, account_id: &str, count: i32, label_bytes: usize) {
        let half = label_bytes / 2;
        let wide = RunMetadata {
            labels: labels(&[
                ("a", "x".repeat(half).as_str()),
                ("b", "y".repeat(half).as_str()),
            ]),
            ..run(TaskType::Chat, "acme/text-1", "bulk")
        };
        let hold_id = self.start_run(account_id, "1", wide).await.hold_id;
        self.credit()
            .release(release_request(&hold_id, &key(), ""))
            .await
            .unwrap();
        self.copy_run(account_id, &hold_id, count - 1).await;
    }

    /// Makes `copies` more runs like the released, uncharged run `hold_id`, each a microsecond
    /// after the one before, straight in the database (the volume of a large export in
    /// milliseconds, where Authorize would take seconds), keeping the usage rollups equal to
    /// the holds.
    pub async fn copy_run(&self, account_id: &str, hold_id: &str, copies: i32) {
        let mut client = self.pool.get().await.unwrap();
        let account: uuid::Uuid = account_id.parse().unwrap();
        let hold: uuid::Uuid = hold_id.parse().unwrap();
        let transaction = client.transaction().await.unwrap();
        let copied = transaction
            .execute(COPY_RUN, &[&hold, &copies])
            .await
            .unwrap();
        assert_eq!(
            copied,
            u64::try_from(copies).unwrap(),
            "the run is released and uncharged"
        );
        for statement in [DROP_ROLLUPS, REBUILD_ROLLUPS] {
            transaction.execute(statement, &[&account]).await.unwrap();
        }
        transaction.commit().await.unwrap();
    }

    /// How many connections to the app's database are in a transaction or a statement.
    pub async fn open_reads(&self) -> i64 {
        let client = self.pool.get().await.unwrap();
        client.query_one(OPEN_READS, &[]).await.unwrap().get(0)
    }
}

/// Tries `attempt` until it gives something or [`NOTICE_LIMIT`] passes.
pub async fn within_notice_limit<T, F, Fut>(mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + NOTICE_LIMIT;
    loop {
        if let Some(found) = attempt().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
