-- Claims for the holds made before 0024, online: one statement outside a transaction, which
-- reads `holds` without blocking its writes and can run again. A hold committed after the
-- trigger of 0024 is claimed already (by its server or the trigger); one committed before is
-- in this statement's snapshot. Until this is done, a key of an older hold is still refused by
-- the old key on `holds`, which stays until 0026.
-- This file holds only such statements, separated by semicolons.
INSERT INTO authorize_keys (authorize_key, account_id, hold_id)
    SELECT authorize_key, account_id, hold_id FROM holds ON CONFLICT DO NOTHING;
