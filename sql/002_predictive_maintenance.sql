-- 002_predictive_maintenance.sql — predictive maintenance telemetry.
-- Source: shared/reference/003_9d4f9a11540ef347.txt, "Database Architecture (TimescaleDB Production
-- Design)": "Core Tables (Quick Summary)", "3. Core Schema" and "6. Indexing Strategy & Rationale".
-- Plain PostgreSQL 15: the hypertable, the hourly continuous aggregate
-- (sensor_readings_summary_hourly) and the compression/retention policies are the policy manager's.

-- Asset registry. Business key: sensor_id; surrogate key: id.
CREATE TABLE sensors (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    sensor_id VARCHAR(255) UNIQUE NOT NULL,
    type VARCHAR(50),
    location VARCHAR(255),
    status VARCHAR(50) DEFAULT 'active',
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now()
);

-- Surrogate id of sensor_readings (non-PK, for ORM convenience; "Day 15" sequence fix).
CREATE SEQUENCE sensor_readings_id_seq;

-- Raw time-series measurements. PK (timestamp, sensor_id).
CREATE TABLE sensor_readings (
    "timestamp" TIMESTAMPTZ NOT NULL,
    sensor_id VARCHAR(255) NOT NULL REFERENCES sensors(sensor_id),
    sensor_type VARCHAR(50),
    value DOUBLE PRECISION NOT NULL,
    unit VARCHAR(50),
    quality DOUBLE PRECISION,
    sensor_metadata JSONB,
    id INT DEFAULT nextval('sensor_readings_id_seq') NOT NULL,
    created_at TIMESTAMPTZ DEFAULT now(),
    updated_at TIMESTAMPTZ DEFAULT now(),

    PRIMARY KEY ("timestamp", sensor_id)
);

ALTER SEQUENCE sensor_readings_id_seq OWNED BY sensor_readings.id;

-- "Latest N" windows per sensor (drift tests, sliding ML feature windows).
CREATE INDEX idx_sensor_readings_sensor_id_timestamp ON sensor_readings (sensor_id, "timestamp" DESC);
-- Pure chronological scans (exports, retention housekeeping, backfill).
CREATE INDEX idx_sensor_readings_timestamp ON sensor_readings ("timestamp");
