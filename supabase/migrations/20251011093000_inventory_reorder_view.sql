-- What to reorder: items at or below their reorder point. security_invoker keeps the caller's RLS.
create or replace view public.inventory_reorder_queue with (security_invoker = true) as
select id, owner_id, sku, title, on_hand, reorder_point
from public.inventory_items
where on_hand <= reorder_point;
