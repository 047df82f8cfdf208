-- Rolls back 20251011093000_inventory_reorder_view.sql.
drop view if exists public.inventory_reorder_queue;
