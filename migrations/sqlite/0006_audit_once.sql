-- An audit entry written once per key (a vote, a deploy's start) carries its key: writing it is
-- one statement, `ON CONFLICT (once_key) DO NOTHING`, instead of a transaction over the effect
-- ledger and the log. Entries without a key (NULL) are never in conflict.
ALTER TABLE audit ADD COLUMN once_key TEXT;
CREATE UNIQUE INDEX audit_once ON audit (once_key);
