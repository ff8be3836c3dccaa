-- Release state. Times are Unix milliseconds; flags are 0/1 integers (portable across backends).

-- One row per pull/merge request Greenlight has seen: its current head and the card comment.
CREATE TABLE pulls (
    forge           TEXT    NOT NULL,
    repo            TEXT    NOT NULL,
    pr              BIGINT    NOT NULL,
    forge_id        BIGINT    NOT NULL,
    head_sha        TEXT    NOT NULL,
    head_ref        TEXT    NOT NULL,
    author          TEXT    NOT NULL,
    is_open         BIGINT    NOT NULL,
    card_comment_id BIGINT,
    head_seq        BIGINT NOT NULL DEFAULT 0,
    updated_at      BIGINT    NOT NULL,
    PRIMARY KEY (forge, repo, pr)
);

-- A release candidate: one (repository, pull request, head commit).
CREATE TABLE releases (
    id                   BIGSERIAL PRIMARY KEY,
    forge                TEXT    NOT NULL,
    repo                 TEXT    NOT NULL,
    pr                   BIGINT    NOT NULL,
    sha                  TEXT    NOT NULL,
    stage                TEXT    NOT NULL,
    environment          TEXT    NOT NULL,
    pipeline_attempt     BIGINT    NOT NULL DEFAULT 0,
    pipeline_dispatched  BIGINT,
    pipeline_run_id      BIGINT,
    pipeline_url         TEXT,
    pipeline_check_id    BIGINT,
    release_check_id     BIGINT,
    queued_at            BIGINT,
    deployment_id        BIGINT,
    deploy_dispatched    BIGINT,
    deploy_run_id        BIGINT,
    deploy_url           TEXT,
    detail               TEXT,
    created_at           BIGINT    NOT NULL,
    updated_at           BIGINT    NOT NULL,
    UNIQUE (forge, repo, pr, sha)
);
CREATE INDEX releases_pipeline_run ON releases (forge, repo, pipeline_run_id);
CREATE INDEX releases_deploy_run ON releases (forge, repo, deploy_run_id);
CREATE INDEX releases_live ON releases (forge, repo, stage);

-- Distinct approvers of one release candidate.
CREATE TABLE approvals (
    release_id  BIGINT NOT NULL REFERENCES releases (id),
    login       TEXT NOT NULL,
    comment_id  BIGINT NOT NULL,
    approved_at BIGINT NOT NULL,
    PRIMARY KEY (release_id, login)
);

-- Leases: per-repository work serialisation and per-environment deploy locks. A lease that is
-- not renewed expires, so a crashed holder cannot keep it forever.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);

-- Who did what to which release, and why. Append-only.
CREATE TABLE audit (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    forge   TEXT NOT NULL,
    repo    TEXT NOT NULL,
    pr      BIGINT NOT NULL,
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
    at    BIGINT NOT NULL
);

-- GitHub App installations (and GitLab projects) Greenlight has heard from.
CREATE TABLE installations (
    forge      TEXT NOT NULL,
    id         BIGINT NOT NULL,
    account    TEXT NOT NULL,
    active     BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (forge, id)
);
