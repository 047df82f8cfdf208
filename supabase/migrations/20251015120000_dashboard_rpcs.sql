-- Analytics and dashboard RPCs. security invoker with an empty search_path: they run with the
-- caller's RLS and cannot be hijacked by objects in another schema.
create or replace function public.dashboard_inventory_summary()
returns table (items bigint, units bigint, below_reorder bigint)
language sql
stable
security invoker
set search_path = ''
as $$
    select count(*), coalesce(sum(on_hand), 0), count(*) filter (where on_hand <= reorder_point)
    from public.inventory_items
$$;

create or replace function public.dashboard_pending_approvals()
returns bigint
language sql
stable
security invoker
set search_path = ''
as $$
    select count(*) from public.approvals where status = 'pending'
$$;

-- Functions are executable by PUBLIC by default: revoking from anon alone would change nothing.
revoke execute on function public.dashboard_inventory_summary() from public, anon;
revoke execute on function public.dashboard_pending_approvals() from public, anon;
grant execute on function public.dashboard_inventory_summary() to authenticated, service_role;
grant execute on function public.dashboard_pending_approvals() to authenticated, service_role;
