-- pgsodium, as a stand-in of the rehearsal tool for the local target: the extension and its
-- schema, so the `create extension if not exists "pgsodium"` that older `supabase db dump`
-- headers carry is the no-op it is on Supabase. None of pgsodium's functions is here: a
-- migration that calls one fails on local with "function pgsodium.... does not exist" and must be
-- rehearsed on staging. (Supabase has deprecated pgsodium; new projects do not have it.)
grant usage on schema pgsodium to postgres, service_role;
