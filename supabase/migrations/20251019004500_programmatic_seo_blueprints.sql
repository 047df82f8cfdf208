-- Programmatic SEO: page blueprints, the runs that generate pages from them, and internal links.
create table if not exists public.programmatic_seo_blueprints (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    slug_pattern text not null,
    template jsonb not null default '{}'::jsonb,
    created_at timestamptz not null default now()
);

create table if not exists public.programmatic_seo_generation_runs (
    id uuid primary key default extensions.gen_random_uuid(),
    blueprint_id uuid not null references public.programmatic_seo_blueprints (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    pages_generated integer not null default 0,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);
create index if not exists programmatic_seo_generation_runs_blueprint_id_idx
    on public.programmatic_seo_generation_runs (blueprint_id);

create table if not exists public.programmatic_seo_internal_links (
    id bigint generated always as identity primary key,
    blueprint_id uuid not null references public.programmatic_seo_blueprints (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    from_path text not null,
    to_path text not null,
    anchor text not null
);
create index if not exists programmatic_seo_internal_links_blueprint_id_idx
    on public.programmatic_seo_internal_links (blueprint_id);

alter table public.programmatic_seo_blueprints enable row level security;
alter table public.programmatic_seo_generation_runs enable row level security;
alter table public.programmatic_seo_internal_links enable row level security;

create policy programmatic_seo_blueprints_owner_select on public.programmatic_seo_blueprints
    for select to authenticated using (owner_id = (select auth.uid()));
create policy programmatic_seo_blueprints_owner_write on public.programmatic_seo_blueprints
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy programmatic_seo_generation_runs_owner_select on public.programmatic_seo_generation_runs
    for select to authenticated using (owner_id = (select auth.uid()));
create policy programmatic_seo_generation_runs_owner_insert on public.programmatic_seo_generation_runs
    for insert to authenticated with check (owner_id = (select auth.uid()));
create policy programmatic_seo_internal_links_owner_all on public.programmatic_seo_internal_links
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
