-- pgjwt, written for the rehearsal tool's local target: the functions of pgjwt 0.2.0 with the
-- same signatures and the same tokens out (the header is the literal {"alg":"HS256","typ":"JWT"},
-- compact, as pgjwt writes it), over pgcrypto's hmac(), which Supabase keeps in `extensions`.
-- verify() is valid only for a good signature inside the token's nbf..exp window, as pgjwt's is.
create function @extschema@.url_encode(data bytea) returns text language sql immutable as $$
    select translate(encode(data, 'base64'), E'+/=\n', '-_')
$$;

create function @extschema@.url_decode(data text) returns bytea language sql immutable as $$
    select decode(
        rpad(translate(data, '-_', '+/'), length(data) + (4 - length(data) % 4) % 4, '='),
        'base64')
$$;

-- An algorithm other than HS256/384/512 reaches hmac() as '' and fails there, as in pgjwt.
create function @extschema@.algorithm_sign(signables text, secret text, algorithm text) returns text
language sql immutable as $$
    select @extschema@.url_encode(extensions.hmac(signables, secret,
        case algorithm when 'HS256' then 'sha256' when 'HS384' then 'sha384' when 'HS512' then 'sha512' else '' end))
$$;

create function @extschema@.sign(payload json, secret text, algorithm text default 'HS256') returns text
language sql immutable as $$
    select parts || '.' || @extschema@.algorithm_sign(parts, secret, algorithm)
    from (
        select @extschema@.url_encode(convert_to('{"alg":"' || algorithm || '","typ":"JWT"}', 'utf8'))
               || '.' || @extschema@.url_encode(convert_to(payload::text, 'utf8')) as parts
    ) signables
$$;

create function @extschema@.try_cast_double(inp text) returns double precision language plpgsql immutable as $$
begin
    return inp::double precision;
exception when others then
    return null;
end
$$;

create function @extschema@.verify(token text, secret text, algorithm text default 'HS256')
returns table(header json, payload json, valid boolean) language sql immutable as $$
    select h, p,
           signed and tstzrange(
               to_timestamp(@extschema@.try_cast_double(p ->> 'nbf')),
               to_timestamp(@extschema@.try_cast_double(p ->> 'exp'))
           ) @> current_timestamp
    from (
        select convert_from(@extschema@.url_decode(part[1]), 'utf8')::json as h,
               convert_from(@extschema@.url_decode(part[2]), 'utf8')::json as p,
               part[3] = @extschema@.algorithm_sign(part[1] || '.' || part[2], secret, algorithm) as signed
        from regexp_split_to_array(token, '\.') part
    ) decoded
$$;
