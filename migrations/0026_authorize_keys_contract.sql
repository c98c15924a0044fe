-- Every connected server writes its claims now (this waits until none older than 0024 is
-- connected), so the trigger that claimed for older ones goes, and with it the key on `holds`
-- that spanned a tenant's accounts. From here an Authorize key is unique per account: reused
-- for another account after its record was pruned, it makes a new hold there
-- (docs/MONEY.md, Idempotency). And no server reads a hold's key from its row any more: servers
-- that know this migration leave `holds.authorize_key` NULL once it has run (the claim alone
-- keeps the key), which spares its bytes in both versions of the row.
--
-- Taken up front, `accounts` first, as in 0021: every locked transaction locks its accounts
-- before any other table.
LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE;
LOCK TABLE holds IN ACCESS EXCLUSIVE MODE;
DROP TRIGGER holds_claim_authorize_key ON holds;
DROP FUNCTION claim_authorize_key();
ALTER TABLE holds DROP CONSTRAINT holds_tenant_id_authorize_key_key,
    ALTER COLUMN authorize_key DROP NOT NULL;
