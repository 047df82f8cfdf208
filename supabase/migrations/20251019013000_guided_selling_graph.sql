-- Guided selling: a graph of questions (nodes) and answers leading to the next node (edges).
create table if not exists public.guided_selling_nodes (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    prompt text not null,
    recommends_item_id uuid references public.inventory_items (id) on delete set null
);

create table if not exists public.guided_selling_edges (
    from_node uuid not null references public.guided_selling_nodes (id) on delete cascade,
    to_node uuid not null references public.guided_selling_nodes (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    answer text not null,
    primary key (from_node, to_node)
);

alter table public.guided_selling_nodes enable row level security;
alter table public.guided_selling_edges enable row level security;

create policy guided_selling_nodes_owner_all on public.guided_selling_nodes
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy guided_selling_edges_owner_all on public.guided_selling_edges
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
