-- A hold's Authorize key, claimed per account (docs/SCALING.md §3.3): a retried Authorize whose
-- record was pruned finds the hold it made here and is refused, as the key `holds (tenant_id,
-- authorize_key)` refused it until now. That key spans a tenant's accounts, which neither a
-- table distributed by account nor a partitioned `holds` can enforce; this one names the
-- account. GetHold by key reads it too. One narrow row per hold, written once (the hold's row
-- is written again when it settles, and so was that key's entry).
--
-- Servers of this version write the claim with the hold. Servers before it do not: until 0026
-- (which waits for them to go) this trigger claims for them, and the old key stays, so a key
-- is never used twice whichever server authorizes. A server of this version inserts its claim
-- earlier in the same statement, so the trigger finds it and writes nothing. 0025 claims for
-- the holds made before this.
CREATE TABLE authorize_keys (
    authorize_key  text COLLATE "C" NOT NULL,
    account_id     uuid NOT NULL,
    hold_id        uuid NOT NULL,
    PRIMARY KEY (authorize_key, account_id)
);
CREATE FUNCTION claim_authorize_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO authorize_keys (authorize_key, account_id, hold_id)
        VALUES (NEW.authorize_key, NEW.account_id, NEW.hold_id)
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER holds_claim_authorize_key AFTER INSERT ON holds
    FOR EACH ROW EXECUTE FUNCTION claim_authorize_key();
