-- Stage timestamps and the trace id of each transfer, for the operators'
-- timeline (GET /v1/ops/transfers/{id}/timeline). Nullable: fundings and
-- transfers applied before this migration have none.
ALTER TABLE transfers
    ADD COLUMN published_at timestamptz,
    ADD COLUMN received_at  timestamptz,
    ADD COLUMN trace_id     text CHECK (trace_id ~ '^[0-9a-f]{32}$');
-- Recent activity for GET /v1/ops/stats.
CREATE INDEX transfers_processed ON transfers (processed_at);
