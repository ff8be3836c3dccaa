-- How the payload is stored: 'json' as received, 'lz4' compressed (src/store/payload.rs).
ALTER TABLE deliveries ADD COLUMN payload_codec TEXT NOT NULL DEFAULT 'json';
