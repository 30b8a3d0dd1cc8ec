-- 004_datapoint.sql — the declarative time-series model "DataPoint".
-- Source: shared/reference/001_7646967b613b2d0c.txt, "Plan: TimescaleDB Support": "1. Specification
-- Format" (fields, index: true) and "2. Migration Generation" (table and ix_datapoint_source_timestamp).
-- Plain PostgreSQL 15: the hypertable (1-week chunks), compression (segment by source, order by
-- timestamp DESC, after 1 month) and retention (1 year) come from the model's `timeseries` block and
-- are applied by sluice's policy manager.

CREATE TABLE datapoint (
    id UUID DEFAULT gen_random_uuid(),
    "timestamp" TIMESTAMPTZ NOT NULL,
    source VARCHAR(100) NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    metadata JSONB,

    -- A hypertable's unique keys must include its time column, so the key is (id, "timestamp")
    -- rather than id alone.
    PRIMARY KEY (id, "timestamp")
);

-- timeseries.indexes: [source, timestamp] btree.
CREATE INDEX ix_datapoint_source_timestamp ON datapoint (source, "timestamp");
-- Fields marked `index: true`.
CREATE INDEX ix_datapoint_timestamp ON datapoint ("timestamp");
CREATE INDEX ix_datapoint_source ON datapoint (source);
