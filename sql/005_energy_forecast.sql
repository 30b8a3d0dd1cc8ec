-- 005_energy_forecast.sql — the Energy Forecast Platform's measured data.
-- Source: shared/reference/002_1965406876614eca.txt, "Database Schema Guide", "Table Definitions"
-- 1-3 (cities, energy_consumption, weather_data). models, predictions and model_metrics are not part
-- of sluice's ingest presets. The tables are plain (unpartitioned) here; the policy manager's
-- plain-PostgreSQL fallback owns any range partitioning.

-- ll_to_earth() for the cities location index.
CREATE EXTENSION IF NOT EXISTS cube;
CREATE EXTENSION IF NOT EXISTS earthdistance;

CREATE TABLE cities (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(100) NOT NULL,
    latitude DECIMAL(9,6) NOT NULL,
    longitude DECIMAL(9,6) NOT NULL,
    timezone VARCHAR(50) NOT NULL,
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT unique_city_name UNIQUE (name)
);

CREATE INDEX idx_cities_location ON cities USING gist (
    ll_to_earth(latitude, longitude)
);
CREATE INDEX idx_cities_timezone ON cities (timezone);

-- The document defines energy_consumption and weather_data twice: as plain tables keyed by id, and
-- (its "Partitioning Strategy") as tables range-partitioned by "timestamp". A partitioned table's
-- unique keys must include the partition column, so the primary key here is (id, "timestamp"): ids
-- stay unique (gen_random_uuid()), and sluice's policy manager can partition these tables.
CREATE TABLE energy_consumption (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    city_id UUID NOT NULL REFERENCES cities(id),
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    consumption_kwh DECIMAL(12,2) NOT NULL,
    peak_demand_kw DECIMAL(12,2),
    metadata JSONB DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, "timestamp"),
    CONSTRAINT consumption_city_timestamp UNIQUE (city_id, "timestamp")
);

CREATE INDEX idx_consumption_city_time ON energy_consumption (city_id, "timestamp");
CREATE INDEX idx_consumption_time ON energy_consumption USING BRIN ("timestamp");

CREATE TABLE weather_data (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    city_id UUID NOT NULL REFERENCES cities(id),
    "timestamp" TIMESTAMP WITH TIME ZONE NOT NULL,
    temperature DECIMAL(5,2) NOT NULL,
    humidity DECIMAL(5,2),
    wind_speed DECIMAL(5,2),
    precipitation DECIMAL(5,2),
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (id, "timestamp"),
    CONSTRAINT weather_city_timestamp UNIQUE (city_id, "timestamp")
);

CREATE INDEX idx_weather_city_time ON weather_data (city_id, "timestamp");
CREATE INDEX idx_weather_time ON weather_data USING BRIN ("timestamp");
