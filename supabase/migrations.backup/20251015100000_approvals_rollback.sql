-- Rolls back 20251015100000_approvals.sql.
drop table if exists public.approvals;
drop type if exists public.approval_status;
