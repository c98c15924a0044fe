-- Usage summaries over long ranges read whole months from monthly totals instead of every
-- day's rollup rows (docs/PERFORMANCE.md, "Usage history: how fast it reads").
--
-- usage_folds.folded_before: every month of the account before this date has its totals in
-- usage_months. Months are folded in order, never unfolded, by the first summary that spans
-- them once they ended (src/store/usage/months.rs); the daily rows stay, and `creditgate
-- verify` checks that each folded month equals the sum of its days.
CREATE TABLE usage_folds (
    account_id     uuid PRIMARY KEY,
    folded_before  date NOT NULL
);

-- A folded month's totals per task type and model. A transaction that adds to a day of a
-- folded month (a refund, or a run of that month resolved late) adds to its month here too,
-- under the same account lock that folding takes.
CREATE TABLE usage_months (
    account_id   uuid NOT NULL,
    month        date NOT NULL CHECK (extract(day FROM month) = 1),
    task_type    text NOT NULL,
    model        text NOT NULL,
    runs         bigint NOT NULL CHECK (runs >= 0),
    captured     numeric NOT NULL CHECK (captured >= 0),
    refunded     numeric NOT NULL CHECK (refunded >= 0),
    last_run_at  timestamptz,
    PRIMARY KEY (account_id, month, task_type, model)
);
