//! Answers stored by reference to their hold: an answer that shows a hold (Authorize,
//! ExtendHold, Settle, Release) repeats the hold's text (its id, account, quote id, run), which
//! the `holds` row keeps for good. Such an answer is compressed against that text, and the
//! record names the hold (`answer_hold`), whose row gives the text back when the answer is
//! replayed. A hold's text never changes once written (nor do the columns a sealed quote is
//! rebuilt with, which are part of its text).

use std::borrow::Cow;

use tokio_postgres::Row;
use uuid::Uuid;

use super::compressed;
use crate::ids::{AccountId, HoldId};
use crate::ledger::HoldMeta;
use crate::store::rows;

/// The columns [`dictionary_of_row`] reads, joined from the record's hold (`h`).
pub(super) const HOLD_TEXT_COLUMNS: &str = "r.answer_hold, r.account_id AS answer_account, \
     h.hold_id AS answer_hold_found, h.quote_id AS answer_quote_id, h.quote_token AS answer_quote_token, \
     h.quote_seal AS answer_quote_seal, h.catalog_version AS answer_catalog_version, h.task_type AS answer_task_type, h.tool AS answer_tool, h.model AS answer_model, \
     h.project AS answer_project, h.run_id AS answer_run_id, h.label_keys AS answer_label_keys, \
     h.label_values AS answer_label_values, h.spend_scope_kind AS answer_scope_kind, \
     h.spend_scope_id AS answer_scope_id";

/// The columns of [`HOLD_TEXT_COLUMNS`] a sealed quote is rebuilt with.
const ANSWER_QUOTE_COLUMNS: rows::QuoteColumns = [
    "answer_quote_id",
    "answer_catalog_version",
    "answer_tool",
    "answer_model",
];

/// The join that reads them.
pub(super) const HOLD_TEXT_JOIN: &str =
    "LEFT JOIN holds h ON h.hold_id = r.answer_hold AND h.account_id = r.account_id";

/// The text of a hold that answers showing it repeat.
struct HoldText<'a> {
    hold_id: HoldId,
    account_id: AccountId,
    quote_token: Option<Cow<'a, str>>,
    quote_id: Option<Uuid>,
    task_type: &'a str,
    tool: &'a str,
    model: &'a str,
    project: &'a str,
    run_id: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    scope_id: Option<&'a str>,
}

impl HoldText<'_> {
    /// The dictionary answers showing the hold are compressed against: built alike from the
    /// hold in memory and from its row, so each field here must read back from its column
    /// exactly as written (text and uuids do).
    fn dictionary(&self) -> Vec<u8> {
        let quote = self
            .quote_token
            .as_deref()
            .map(str::to_owned)
            .or_else(|| self.quote_id.map(|quote_id| quote_id.to_string()))
            .unwrap_or_default();
        let mut texts = vec![
            self.hold_id.to_string(),
            self.account_id.to_string(),
            quote,
            self.task_type.to_owned(),
            self.tool.to_owned(),
            self.model.to_owned(),
            self.project.to_owned(),
            self.run_id.to_owned(),
        ];
        for (key, value) in &self.labels {
            texts.push((*key).to_owned());
            texts.push((*value).to_owned());
        }
        texts.extend(self.scope_id.map(str::to_owned));
        // A separator keeps a match from running across two fields.
        texts.join("\u{0}").into_bytes()
    }
}

/// The dictionary of hold `hold_id` of `account_id`, from the hold in memory.
pub fn dictionary(hold_id: HoldId, account_id: AccountId, meta: &HoldMeta) -> Vec<u8> {
    HoldText {
        hold_id,
        account_id,
        quote_token: meta.quote_token.as_deref().map(Cow::Borrowed),
        quote_id: meta.quote_id,
        task_type: &meta.task_type,
        tool: &meta.tool,
        model: &meta.model,
        project: &meta.project,
        run_id: &meta.run_id,
        labels: meta
            .labels
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect(),
        scope_id: meta.spend_scope.as_ref().map(|scope| scope.id.as_str()),
    }
    .dictionary()
}

/// The dictionary of the hold a record's row names, if the row names one and it was found.
fn dictionary_of_row(row: &Row) -> Option<Vec<u8>> {
    let hold_id: HoldId = row.get::<_, Option<HoldId>>("answer_hold_found")?;
    let account_id: AccountId = row.get::<_, Option<AccountId>>("answer_account")?;
    let keys: Vec<&str> = row.get("answer_label_keys");
    let values: Vec<&str> = row.get("answer_label_values");
    // A quote that does not unseal leaves the text without it: the answer then fails its check.
    let quote_token = rows::quote_token(
        hold_id,
        row.get("answer_quote_token"),
        row.get("answer_quote_seal"),
        rows::quote_on_hold(row, ANSWER_QUOTE_COLUMNS, account_id),
    );
    let text = HoldText {
        hold_id,
        account_id,
        quote_token: quote_token.map(Cow::Owned),
        quote_id: row.get("answer_quote_id"),
        task_type: row.get("answer_task_type"),
        tool: row.get("answer_tool"),
        model: row.get("answer_model"),
        project: row.get("answer_project"),
        run_id: row.get("answer_run_id"),
        labels: keys.into_iter().zip(values).collect(),
        // As a hold is read: a scope has both its kind and its id.
        scope_id: row
            .get::<_, Option<&str>>("answer_scope_kind")
            .and(row.get("answer_scope_id")),
    };
    Some(text.dictionary())
}

/// The response a record's row stored: expanded against its hold's text when it was
/// compressed against it; `None` when it does not expand (or the hold is gone).
pub(super) fn load(row: &Row, stored: Vec<u8>) -> Option<Vec<u8>> {
    if !compressed::needs_dictionary(&stored) {
        return compressed::load(stored);
    }
    let hold: Option<HoldId> = row.get("answer_hold");
    let Some(dictionary) = dictionary_of_row(row) else {
        tracing::error!(?hold, "a stored answer's hold is missing");
        return None;
    };
    let loaded = compressed::load_with(stored, &dictionary);
    if loaded.is_none() {
        tracing::error!(
            ?hold,
            "a stored answer does not expand against its hold's text"
        );
    }
    loaded
}
