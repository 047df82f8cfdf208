-- Knowledge base: articles and the chunks the assistant retrieves.
create table if not exists public.kb_articles (
    id uuid primary key default extensions.gen_random_uuid(),
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    slug text not null,
    title text not null,
    body text not null default '',
    published boolean not null default false,
    updated_at timestamptz not null default now(),
    unique (owner_id, slug)
);

create table if not exists public.kb_chunks (
    id bigint generated always as identity primary key,
    article_id uuid not null references public.kb_articles (id) on delete cascade,
    owner_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    ordinal integer not null,
    content text not null,
    unique (article_id, ordinal)
);

alter table public.kb_articles enable row level security;
alter table public.kb_chunks enable row level security;

create policy kb_articles_owner_all on public.kb_articles
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
create policy kb_chunks_owner_all on public.kb_chunks
    for all to authenticated using (owner_id = (select auth.uid())) with check (owner_id = (select auth.uid()));
