-- Nothing to change in the schema: this marks when answers may be stored by reference to their
-- hold (0022). A server before 0022 reads a record's answer without the hold and could not
-- decode it, so servers store answers whole until this has run, which waits until none of
-- them is connected (src/store/migrate/contract.rs).
SELECT 1;
