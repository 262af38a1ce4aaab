-- Rows written at the same business instant (a simulated clock stands
-- still between settings; one billing step writes several rows) are listed
-- in the order they were written: a `seq` number per row, ascending.
{insertion_seq ledger_entries}
{insertion_seq receipts}
{insertion_seq cancellations}
{insertion_seq subscriptions}
{insertion_seq outbox}
{insertion_seq written_notices}
