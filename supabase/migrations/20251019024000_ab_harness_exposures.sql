-- A/B harness: which visitor saw which variant of which experiment.
create table if not exists public.ab_experiments (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    key text not null,
    variants text[] not null check (cardinality(variants) >= 2),
    unique (owner_id, key)
);

create table if not exists public.ab_exposures (
    id bigint generated always as identity primary key,
    experiment_id uuid not null references public.ab_experiments (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    visitor_id text not null,
    variant text not null,
    exposed_at timestamptz not null default now()
);
create index if not exists ab_exposures_experiment_id_idx on public.ab_exposures (experiment_id);

alter table public.ab_experiments enable row level security;
alter table public.ab_exposures enable row level security;

create policy ab_experiments_owner_all on public.ab_experiments
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy ab_exposures_owner_select on public.ab_exposures
    for select to authenticated using (owner_id = (select auth.uid()));
create policy ab_exposures_owner_insert on public.ab_exposures
    for insert to authenticated with check (owner_id = (select auth.uid()));
