-- pg_graphql, as a stand-in of the rehearsal tool for the local target: the functions migrations
-- and grants name, without a GraphQL engine behind them. graphql.resolve() answers every query
-- with an error that says so.
create function graphql.resolve(
    query text,
    variables jsonb default '{}',
    "operationName" text default null,
    extensions jsonb default null
) returns jsonb language sql stable as $$
    select jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
        'message', 'pg_graphql is a stand-in on the local rehearsal target: no GraphQL schema is served')))
$$;

create function graphql.comment_directive(comment_ text) returns jsonb language sql immutable as $$
    select null::jsonb
$$;

create function graphql.exception(message text) returns text language plpgsql as $$
begin
    raise exception using message = message;
end
$$;

grant usage on schema graphql to postgres, anon, authenticated, service_role;
grant execute on all functions in schema graphql to postgres, anon, authenticated, service_role;
