-- The environment's gate (GitHub's deployment protection rule) and the watch on deployments
-- look a release up by its deployment; /metrics counts unapproved deployments at each scrape.
-- Both by index, so neither slows down as history grows.
CREATE INDEX releases_deployment ON releases (forge, repo, deployment_id);
CREATE INDEX audit_action ON audit (action, forge);
