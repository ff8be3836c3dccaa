-- Processed deliveries by age, so the retention prune finds old ones without a scan however
-- long the history grows.
CREATE INDEX deliveries_processed ON deliveries (received_at) WHERE state IN ('done', 'ignored');
