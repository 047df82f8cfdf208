-- Inventory bundle: items a shop stocks, and bundles sold as one SKU.
create table if not exists public.inventory_items (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    sku text not null,
    title text not null,
    on_hand integer not null default 0 check (on_hand >= 0),
    reorder_point integer not null default 0 check (reorder_point >= 0),
    created_at timestamptz not null default now(),
    unique (owner_id, sku)
);

create table if not exists public.inventory_bundles (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    sku text not null,
    title text not null,
    created_at timestamptz not null default now(),
    unique (owner_id, sku)
);

create table if not exists public.inventory_bundle_items (
    bundle_id uuid not null references public.inventory_bundles (id) on delete cascade,
    item_id uuid not null references public.inventory_items (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    quantity integer not null check (quantity > 0),
    primary key (bundle_id, item_id)
);
create index if not exists inventory_bundle_items_item_id_idx on public.inventory_bundle_items (item_id);

alter table public.inventory_items enable row level security;
alter table public.inventory_bundles enable row level security;
alter table public.inventory_bundle_items enable row level security;

create policy inventory_items_owner_select on public.inventory_items
    for select to authenticated using (owner_id = (select auth.uid()));
create policy inventory_items_owner_write on public.inventory_items
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy inventory_bundles_owner_select on public.inventory_bundles
    for select to authenticated using (owner_id = (select auth.uid()));
create policy inventory_bundles_owner_write on public.inventory_bundles
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy inventory_bundle_items_owner_all on public.inventory_bundle_items
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
