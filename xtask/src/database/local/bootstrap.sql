-- What a Supabase database has before the first migration runs, for the throwaway local cluster.
-- Run once per template by the bootstrap superuser `supabase_admin` (initdb -U supabase_admin).
-- As on Supabase, `postgres` is not a superuser; `supabase_admin` owns this bootstrap and the
-- extensions. Keep it to what migrations and pgTAP tests rely on.
\set ON_ERROR_STOP on
set client_min_messages = warning;

-- Roles ----------------------------------------------------------------------------------------
create role postgres login createrole createdb replication bypassrls;
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit;
create role supabase_auth_admin login noinherit createrole;
create role supabase_storage_admin login noinherit createrole;
grant anon, authenticated, service_role to authenticator;
-- Tests written for Supabase switch roles with `set local role authenticated` as postgres.
grant anon, authenticated, service_role to postgres with admin option;
grant supabase_auth_admin, supabase_storage_admin to postgres;

alter database postgres owner to postgres;
alter database postgres set search_path = "$user", public, extensions;

-- Schemas --------------------------------------------------------------------------------------
create schema extensions;
create schema auth authorization supabase_auth_admin;
create schema storage authorization supabase_storage_admin;
grant usage on schema public, extensions to postgres, anon, authenticated, service_role, supabase_auth_admin, supabase_storage_admin;
grant create on schema extensions to postgres;
grant usage on schema auth, storage to postgres, anon, authenticated, service_role;
grant all on schema auth to postgres;
grant all on schema storage to postgres;

-- Supabase's default grants in public: what postgres (or the bootstrap) creates there is reachable
-- by the API roles, and RLS is what keeps rows apart.
alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;

-- Settings Supabase lets postgres set on roles (PostgREST's in-database configuration). On
-- PostgreSQL 15 a non-superuser needs SET on a placeholder parameter to `alter role ... set` it.
do $$
declare p text;
begin
  foreach p in array array[
    'pgrst.db_schemas', 'pgrst.db_anon_role', 'pgrst.db_extra_search_path', 'pgrst.db_max_rows',
    'pgrst.db_pre_request', 'pgrst.db_root_spec', 'pgrst.db_plan_enabled', 'pgrst.db_tx_end',
    'pgrst.db_aggregates_enabled', 'pgrst.db_pre_config', 'pgrst.db_hoisted_tx_settings',
    'pgrst.jwt_secret', 'pgrst.jwt_aud', 'pgrst.jwt_role_claim_key', 'pgrst.openapi_mode',
    'pgrst.openapi_security_active', 'pgrst.server_timing_enabled',
    -- supautils' privileged_role_allowed_configs: a data-only dump (`supabase db dump --data-only`)
    -- starts with `set session_replication_role = replica`.
    'session_replication_role', 'track_io_timing'
  ] loop
    execute format('grant set on parameter %I to postgres with grant option', p);
  end loop;
end $$;

-- Extensions, owned by the superuser, before any migration runs, where a Supabase project has
-- them: so the header of a `supabase db dump` (`create extension if not exists ...`) is a no-op.
create extension if not exists pgcrypto with schema extensions;
create extension if not exists "uuid-ossp" with schema extensions;
create extension if not exists pg_stat_statements with schema extensions;
create extension if not exists pgtap with schema extensions;
create extension if not exists pg_graphql;      -- schema graphql (a stand-in unless the real one is installed)
create extension if not exists supabase_vault;  -- schema vault (likewise)
create extension if not exists pgsodium;        -- older projects have it; a stand-in: the schema only

-- auth -----------------------------------------------------------------------------------------
set role supabase_auth_admin;

create table auth.users (
    instance_id uuid,
    id uuid not null primary key,
    aud varchar(255),
    role varchar(255),
    email varchar(255),
    encrypted_password varchar(255),
    email_confirmed_at timestamptz,
    invited_at timestamptz,
    confirmation_token varchar(255),
    confirmation_sent_at timestamptz,
    recovery_token varchar(255),
    recovery_sent_at timestamptz,
    email_change_token_new varchar(255),
    email_change varchar(255),
    email_change_sent_at timestamptz,
    last_sign_in_at timestamptz,
    raw_app_meta_data jsonb,
    raw_user_meta_data jsonb,
    is_super_admin boolean,
    created_at timestamptz,
    updated_at timestamptz,
    phone text unique default null,
    phone_confirmed_at timestamptz,
    phone_change text default '',
    phone_change_token varchar(255) default '',
    phone_change_sent_at timestamptz,
    confirmed_at timestamptz generated always as (least(email_confirmed_at, phone_confirmed_at)) stored,
    email_change_token_current varchar(255) default '',
    email_change_confirm_status smallint default 0 check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
    banned_until timestamptz,
    reauthentication_token varchar(255) default '',
    reauthentication_sent_at timestamptz,
    is_sso_user boolean not null default false,
    deleted_at timestamptz,
    is_anonymous boolean not null default false
);
create index users_instance_id_idx on auth.users (instance_id);
create unique index users_email_partial_key on auth.users (email) where (is_sso_user = false);

create table auth.identities (
    provider_id text not null,
    user_id uuid not null references auth.users (id) on delete cascade,
    identity_data jsonb not null,
    provider text not null,
    last_sign_in_at timestamptz,
    created_at timestamptz,
    updated_at timestamptz,
    email text generated always as (lower(identity_data ->> 'email')) stored,
    id uuid not null default extensions.gen_random_uuid() primary key,
    constraint identities_provider_id_provider_unique unique (provider_id, provider)
);

-- The claims come from PostgREST's `request.jwt.claims` setting (one JSON object), or from the
-- older per-claim `request.jwt.claim.<name>` settings; GoTrue's functions read both.
create function auth.uid() returns uuid language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;

create function auth.role() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;

create function auth.email() returns text language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;

create function auth.jwt() returns jsonb language sql stable as $$
  select coalesce(
    nullif(current_setting('request.jwt.claim', true), ''),
    nullif(current_setting('request.jwt.claims', true), '')
  )::jsonb
$$;

grant all on auth.users, auth.identities to postgres with grant option;
grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt() to public;
reset role;

-- storage --------------------------------------------------------------------------------------
set role supabase_storage_admin;

create table storage.buckets (
    id text not null primary key,
    name text not null unique,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    public boolean default false,
    file_size_limit bigint,
    allowed_mime_types text[]
);

create table storage.objects (
    id uuid not null default extensions.gen_random_uuid() primary key,
    bucket_id text references storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamptz default now(),
    updated_at timestamptz default now(),
    last_accessed_at timestamptz default now(),
    metadata jsonb,
    path_tokens text[] generated always as (string_to_array(name, '/')) stored,
    version text,
    owner_id text,
    user_metadata jsonb,
    constraint bucketid_objname unique (bucket_id, name)
);
alter table storage.objects enable row level security;
alter table storage.buckets enable row level security;

create function storage.foldername(name text) returns text[] language plpgsql immutable as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[1:array_length(_parts, 1) - 1];
end
$$;

create function storage.filename(name text) returns text language plpgsql immutable as $$
declare _parts text[];
begin
  select string_to_array(name, '/') into _parts;
  return _parts[array_length(_parts, 1)];
end
$$;

create function storage.extension(name text) returns text language plpgsql immutable as $$
declare _parts text[]; _filename text;
begin
  select string_to_array(name, '/') into _parts;
  select _parts[array_length(_parts, 1)] into _filename;
  return reverse(split_part(reverse(_filename), '.', 1));
end
$$;

grant all on storage.buckets, storage.objects to postgres, anon, authenticated, service_role;
grant execute on function storage.foldername(text), storage.filename(text), storage.extension(text) to public;
reset role;

-- Realtime's publication, which migrations add their tables to, owned by postgres ----------------
set role postgres;
create publication supabase_realtime;
reset role;

-- Migration history, as the Supabase CLI creates it on first use, owned by postgres -------------
set role postgres;
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (version text not null primary key);
alter table supabase_migrations.schema_migrations add column if not exists statements text[];
alter table supabase_migrations.schema_migrations add column if not exists name text;
reset role;
