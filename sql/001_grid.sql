-- 001_grid.sql — grid operator data (GridPulse).
-- Source: shared/reference/000_aa4727e9f0273339.txt, "GRID-012: TimescaleDB Schema Implementation",
-- sections "Core Schema Design" and "Helper Views for Common Queries".
-- Plain PostgreSQL 15: create_hypertable() and the continuous aggregates (hourly_aggregates,
-- daily_aggregates) are left to sluice's policy manager, which applies them when TimescaleDB is present.

CREATE TABLE balancing_authorities (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    code VARCHAR(10) UNIQUE NOT NULL,      -- "PJM", "CAISO", "MISO"
    name VARCHAR(255) NOT NULL,
    timezone VARCHAR(50) NOT NULL,         -- "America/New_York"
    region VARCHAR(50),                    -- "Eastern", "Western", "Texas"
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

-- Sample data for the MVP (five balancing authorities).
INSERT INTO balancing_authorities (code, name, timezone, region) VALUES
('PJM', 'PJM Interconnection', 'America/New_York', 'Eastern'),
('CAISO', 'California ISO', 'America/Los_Angeles', 'Western'),
('MISO', 'Midcontinent ISO', 'America/Chicago', 'Central'),
('ERCOT', 'Electric Reliability Council of Texas', 'America/Chicago', 'Texas'),
('SPP', 'Southwest Power Pool', 'America/Chicago', 'Central');

CREATE TABLE series (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    ba_id UUID REFERENCES balancing_authorities(id) ON DELETE CASCADE,
    type VARCHAR(50) NOT NULL,             -- "demand", "generation", "interchange", "co2"
    subtype VARCHAR(50),                   -- "coal", "gas", "solar", "wind", "nuclear", ...
    units VARCHAR(20) NOT NULL,            -- "MW", "MWh", "g/kWh"
    description TEXT,
    eia_series_id VARCHAR(100),            -- original EIA series identifier
    is_active BOOLEAN DEFAULT true,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),

    UNIQUE (ba_id, type, subtype)
);

CREATE INDEX idx_series_ba_type ON series (ba_id, type);
CREATE INDEX idx_series_active ON series (is_active) WHERE is_active = true;

-- Time-series observations (a hypertable on ts with 1-day chunks under TimescaleDB).
CREATE TABLE observations (
    series_id UUID REFERENCES series(id) ON DELETE CASCADE,
    ts TIMESTAMPTZ NOT NULL,
    value NUMERIC(12,3) NOT NULL,          -- MW precision
    quality_flag VARCHAR(10) DEFAULT 'good', -- "good", "estimated", "missing"
    created_at TIMESTAMPTZ DEFAULT NOW(),

    PRIMARY KEY (series_id, ts)
);

CREATE INDEX idx_observations_ts_series ON observations (ts, series_id);
CREATE INDEX idx_observations_value ON observations (value) WHERE quality_flag = 'good';

-- Latest value per series.
CREATE VIEW latest_observations AS
SELECT DISTINCT ON (series_id)
    series_id,
    ts,
    value,
    quality_flag
FROM observations
ORDER BY series_id, ts DESC;

-- Per balancing authority: active series and the time of its newest observation.
CREATE VIEW ba_summary AS
SELECT
    ba.code,
    ba.name,
    ba.timezone,
    COUNT(s.id) AS series_count,
    MAX(lo.ts) AS latest_data_time
FROM balancing_authorities ba
LEFT JOIN series s ON ba.id = s.ba_id AND s.is_active = true
LEFT JOIN latest_observations lo ON s.id = lo.series_id
GROUP BY ba.id, ba.code, ba.name, ba.timezone;
