-- Rolls back 20251019024000_ab_harness_exposures.sql.
drop table if exists public.ab_exposures;
drop table if exists public.ab_experiments;
