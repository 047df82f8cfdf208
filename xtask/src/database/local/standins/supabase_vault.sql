-- supabase_vault, as a stand-in of the rehearsal tool for the local target: the same tables,
-- view and functions, so migrations and tests that store and read secrets work. Nothing is
-- encrypted: `secret` holds the value base64-encoded, and decrypted_secrets decodes it.
create table vault.secrets (
    id uuid primary key default gen_random_uuid(),
    name text,
    description text not null default '',
    secret text not null,
    key_id uuid,
    nonce bytea,
    created_at timestamptz not null default current_timestamp,
    updated_at timestamptz not null default current_timestamp
);
create unique index secrets_name_idx on vault.secrets (name) where name is not null;

create view vault.decrypted_secrets as
select s.id, s.name, s.description, s.secret,
       convert_from(decode(s.secret, 'base64'), 'utf8') as decrypted_secret,
       s.key_id, s.nonce, s.created_at, s.updated_at
from vault.secrets s;

create function vault.create_secret(
    new_secret text,
    new_name text default null,
    new_description text default '',
    new_key_id uuid default null
) returns uuid language plpgsql security definer set search_path = '' as $$
declare
    created uuid;
begin
    insert into vault.secrets (secret, name, description, key_id)
    values (encode(convert_to(new_secret, 'utf8'), 'base64'), new_name, coalesce(new_description, ''), new_key_id)
    returning id into created;
    return created;
end
$$;

create function vault.update_secret(
    secret_id uuid,
    new_secret text default null,
    new_name text default null,
    new_description text default null,
    new_key_id uuid default null
) returns void language plpgsql security definer set search_path = '' as $$
begin
    update vault.secrets set
        secret = coalesce(encode(convert_to(new_secret, 'utf8'), 'base64'), secret),
        name = coalesce(new_name, name),
        description = coalesce(new_description, description),
        key_id = coalesce(new_key_id, key_id),
        updated_at = current_timestamp
    where id = secret_id;
end
$$;

revoke all on function vault.create_secret(text, text, text, uuid) from public;
revoke all on function vault.update_secret(uuid, text, text, text, uuid) from public;
grant usage on schema vault to postgres with grant option;
grant usage on schema vault to service_role;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to service_role;
grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid)
    to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid)
    to service_role;
