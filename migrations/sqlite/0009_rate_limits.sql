-- Rate-limit pauses shared by every replica: once one process is told that a GitHub
-- installation or a GitLab token must wait until until_ms (Unix milliseconds), the others read
-- it here and make no call for it before then. subject: the installation id, or a hash of the
-- token (never the token).
CREATE TABLE rate_limits (
    forge TEXT NOT NULL,
    subject TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (forge, subject)
);
