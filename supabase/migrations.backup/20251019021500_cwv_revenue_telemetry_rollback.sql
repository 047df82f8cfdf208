-- Rolls back 20251019021500_cwv_revenue_telemetry.sql.
drop table if exists public.cwv_revenue_samples;
