-- 006_dead_letter.sql — rows the database refused, kept with the reason (lib/pg/copy_writer.h).
-- Source: sluice itself (the dead-letter store of its delivery guarantees), not a reference document.
-- The writers insert here, in the same transaction as the good rows of the batch, every row that
-- failed on its own with a row-level error (SQLSTATE class 22 data exception, 23 integrity
-- violation: check, foreign key, not null, unique under conflict "error").
-- row_data is the row decoded from its binary COPY tuple, keyed by column name.

CREATE TABLE sluice_dead_letter (
    id BIGSERIAL PRIMARY KEY,
    table_name TEXT NOT NULL,                      -- the name senders use, e.g. "flux.mg_meter_readings"
    row_data JSONB NOT NULL,
    sqlstate TEXT NOT NULL,                        -- e.g. 23514
    message TEXT NOT NULL,                         -- the server's message, detail and context
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX sluice_dead_letter_table_failed_at ON sluice_dead_letter (table_name, failed_at);
