-- The inbox: every authenticated webhook, stored before it is acknowledged, and the job queue
-- that works it. Times are Unix milliseconds.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    forge           TEXT    NOT NULL,
    delivery_id     TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    received_at     INTEGER NOT NULL,
    payload         BLOB    NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    lease_token     TEXT,
    last_error      TEXT,
    finished_at     INTEGER,
    UNIQUE (forge, delivery_id)
);

-- Only live jobs are indexed, so claiming stays cheap however long the history grows.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, id) WHERE state IN ('queued', 'running');
CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
