-- Rolls back 20251011090000_inventory_bundle.sql. Policies and indexes go with their tables.
drop table if exists public.inventory_bundle_items;
drop table if exists public.inventory_bundles;
drop table if exists public.inventory_items;
