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

ALTER TABLE releases ADD COLUMN generation BIGINT NOT NULL DEFAULT 1;
ALTER TABLE releases ADD COLUMN pusher_id BIGINT;
ALTER TABLE releases ADD COLUMN head_at BIGINT;
ALTER TABLE releases DROP CONSTRAINT releases_forge_repo_pr_sha_key;
ALTER TABLE releases ADD CONSTRAINT releases_candidate UNIQUE (forge, repo, pr, sha, generation);

ALTER TABLE approvals ADD COLUMN user_id BIGINT;
UPDATE approvals SET user_id = -n.rn
  FROM (SELECT release_id, login, ROW_NUMBER() OVER (ORDER BY release_id, login) AS rn
          FROM approvals) n
 WHERE approvals.release_id = n.release_id AND approvals.login = n.login;
ALTER TABLE approvals ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE approvals DROP CONSTRAINT approvals_pkey;
ALTER TABLE approvals ADD PRIMARY KEY (release_id, user_id);

-- Who pushed the pull request's current head (forge user id), kept while the head does not
-- change: a reopened pull request's fresh candidate keeps its pusher.
ALTER TABLE pulls ADD COLUMN pusher_id BIGINT;
