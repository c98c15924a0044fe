-- A hold made from a quote keeps the quote's token, which repeats what the row has already (the
-- quote's id, catalog version, tool, model, account): about 120 bytes in both versions of the
-- row (Authorize's, and the settled one). `quote_seal` keeps only the rest of it, about 42
-- bytes, and the server rebuilds the token from the two (src/pricing/quote_token/sealed.rs).
-- Servers before this read `quote_token` alone, so until 0028 has run (it waits until none is
-- connected) servers of this version write the token whole and leave the seal NULL. Holds
-- written before keep their token. Nullable without a default: added without rewriting.
ALTER TABLE holds ADD COLUMN quote_seal bytea;
