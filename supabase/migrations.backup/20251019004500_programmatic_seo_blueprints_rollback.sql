-- Rolls back 20251019004500_programmatic_seo_blueprints.sql.
drop table if exists public.programmatic_seo_internal_links;
drop table if exists public.programmatic_seo_generation_runs;
drop table if exists public.programmatic_seo_blueprints;
