//! `creditgate verify`: recomputes every cached balance from the journal and the rows it
//! explains, and lists what disagrees. Each check is one query returning `(subject, detail)`.

use deadpool_postgres::GenericClient;
use futures::{StreamExt as _, pin_mut};

use super::{StoreError, rows, secrets};
use crate::ids::HoldId;
use crate::pricing::quote_token::QuoteKey;

/// A disagreement between cached state and the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discrepancy {
    /// Which check.
    pub check: &'static str,
    /// The row it concerns.
    pub subject: String,
    /// What disagrees.
    pub detail: String,
}

/// Most discrepancies one check reports.
const MAX_PER_CHECK: i64 = 100;

const CHECKS: [(&str, &str); 22] = [
    (
        "every ledger row refers to rows that exist, of its own account",
        "SELECT 'allocation ' || a.hold_id || ' / ' || a.grant_id, 'its hold or grant is missing or of another account'
         FROM hold_allocations a LEFT JOIN holds h ON h.hold_id = a.hold_id LEFT JOIN grants g ON g.grant_id = a.grant_id
         WHERE h.hold_id IS NULL OR g.grant_id IS NULL OR h.account_id <> a.account_id OR g.account_id <> a.account_id
         UNION ALL
         SELECT 'settlement ' || s.settlement_id, 'its hold is missing or of another account'
         FROM settlements s LEFT JOIN holds h ON h.hold_id = s.hold_id
         WHERE h.hold_id IS NULL OR h.account_id <> s.account_id
         UNION ALL
         SELECT 'settlement part ' || p.settlement_id || ' / ' || p.grant_id,
         'its settlement or grant is missing or of another account'
         FROM settlement_parts p LEFT JOIN settlements s ON s.settlement_id = p.settlement_id
         LEFT JOIN grants g ON g.grant_id = p.grant_id
         WHERE s.settlement_id IS NULL OR g.grant_id IS NULL OR s.account_id <> p.account_id OR g.account_id <> p.account_id
         UNION ALL
         SELECT 'refund ' || r.refund_id, 'its settlement is missing or of another account'
         FROM refunds r LEFT JOIN settlements s ON s.settlement_id = r.settlement_id
         WHERE s.settlement_id IS NULL OR s.account_id <> r.account_id
         UNION ALL
         SELECT 'hold ' || h.hold_id, 'its account is missing or of another tenant'
         FROM holds h LEFT JOIN accounts a ON a.account_id = h.account_id
         WHERE a.account_id IS NULL OR a.tenant_id <> h.tenant_id
         UNION ALL
         SELECT 'grant ' || g.grant_id, 'its account is missing or of another tenant'
         FROM grants g LEFT JOIN accounts a ON a.account_id = g.account_id
         WHERE a.account_id IS NULL OR a.tenant_id <> g.tenant_id",
    ),
    (
        "every ledger row's id is unique alone, though its key also names its account",
        "SELECT 'grant ' || grant_id, count(*) || ' rows' FROM grants GROUP BY grant_id HAVING count(*) > 1
         UNION ALL
         SELECT 'hold ' || hold_id, count(*) || ' rows' FROM holds GROUP BY hold_id HAVING count(*) > 1
         UNION ALL
         SELECT 'settlement ' || settlement_id, count(*) || ' rows' FROM settlements
         GROUP BY settlement_id HAVING count(*) > 1
         UNION ALL
         SELECT 'refund ' || refund_id, count(*) || ' rows' FROM refunds GROUP BY refund_id HAVING count(*) > 1
         UNION ALL
         SELECT 'allocation ' || hold_id || ' / ' || grant_id, count(*) || ' rows' FROM hold_allocations
         GROUP BY hold_id, grant_id HAVING count(*) > 1
         UNION ALL
         SELECT 'settlement part ' || settlement_id || ' / ' || grant_id, count(*) || ' rows' FROM settlement_parts
         GROUP BY settlement_id, grant_id HAVING count(*) > 1
         UNION ALL
         SELECT 'allowance ' || allowance_id, count(*) || ' rows' FROM allowances GROUP BY allowance_id HAVING count(*) > 1
         UNION ALL
         SELECT 'allowance grant ' || allowance_id || ' / ' || period_start, count(*) || ' rows' FROM allowance_grants
         GROUP BY allowance_id, period_start HAVING count(*) > 1
         UNION ALL
         SELECT 'spend limit ' || spend_limit_id, count(*) || ' rows' FROM spend_limits
         GROUP BY spend_limit_id HAVING count(*) > 1",
    ),
    (
        "usage rollups equal the resolved runs they count and the refunds of all",
        "SELECT coalesce(r.account_id, h.account_id) || ' ' || coalesce(r.day, h.day) || ' ' ||
         coalesce(r.task_type, h.task_type) || ' ' || coalesce(r.model, h.model),
         'rollup runs ' || coalesce(r.runs, 0) || ', captured ' || coalesce(r.captured, 0) || ', refunded ' ||
         coalesce(r.refunded, 0) || ', last run ' || coalesce(r.last_run_at::text, '-') || '; holds ' ||
         coalesce(h.runs, 0) || ', ' || coalesce(h.captured, 0) || ', ' || coalesce(h.refunded, 0) || ', ' ||
         coalesce(h.last_run_at::text, '-')
         FROM usage_rollups r
         FULL JOIN (SELECT h.account_id, (h.created_at AT TIME ZONE 'UTC')::date AS day, h.task_type, h.model,
                    count(*) FILTER (WHERE h.status <> 'ACTIVE') AS runs,
                    coalesce(sum(h.captured) FILTER (WHERE h.status <> 'ACTIVE'), 0) AS captured,
                    coalesce(sum(s.refunded), 0) AS refunded,
                    max(h.created_at) FILTER (WHERE h.status <> 'ACTIVE') AS last_run_at
                    FROM holds h LEFT JOIN (SELECT hold_id, sum(refunded) AS refunded FROM settlements GROUP BY hold_id) s
                    ON s.hold_id = h.hold_id GROUP BY 1, 2, 3, 4
                    HAVING count(*) FILTER (WHERE h.status <> 'ACTIVE') > 0 OR coalesce(sum(s.refunded), 0) > 0) h
         ON h.account_id = r.account_id AND h.day = r.day AND h.task_type = r.task_type AND h.model = r.model
         WHERE r.runs IS DISTINCT FROM h.runs OR r.captured IS DISTINCT FROM h.captured
            OR r.refunded IS DISTINCT FROM h.refunded OR r.last_run_at IS DISTINCT FROM h.last_run_at",
    ),
    (
        "folded usage months equal the sum of their days",
        "SELECT coalesce(m.account_id, d.account_id) || ' ' || coalesce(m.month, d.month) || ' ' ||
         coalesce(m.task_type, d.task_type) || ' ' || coalesce(m.model, d.model),
         'month runs ' || coalesce(m.runs, 0) || ', captured ' || coalesce(m.captured, 0) || ', refunded ' ||
         coalesce(m.refunded, 0) || ', last run ' || coalesce(m.last_run_at::text, '-') || '; days ' ||
         coalesce(d.runs, 0) || ', ' || coalesce(d.captured, 0) || ', ' || coalesce(d.refunded, 0) || ', ' ||
         coalesce(d.last_run_at::text, '-')
         FROM usage_months m
         FULL JOIN (SELECT r.account_id, date_trunc('month', r.day::timestamp)::date AS month, r.task_type, r.model,
                    sum(r.runs) AS runs, sum(r.captured) AS captured, sum(r.refunded) AS refunded,
                    max(r.last_run_at) AS last_run_at
                    FROM usage_rollups r JOIN usage_folds f ON f.account_id = r.account_id AND r.day < f.folded_before
                    GROUP BY 1, 2, 3, 4) d
         ON d.account_id = m.account_id AND d.month = m.month AND d.task_type = m.task_type AND d.model = m.model
         WHERE m.runs IS DISTINCT FROM d.runs OR m.captured IS DISTINCT FROM d.captured
            OR m.refunded IS DISTINCT FROM d.refunded OR m.last_run_at IS DISTINCT FROM d.last_run_at",
    ),
    (
        "journal transaction sums to zero",
        "SELECT transaction_id::text, 'sum ' || sum(amount) FROM journal_entries GROUP BY transaction_id HAVING sum(amount) <> 0",
    ),
    (
        "grant remaining equals its available postings",
        "SELECT g.grant_id::text, 'remaining ' || g.remaining || ', journal ' || coalesce(j.total, 0) FROM grants g
         LEFT JOIN (SELECT grant_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'AVAILABLE' GROUP BY grant_id) j
         USING (grant_id) WHERE g.remaining <> coalesce(j.total, 0)",
    ),
    (
        "grant reserved equals its held postings",
        "SELECT g.grant_id::text, 'reserved ' || g.reserved || ', journal ' || coalesce(j.total, 0) FROM grants g
         LEFT JOIN (SELECT grant_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'HELD' GROUP BY grant_id) j
         USING (grant_id) WHERE g.reserved <> coalesce(j.total, 0)",
    ),
    (
        "grant reserved equals its allocations",
        "SELECT g.grant_id::text, 'reserved ' || g.reserved || ', allocations ' || coalesce(a.total, 0) FROM grants g
         LEFT JOIN (SELECT grant_id, sum(reserved) AS total FROM hold_allocations GROUP BY grant_id) a
         USING (grant_id) WHERE g.reserved <> coalesce(a.total, 0)",
    ),
    (
        "grant holds no more than it was granted",
        "SELECT grant_id::text, 'amount ' || amount || ', remaining ' || remaining || ', reserved ' || reserved
         FROM grants WHERE remaining < 0 OR reserved < 0 OR remaining + reserved > amount",
    ),
    (
        "allocation reserved equals its held postings",
        "SELECT a.hold_id || '/' || a.grant_id, 'reserved ' || a.reserved || ', journal ' || coalesce(j.total, 0)
         FROM hold_allocations a LEFT JOIN (SELECT hold_id, grant_id, sum(amount) AS total FROM journal_entries
         WHERE ledger_account = 'HELD' GROUP BY hold_id, grant_id) j USING (hold_id, grant_id)
         WHERE a.reserved <> coalesce(j.total, 0)",
    ),
    (
        "only active holds reserve credits",
        "SELECT h.hold_id::text, 'status ' || h.status || ', reserved ' || sum(a.reserved) FROM holds h
         JOIN hold_allocations a USING (hold_id) WHERE h.status <> 'ACTIVE' GROUP BY h.hold_id, h.status HAVING sum(a.reserved) <> 0",
    ),
    (
        "account debt equals its debt postings",
        "SELECT a.account_id::text, 'debt ' || a.debt || ', journal ' || coalesce(-j.total, 0) FROM accounts a
         LEFT JOIN (SELECT account_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'DEBT' GROUP BY account_id) j
         USING (account_id) WHERE a.debt <> coalesce(-j.total, 0)",
    ),
    (
        "hold captured equals what its settlements charged",
        "SELECT h.hold_id::text, 'captured ' || h.captured || ', settlements ' || coalesce(s.total, 0) FROM holds h
         LEFT JOIN (SELECT hold_id, sum(from_hold + from_balance + debt) AS total FROM settlements GROUP BY hold_id) s
         USING (hold_id) WHERE h.captured <> coalesce(s.total, 0)",
    ),
    (
        "settlement parts equal what it took from grants",
        "SELECT s.settlement_id::text, 'from grants ' || (s.from_hold + s.from_balance) || ', parts ' || coalesce(p.total, 0)
         FROM settlements s LEFT JOIN (SELECT settlement_id, sum(amount) AS total FROM settlement_parts GROUP BY settlement_id) p
         USING (settlement_id) WHERE s.from_hold + s.from_balance <> coalesce(p.total, 0)",
    ),
    (
        "settlement debt and write-off equal their postings",
        "SELECT s.settlement_id::text, 'debt ' || s.debt || ', written off ' || s.written_off || ', journal debt '
         || coalesce(-j.debt, 0) || ', journal written off ' || coalesce(-j.written_off, 0) FROM settlements s
         LEFT JOIN (SELECT settlement_id,
                sum(amount) FILTER (WHERE ledger_account = 'DEBT' AND kind = 'DEBT') AS debt,
                sum(amount) FILTER (WHERE ledger_account = 'WRITTEN_OFF') AS written_off
            FROM journal_entries WHERE settlement_id IS NOT NULL GROUP BY settlement_id) j USING (settlement_id)
         WHERE s.debt <> coalesce(-j.debt, 0) OR s.written_off <> coalesce(-j.written_off, 0)",
    ),
    (
        "allocation captured equals its capture postings",
        "SELECT a.hold_id || '/' || a.grant_id, 'captured ' || a.captured || ', journal ' || coalesce(-j.total, 0)
         FROM hold_allocations a LEFT JOIN (SELECT hold_id, grant_id, sum(amount) AS total FROM journal_entries
         WHERE ledger_account = 'HELD' AND kind = 'CAPTURE' GROUP BY hold_id, grant_id) j USING (hold_id, grant_id)
         WHERE a.captured <> coalesce(-j.total, 0)",
    ),
    (
        "grant amount equals what was issued",
        "SELECT g.grant_id::text, 'amount ' || g.amount || ', issued ' || coalesce(-j.total, 0) FROM grants g
         LEFT JOIN (SELECT grant_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'ISSUED'
         GROUP BY grant_id) j USING (grant_id) WHERE g.source <> 'REFUND' AND g.amount <> coalesce(-j.total, 0)",
    ),
    (
        "settlement revenue equals its total",
        "SELECT s.settlement_id::text, 'total ' || s.total || ', revenue ' || coalesce(j.total, 0) FROM settlements s
         LEFT JOIN (SELECT settlement_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'REVENUE'
         AND kind <> 'REFUND' GROUP BY settlement_id) j USING (settlement_id) WHERE s.total <> coalesce(j.total, 0)",
    ),
    (
        "settlement refunded equals its refunds and their postings",
        "SELECT s.settlement_id::text, 'refunded ' || s.refunded || ', refunds ' || coalesce(r.total, 0) || ', journal '
         || coalesce(-j.total, 0) FROM settlements s
         LEFT JOIN (SELECT settlement_id, sum(amount) AS total FROM refunds GROUP BY settlement_id) r USING (settlement_id)
         LEFT JOIN (SELECT settlement_id, sum(amount) AS total FROM journal_entries WHERE ledger_account = 'REVENUE'
         AND kind = 'REFUND' GROUP BY settlement_id) j USING (settlement_id)
         WHERE s.refunded <> coalesce(r.total, 0) OR s.refunded <> coalesce(-j.total, 0)",
    ),
    (
        "every allowance period was granted once, by a grant of its own account",
        "SELECT 'allowance grant ' || ag.allowance_id || ' / ' || ag.period_start,
         'its grant or allowance is missing or of another account'
         FROM allowance_grants ag LEFT JOIN grants g ON g.grant_id = ag.grant_id
         LEFT JOIN allowances al ON al.allowance_id = ag.allowance_id
         WHERE g.grant_id IS NULL OR al.allowance_id IS NULL OR g.account_id <> ag.account_id
         OR al.account_id <> ag.account_id OR g.effective_at <> ag.period_start
         UNION ALL
         SELECT 'allowance ' || al.allowance_id, 'granted period ' || coalesce(al.granted_period::text, 'none')
         || ', last period granted ' || coalesce(m.last::text, 'none')
         FROM allowances al LEFT JOIN (SELECT allowance_id, max(period_start) AS last FROM allowance_grants
         GROUP BY allowance_id) m USING (allowance_id) WHERE al.granted_period IS DISTINCT FROM m.last
         UNION ALL
         SELECT 'allowance ' || al.allowance_id, 'its account is missing or of another tenant'
         FROM allowances al LEFT JOIN accounts a ON a.account_id = al.account_id
         WHERE a.account_id IS NULL OR a.tenant_id <> al.tenant_id
         UNION ALL
         SELECT 'spend limit ' || l.spend_limit_id, 'its account is missing or of another tenant'
         FROM spend_limits l LEFT JOIN accounts a ON a.account_id = l.account_id
         WHERE a.account_id IS NULL OR a.tenant_id <> l.tenant_id",
    ),
    (
        "spend limit reserved equals what its scope's active holds reserve",
        "SELECT l.spend_limit_id::text, 'reserved ' || l.reserved || ', active holds ' || coalesce(r.total, 0)
         FROM spend_limits l LEFT JOIN (SELECT l.spend_limit_id, sum(a.reserved) AS total FROM spend_limits l
         JOIN holds h ON h.account_id = l.account_id AND h.spend_scope_kind = l.scope_kind
         AND h.spend_scope_id = l.scope_id AND h.status = 'ACTIVE'
         JOIN hold_allocations a ON a.hold_id = h.hold_id GROUP BY l.spend_limit_id) r USING (spend_limit_id)
         WHERE l.reserved <> coalesce(r.total, 0)",
    ),
    (
        "spend limit spent equals what its scope's settlements charged this period since it was set, less refunds",
        "SELECT l.spend_limit_id::text, 'spent ' || l.spent || ', settlements ' || coalesce(c.total, 0)
         FROM spend_limits l LEFT JOIN (SELECT l.spend_limit_id,
         sum(s.from_hold + s.from_balance + s.debt - s.refunded) AS total FROM spend_limits l
         JOIN holds h ON h.account_id = l.account_id AND h.spend_scope_kind = l.scope_kind
         AND h.spend_scope_id = l.scope_id
         JOIN settlements s ON s.hold_id = h.hold_id AND s.created_at >= greatest(l.period_start, l.counted_from)
         GROUP BY l.spend_limit_id) c USING (spend_limit_id)
         WHERE l.spent <> coalesce(c.total, 0)",
    ),
];

/// The check of holds' quotes, made here rather than in SQL: each token, kept whole or rebuilt
/// from its seal and the hold's row, must carry the signature of the key quotes are signed
/// with, for the hold's tenant. A sealed hold whose row changed since (its quote id, tool,
/// model or catalog version) fails it, as its token would show other claims.
const SIGNED_QUOTES: &str = "every hold's quote is a token the quote key signed for its tenant";

/// How many checks [`verify`] runs.
pub const CHECK_COUNT: usize = CHECKS.len() + 1;

/// Runs every check; an empty list means the books balance.
pub async fn verify(client: &impl GenericClient) -> Result<Vec<Discrepancy>, StoreError> {
    let mut found = Vec::new();
    for (check, sql) in CHECKS {
        let rows = client
            .query(&format!("{sql} LIMIT {MAX_PER_CHECK}"), &[])
            .await?;
        found.extend(rows.iter().map(|row| Discrepancy {
            check,
            subject: row.get(0),
            detail: row.get(1),
        }));
    }
    found.extend(unsigned_quotes(client).await?);
    Ok(found)
}

/// The holds failing [`SIGNED_QUOTES`], read one by one.
async fn unsigned_quotes(client: &impl GenericClient) -> Result<Vec<Discrepancy>, StoreError> {
    let key = secrets::existing_secret(client, secrets::QUOTE_KEY)
        .await?
        .map(QuoteKey::new);
    let rows = client
        .query_raw(
            "SELECT tenant_id, account_id, hold_id, quote_id, quote_token, quote_seal, catalog_version, \
             tool, model FROM holds WHERE quote_token IS NOT NULL OR quote_seal IS NOT NULL",
            std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
        )
        .await?;
    pin_mut!(rows);
    let mut found = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row?;
        let hold_id: HoldId = row.get("hold_id");
        let token = rows::quote_token(
            hold_id,
            row.get("quote_token"),
            row.get("quote_seal"),
            rows::quote_on_hold(&row, rows::HOLD_QUOTE_COLUMNS, row.get("account_id")),
        );
        let signed = token
            .zip(key.as_ref())
            .and_then(|(token, key)| key.verify(row.get("tenant_id"), &token));
        if signed.is_none() {
            found.push(Discrepancy {
                check: SIGNED_QUOTES,
                subject: format!("hold {hold_id}"),
                detail: "its quote (quote_token, or quote_seal with the row) is no token the quote key signed"
                    .to_owned(),
            });
            if found.len() >= usize::try_from(MAX_PER_CHECK).unwrap_or(usize::MAX) {
                break;
            }
        }
    }
    Ok(found)
}
