-- Core Web Vitals against revenue: one row per page view sample.
create table if not exists public.cwv_revenue_samples (
    id bigint generated always as identity primary key,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    page_path text not null,
    lcp_ms integer not null check (lcp_ms >= 0),
    inp_ms integer not null check (inp_ms >= 0),
    cls numeric(6, 4) not null check (cls >= 0),
    revenue_cents bigint not null default 0,
    observed_at timestamptz not null default now()
);
create index if not exists cwv_revenue_samples_owner_observed_idx on public.cwv_revenue_samples (owner_id, observed_at);

alter table public.cwv_revenue_samples enable row level security;

create policy cwv_revenue_samples_owner_select on public.cwv_revenue_samples
    for select to authenticated using (owner_id = (select auth.uid()));
create policy cwv_revenue_samples_owner_insert on public.cwv_revenue_samples
    for insert to authenticated with check (owner_id = (select auth.uid()));
