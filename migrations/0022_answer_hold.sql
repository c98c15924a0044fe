-- An Authorize, ExtendHold, Settle or Release answer can be stored by reference to its hold:
-- the hold's row is the dictionary its compressed bytes are read with, so the record keeps a
-- few dozen bytes instead of the whole answer. NULL for every other record and for answers
-- stored whole. Holds are never deleted, so the reference always resolves.
ALTER TABLE idempotency_records ADD COLUMN answer_hold uuid;
