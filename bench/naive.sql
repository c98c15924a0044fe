-- One run of the naive design a user would write: lock the account row, check and reserve,
-- insert the hold; then lock again and settle it. Two transactions, each one commit.
\set aid random(1, :accounts)
BEGIN;
SELECT available FROM naive_accounts WHERE id = :aid FOR UPDATE;
UPDATE naive_accounts SET available = available - 0.02, held = held + 0.02 WHERE id = :aid AND available >= 0.02;
INSERT INTO naive_holds (account_id, amount, status) VALUES (:aid, 0.02, 'ACTIVE') RETURNING id AS hold_id \gset
COMMIT;
BEGIN;
SELECT available FROM naive_accounts WHERE id = :aid FOR UPDATE;
UPDATE naive_holds SET status = 'SETTLED', captured = 0.015 WHERE id = :hold_id;
UPDATE naive_accounts SET held = held - 0.02, available = available + 0.005 WHERE id = :aid;
COMMIT;
