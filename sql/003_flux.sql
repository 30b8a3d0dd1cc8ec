-- 003_flux.sql — site meters, batteries and market signals (schema flux).
-- Source: shared/reference/004_b41ec1ee630e85e3.txt, "Flux Database Schema": "Core Tables",
-- "Indexes and Constraints" and "Data Types".
-- Plain PostgreSQL 15: create_hypertable(), the continuous aggregate
-- flux.mg_meter_readings_5m_intermediate and flux.get_meter_readings_30m() need TimescaleDB and are
-- left to sluice's policy manager.

CREATE SCHEMA IF NOT EXISTS flux;

-- Power and energy measurements from site meters.
CREATE TABLE flux.mg_meter_readings (
    "time" timestamp with time zone NOT NULL,
    device_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    frequency real,
    voltage_line_average real,
    current_phase_a real,
    current_phase_b real,
    current_phase_c real,
    current_phase_average real,
    power_phase_a_active real,
    power_phase_b_active real,
    power_phase_c_active real,
    power_total_active real,
    power_total_reactive real,
    power_total_apparent real,
    power_factor_total real,
    energy_imported_active real,
    energy_exported_active real,
    energy_imported_phase_a_active real,
    energy_exported_phase_a_active real,
    energy_imported_phase_b_active real,
    energy_exported_phase_b_active real,
    energy_imported_phase_c_active real,
    energy_exported_phase_c_active real,
    energy_imported_reactive real,
    energy_exported_reactive real,
    energy_imported_apparent real,
    energy_exported_apparent real
);

-- One reading per device per timestamp.
CREATE UNIQUE INDEX mg_meter_readings_deviceid_time_idx
    ON flux.mg_meter_readings (device_id, "time");
CREATE INDEX mg_meter_readings_time_idx
    ON flux.mg_meter_readings ("time" DESC);
-- Device-specific queries ("Performance Indexes").
CREATE INDEX mg_meter_readings_device_time_idx
    ON flux.mg_meter_readings (device_id, "time" DESC);

-- Battery system telemetry and control state.
CREATE TABLE flux.mg_bess_readings (
    "time" timestamp with time zone NOT NULL,
    device_id uuid NOT NULL,
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    soe real,
    target_power real,
    available_inverter_blocks smallint,
    command_source smallint
);

CREATE UNIQUE INDEX mg_bess_readings_deviceid_time_idx
    ON flux.mg_bess_readings (device_id, "time");
CREATE INDEX mg_bess_readings_time_idx
    ON flux.mg_bess_readings ("time" DESC);

-- Device metadata and configuration.
CREATE TABLE flux.mg_device_registry (
    id uuid DEFAULT gen_random_uuid() NOT NULL PRIMARY KEY,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    name text NOT NULL,
    type text NOT NULL,
    site text NOT NULL,
    metadata jsonb,
    active boolean DEFAULT true
);

CREATE INDEX mg_device_registry_site_idx ON flux.mg_device_registry (site);
CREATE INDEX mg_device_registry_type_idx ON flux.mg_device_registry (type);

-- External market signals and prices.
CREATE TABLE flux.market_data (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    "time" timestamp with time zone NOT NULL,
    type integer NOT NULL,
    value real NOT NULL,
    metadata jsonb,
    created_at timestamp with time zone DEFAULT now()
);

CREATE INDEX market_data_time_idx ON flux.market_data ("time" DESC);
CREATE INDEX market_data_type_time_idx ON flux.market_data (type, "time" DESC);

-- Market data categories.
CREATE TABLE flux.market_data_types (
    id integer PRIMARY KEY,
    name text NOT NULL UNIQUE,
    description text,
    unit text,
    created_at timestamp with time zone DEFAULT now()
);

INSERT INTO flux.market_data_types (id, name, description, unit) VALUES
(1, 'niv_estimate', 'Net Imbalance Volume Estimate', 'MW'),
(2, 'wholesale_price', 'Wholesale Electricity Price', '£/MWh'),
(3, 'imbalance_price', 'System Imbalance Price', '£/MWh'),
(4, 'axle_dispatch', 'Axle Platform Dispatch Signal', 'kW');

-- Market data input type for bulk inserts.
CREATE TYPE flux.market_data_input AS (
    "time" timestamp with time zone,
    type integer,
    value real
);
