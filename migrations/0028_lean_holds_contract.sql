-- A new hold may be written lean once no older server is connected (this waits until none is,
-- src/store/migrate/contract.rs): its quote token sealed in `quote_seal` (0027) with
-- `quote_token` NULL, and its label arrays NULL when it has no labels (an empty array takes 13
-- bytes in both versions of the row). Servers before read the token whole and the arrays as
-- never NULL, so until this has run servers write both as before.
--
-- Taken up front, `accounts` first, as in 0021: every locked transaction locks its accounts
-- before any other table.
LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;
LOCK TABLE holds IN ACCESS EXCLUSIVE MODE;
ALTER TABLE holds ALTER COLUMN label_keys DROP NOT NULL,
    ALTER COLUMN label_values DROP NOT NULL;
