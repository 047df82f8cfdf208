-- pg_net, as a stand-in of the rehearsal tool for the local target: net.http_get, http_post and
-- http_delete queue their request in net.http_request_queue and return its id, as pg_net does.
-- Nothing is ever sent, so net._http_response stays empty.
create schema if not exists net;

create table net.http_request_queue (
    id bigserial primary key,
    method text not null,
    url text not null,
    headers jsonb not null,
    body bytea,
    timeout_milliseconds integer not null
);

create table net._http_response (
    id bigint,
    status_code integer,
    content_type text,
    headers jsonb,
    content text,
    timed_out boolean,
    error_msg text,
    created timestamptz not null default now()
);

create function net.http_get(
    url text,
    params jsonb default '{}',
    headers jsonb default '{}',
    timeout_milliseconds integer default 5000
) returns bigint language sql security definer set search_path = '' as $$
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('GET', url, coalesce(headers, '{}'), null, timeout_milliseconds)
    returning id
$$;

create function net.http_post(
    url text,
    body jsonb default '{}',
    params jsonb default '{}',
    headers jsonb default '{"Content-Type": "application/json"}',
    timeout_milliseconds integer default 5000
) returns bigint language sql security definer set search_path = '' as $$
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('POST', url, coalesce(headers, '{}'), convert_to(coalesce(body, '{}')::text, 'utf8'), timeout_milliseconds)
    returning id
$$;

create function net.http_delete(
    url text,
    params jsonb default '{}',
    headers jsonb default '{}',
    timeout_milliseconds integer default 5000
) returns bigint language sql security definer set search_path = '' as $$
    insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    values ('DELETE', url, coalesce(headers, '{}'), null, timeout_milliseconds)
    returning id
$$;

grant usage on schema net to postgres, service_role;
grant execute on function net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer),
    net.http_delete(text, jsonb, jsonb, integer) to postgres with grant option;
grant execute on function net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer),
    net.http_delete(text, jsonb, jsonb, integer) to service_role;
grant select on net.http_request_queue, net._http_response to postgres with grant option;
