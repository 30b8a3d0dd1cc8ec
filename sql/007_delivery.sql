-- 007_delivery.sql — exactly-once bookkeeping of sluice's delivery guarantees (README "Delivery").
-- Source: sluice itself, not a reference document.
--
-- sluice_spool_committed: the id of every spool record (lib/spool) whose rows are committed. The
-- writers insert the ids in the SAME transaction as the rows (BEGIN · INSERT ids · COPY · COMMIT),
-- so a record replayed after a crash between that COMMIT and the deletion of its spool segment is
-- recognised and not stored twice. Ids below the spool's low-water mark (records whose segment is
-- deleted) are pruned by the writers.
CREATE TABLE sluice_spool_committed (
    record_id BIGINT PRIMARY KEY,
    committed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- sluice_idempotency_keys: requests sent with an Idempotency-Key header. Each block of such a
-- request (a request becomes one or more blocks, always the same for the same body) records
-- "<key>#<block index>" in the same transaction as the block's rows; a retried request finds its
-- blocks here, stores nothing again and is answered like the original. Tokens older than
-- http.idempotency_ttl_s are deleted by the writers.
CREATE TABLE sluice_idempotency_keys (
    idempotency_key TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sluice_idempotency_keys_created_at ON sluice_idempotency_keys (created_at);
