-- Every locked transaction reads an account's grants with conditions the partial index of live
-- grants cannot serve alone (a settlement's or an external reference's grants); without a plain
-- index on account_id that read scanned every grant of every account.
CREATE INDEX grants_account_idx ON grants (account_id);
