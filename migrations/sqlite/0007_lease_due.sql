-- A running job's next_attempt_at is its lease's end from now on: a job is due, queued or with
-- an expired lease, when next_attempt_at has passed, so claiming reads one range of the
-- deliveries_due index instead of filtering the whole queue for expired leases.
UPDATE deliveries SET next_attempt_at = lease_until WHERE state = 'running' AND lease_until IS NOT NULL;
