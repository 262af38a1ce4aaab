-- Until when (wall-clock microseconds) a billing worker holds a claim on a
-- subscription it is renewing: claimed and committed in one statement for
-- a batch, the claim keeps other workers off it while the gateway is asked
-- with no transaction open, and runs out by itself if that worker dies.
-- Writing the subscription's new state ends it.
ALTER TABLE subscriptions ADD COLUMN claimed_until BIGINT;
