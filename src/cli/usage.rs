//! `creditgate usage export`: an account's runs as CSV, read straight from the database.

use anyhow::Context as _;
use clap::Subcommand;

use super::with_database;
use crate::config::DatabaseSettings;
use crate::service::tenants;
use crate::store::StoreError;

#[derive(Debug, Subcommand)]
pub(super) enum UsageCommand {
    /// Writes an account's runs as CSV to standard output, oldest first (the columns of
    /// ExportUsage), read from one snapshot of the database.
    Export {
        /// Tenant name.
        #[arg(long)]
        tenant: String,
        /// Account id, or the account's external id.
        #[arg(long)]
        account: String,
        /// Only runs created at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Only runs created before this time (RFC 3339).
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        database: DatabaseSettings,
    },
}

pub(super) async fn run(command: UsageCommand) -> anyhow::Result<()> {
    let UsageCommand::Export {
        tenant,
        account,
        from,
        to,
        database,
    } = command;
    if let (Some(from), Some(to)) = (from, to) {
        anyhow::ensure!(from < to, "--from must be before --to");
    }
    with_database(&database, async |db| {
        use std::io::Write as _;
        let mut client = db.pool.get().await.map_err(StoreError::from)?;
        let tenant = tenants::find_tenant(&client, &tenant).await?;
        // An id when it parses as one (its type comes from find_account), else an external id.
        let (account_id, external_id) = match account.parse() {
            Ok(account_id) => (Some(account_id), None),
            Err(_) => (None, Some(account.as_str())),
        };
        let found = crate::store::accounts::find_account(
            &client,
            tenant.tenant_id,
            account_id,
            external_id,
        )
        .await?
        .with_context(|| format!("no account {account} for tenant {}", tenant.name))?;
        let filter = crate::store::usage::UsageFilter {
            start: from,
            end: to,
            ..Default::default()
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut csv = crate::service::usage::CsvChunks::new();
        let mut failed: Option<std::io::Error> = None;
        crate::store::usage::export_usage(
            &mut client,
            tenant.tenant_id,
            found.account_id,
            &filter,
            chrono::Utc::now(),
            1_000,
            |rows| {
                for row in &rows {
                    if let Some(chunk) = csv.push(row)
                        && let Err(error) = out.write_all(chunk.as_bytes())
                    {
                        failed = Some(error);
                        break;
                    }
                }
                std::future::ready(failed.is_none())
            },
        )
        .await?;
        if let Some(error) = failed {
            return Err(error).context("writing the CSV");
        }
        out.write_all(csv.finish().as_bytes())?;
        out.flush()?;
        Ok(())
    })
    .await
}
