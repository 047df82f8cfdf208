-- Rolls back 20251015120000_dashboard_rpcs.sql.
drop function if exists public.dashboard_pending_approvals();
drop function if exists public.dashboard_inventory_summary();
