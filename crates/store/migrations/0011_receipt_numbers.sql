-- A receipt is found by its number: the public "check a receipt" page and
-- support's search.
CREATE INDEX receipts_number ON receipts(number);
