-- Lookups that scanned every release of a repository (or of a forge) and so slowed down as
-- history grew: a candidate by commit, and the reconciler's live releases across repositories.
CREATE INDEX releases_sha ON releases (forge, repo, sha);
CREATE INDEX releases_stage ON releases (forge, stage);
