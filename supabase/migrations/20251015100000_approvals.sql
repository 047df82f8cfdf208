-- Approvals: a request waits for a decision; the requester sees and edits only their own.
do $$ begin
    create type public.approval_status as enum ('pending', 'approved', 'rejected');
exception when duplicate_object then null;
end $$;

create table if not exists public.approvals (
    id uuid primary key default extensions.gen_random_uuid(),
    requester_id uuid not null default auth.uid() references auth.users (id) on delete cascade,
    subject text not null,
    status public.approval_status not null default 'pending',
    decided_at timestamptz,
    created_at timestamptz not null default now()
);

alter table public.approvals enable row level security;

create policy approvals_requester_select on public.approvals
    for select to authenticated using (requester_id = (select auth.uid()));
create policy approvals_requester_insert on public.approvals
    for insert to authenticated with check (requester_id = (select auth.uid()) and status = 'pending');
create policy approvals_requester_update on public.approvals
    for update to authenticated using (requester_id = (select auth.uid())) with check (requester_id = (select auth.uid()));
