-- Votes and candidates by identity and generation (issue 14 items 3, 6, 11; issue 24 item 2).
--
-- * A vote is keyed by the forge's numeric user id, not the login: a renamed account is still
--   one voter. The login stays for display. Votes recorded before this migration have no id:
--   each gets a negative one of its own (no forge id is negative), so it still counts once.
-- * A candidate is (repository, pull request, commit, generation): a reopened pull request, or
--   a force-push back to an older commit, starts a fresh generation with no votes and a new
--   pipeline, instead of reusing the closed or superseded row.
-- * A candidate remembers who pushed its head (`pusher_id`, forge user id) and when the head
--   arrived on the forge's clock (`head_at`, Unix ms): the pusher may not approve it under
--   `allow_self_approval = false`, and a comment written before `head_at` never approves it.
--   Unknown (NULL) for candidates made before this migration.
--
-- SQLite cannot drop a table constraint: both tables are rebuilt, approvals first (it refers
-- to releases, and foreign keys are on).

CREATE TABLE approvals_copy AS SELECT release_id, login, comment_id, approved_at FROM approvals;
DROP TABLE approvals;

CREATE TABLE releases_new (
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
    generation           INTEGER NOT NULL DEFAULT 1,
    pusher_id            INTEGER,
    head_at              INTEGER,
    UNIQUE (forge, repo, pr, sha, generation)
);
INSERT INTO releases_new (id, forge, repo, pr, sha, stage, environment, pipeline_attempt,
        pipeline_dispatched, pipeline_run_id, pipeline_url, pipeline_check_id, release_check_id,
        queued_at, deployment_id, deploy_dispatched, deploy_run_id, deploy_url, detail, created_at,
        updated_at)
    SELECT id, forge, repo, pr, sha, stage, environment, pipeline_attempt, pipeline_dispatched,
        pipeline_run_id, pipeline_url, pipeline_check_id, release_check_id, queued_at,
        deployment_id, deploy_dispatched, deploy_run_id, deploy_url, detail, created_at, updated_at
      FROM releases;
-- Ids are never reused (the effect ledger keys by them): the new table continues the old
-- table's sequence, whatever its highest surviving row.
UPDATE sqlite_sequence SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'releases'))
 WHERE name = 'releases_new';
DROP TABLE releases;
ALTER TABLE releases_new RENAME TO releases;
CREATE INDEX releases_pipeline_run ON releases (forge, repo, pipeline_run_id);
CREATE INDEX releases_deploy_run ON releases (forge, repo, deploy_run_id);
CREATE INDEX releases_live ON releases (forge, repo, stage);
CREATE INDEX releases_sha ON releases (forge, repo, sha);
CREATE INDEX releases_stage ON releases (forge, stage);

CREATE TABLE approvals (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    user_id     INTEGER NOT NULL,
    login       TEXT NOT NULL,
    comment_id  INTEGER NOT NULL,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (release_id, user_id)
);
INSERT INTO approvals (release_id, user_id, login, comment_id, approved_at)
    SELECT release_id, -rowid, login, comment_id, approved_at FROM approvals_copy;
DROP TABLE approvals_copy;

-- Who pushed the pull request's current head (forge user id), kept while the head does not
-- change: a reopened pull request's fresh candidate keeps its pusher.
ALTER TABLE pulls ADD COLUMN pusher_id INTEGER;
