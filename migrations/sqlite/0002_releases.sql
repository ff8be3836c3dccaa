-- Release state. Times are Unix milliseconds; flags are 0/1 integers (portable across backends).

-- One row per pull/merge request Greenlight has seen: its current head and the card comment.
CREATE TABLE pulls (
    forge           TEXT    NOT NULL,
    repo            TEXT    NOT NULL,
    pr              INTEGER    NOT NULL,
    forge_id        INTEGER    NOT NULL,
    head_sha        TEXT    NOT NULL,
    head_ref        TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    is_open         INTEGER    NOT NULL,
    card_comment_id INTEGER,
    head_seq        INTEGER NOT NULL DEFAULT 0,
    updated_at      INTEGER    NOT NULL,
    PRIMARY KEY (forge, repo, pr)
);

-- A release candidate: one (repository, pull request, head commit).
CREATE TABLE releases (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    forge                TEXT    NOT NULL,
    repo                 TEXT    NOT NULL,
    pr                   INTEGER    NOT NULL,
    sha                  TEXT    NOT NULL,
    stage                TEXT    NOT NULL,
    environment          TEXT    NOT NULL,
    pipeline_attempt     INTEGER    NOT NULL DEFAULT 0,
    pipeline_dispatched  INTEGER,
    pipeline_run_id      INTEGER,
    pipeline_url         TEXT,
    pipeline_check_id    INTEGER,
    release_check_id     INTEGER,
    queued_at            INTEGER,
    deployment_id        INTEGER,
    deploy_dispatched    INTEGER,
    deploy_run_id        INTEGER,
    deploy_url           TEXT,
    detail               TEXT,
    created_at           INTEGER    NOT NULL,
    updated_at           INTEGER    NOT NULL,
    UNIQUE (forge, repo, pr, sha)
);
CREATE INDEX releases_pipeline_run ON releases (forge, repo, pipeline_run_id);
CREATE INDEX releases_deploy_run ON releases (forge, repo, deploy_run_id);
CREATE INDEX releases_live ON releases (forge, repo, stage);

-- Distinct approvers of one release candidate.
CREATE TABLE approvals (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    login       TEXT NOT NULL,
    comment_id  INTEGER NOT NULL,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (release_id, login)
);

-- Leases: per-repository work serialisation and per-environment deploy locks. A lease that is
-- not renewed expires, so a crashed holder cannot keep it forever.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);

-- Who did what to which release, and why. Append-only.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    forge   TEXT NOT NULL,
    repo    TEXT NOT NULL,
    pr      INTEGER NOT NULL,
    sha     TEXT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL
);
CREATE INDEX audit_repo ON audit (forge, repo, id);

-- One-shot forge effects already carried out (replies, reactions), by a deterministic key, so
-- a retried job never posts twice.
CREATE TABLE effects (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    at    INTEGER NOT NULL
);

-- GitHub App installations (and GitLab projects) Greenlight has heard from.
CREATE TABLE installations (
    forge      TEXT NOT NULL,
    id         INTEGER NOT NULL,
    account    TEXT NOT NULL,
    active     INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (forge, id)
);
