-- Exports are sealed on disk and live a limited time: `expires_at` is when
-- a ready export's file and key are destroyed (status `expired`); a
-- deletion covering the family's data destroys them at once (`deleted`).
-- Exports made before sealing were written in plain text: they expire now,
-- and the billing run's sweep removes their files.
ALTER TABLE exports ADD COLUMN expires_at BIGINT;
UPDATE exports SET status = 'expired' WHERE status = 'ready';
CREATE INDEX exports_expiring ON exports(expires_at) WHERE status = 'ready';
