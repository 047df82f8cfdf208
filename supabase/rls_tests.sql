-- The RLS contract: run before every rehearsal sign-off (runbook step 6).
--   psql "$DATABASE_URL" -f supabase/rls_tests.sql        (or: cargo xtask rls)
-- One transaction, rolled back: it leaves nothing behind on staging. Every test must pass.
begin;
select plan(41);

-- RLS is on for every table the API can reach -----------------------------------------------
select ok(c.relrowsecurity, format('RLS is on for public.%s', t.name))
from unnest(array[
    'inventory_items', 'inventory_bundles', 'inventory_bundle_items', 'kb_articles', 'kb_chunks',
    'approvals', 'programmatic_seo_blueprints', 'programmatic_seo_generation_runs',
    'programmatic_seo_internal_links', 'guided_selling_nodes', 'guided_selling_edges',
    'cwv_revenue_samples', 'ab_experiments', 'ab_exposures'
]) as t(name)
left join pg_class c on c.oid = to_regclass('public.' || t.name);

select is(
    array(select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity order by 1),
    '{}'::text[],
    'no table in public is without RLS'
);

-- Policy coverage, by name ------------------------------------------------------------------
select policies_are('public', 'programmatic_seo_blueprints',
    array['programmatic_seo_blueprints_owner_select', 'programmatic_seo_blueprints_owner_write']);
select policies_are('public', 'programmatic_seo_generation_runs',
    array['programmatic_seo_generation_runs_owner_select', 'programmatic_seo_generation_runs_owner_insert']);
select policies_are('public', 'programmatic_seo_internal_links',
    array['programmatic_seo_internal_links_owner_all']);
select policies_are('public', 'inventory_items',
    array['inventory_items_owner_select', 'inventory_items_owner_write']);
select policies_are('public', 'inventory_bundles',
    array['inventory_bundles_owner_select', 'inventory_bundles_owner_write']);
select policies_are('public', 'inventory_bundle_items', array['inventory_bundle_items_owner_all']);
select policies_are('public', 'approvals',
    array['approvals_requester_select', 'approvals_requester_insert', 'approvals_requester_update']);

-- Fixtures: two users, one row of each kind per user (as postgres, which bypasses RLS) ---------
insert into auth.users (id, aud, role, email) values
    ('11111111-1111-1111-1111-111111111111', 'authenticated', 'authenticated', 'alice@example.test'),
    ('22222222-2222-2222-2222-222222222222', 'authenticated', 'authenticated', 'bob@example.test');
insert into public.inventory_items (owner_id, sku, title, on_hand, reorder_point) values
    ('11111111-1111-1111-1111-111111111111', 'A-1', 'Alice''s widget', 3, 5),
    ('22222222-2222-2222-2222-222222222222', 'B-1', 'Bob''s widget', 10, 2);
insert into public.approvals (requester_id, subject) values
    ('11111111-1111-1111-1111-111111111111', 'alice: raise budget'),
    ('22222222-2222-2222-2222-222222222222', 'bob: new supplier');
insert into public.programmatic_seo_blueprints (owner_id, slug_pattern) values
    ('11111111-1111-1111-1111-111111111111', '/alice/{city}'),
    ('22222222-2222-2222-2222-222222222222', '/bob/{city}');

-- anon: sees nothing, writes nothing -----------------------------------------------------------
set local role anon;
select set_config('request.jwt.claims', '{"role": "anon"}', true);
select is_empty('select 1 from public.inventory_items', 'anon sees no inventory');
select is_empty('select 1 from public.approvals', 'anon sees no approvals');
select is_empty('select 1 from public.programmatic_seo_blueprints', 'anon sees no SEO blueprints');
select throws_ok(
    $$ insert into public.inventory_items (owner_id, sku, title) values ('11111111-1111-1111-1111-111111111111', 'X', 'x') $$,
    '42501', null, 'anon cannot insert inventory');
select throws_ok('select public.dashboard_inventory_summary()', '42501', null, 'anon cannot call the dashboard RPC');

-- alice: her rows only; cannot write bob's ------------------------------------------------------
reset role;
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "11111111-1111-1111-1111-111111111111", "role": "authenticated"}', true);
select results_eq('select sku from public.inventory_items', array['A-1'], 'alice sees only her inventory');
select results_eq('select subject from public.approvals', array['alice: raise budget'], 'alice sees only her approvals');
select results_eq('select slug_pattern from public.programmatic_seo_blueprints', array['/alice/{city}'],
    'alice sees only her SEO blueprints');
select results_eq('select items from public.dashboard_inventory_summary()', array[1::bigint],
    'the dashboard RPC counts only alice''s items');
select throws_ok(
    $$ insert into public.inventory_items (owner_id, sku, title) values ('22222222-2222-2222-2222-222222222222', 'A-2', 'forged') $$,
    '42501', null, 'alice cannot insert inventory as bob');
select throws_ok(
    $$ insert into public.approvals (requester_id, subject) values ('22222222-2222-2222-2222-222222222222', 'forged') $$,
    '42501', null, 'alice cannot file an approval as bob');
select throws_ok(
    $$ update public.inventory_items set owner_id = '22222222-2222-2222-2222-222222222222' where sku = 'A-1' $$,
    '42501', null, 'alice cannot hand her item to bob');
select lives_ok($$ update public.inventory_items set on_hand = 99 where sku = 'B-1' $$,
    'an update of bob''s item runs');
select lives_ok($$ insert into public.inventory_items (sku, title) values ('A-2', 'second') $$,
    'alice can insert her own inventory');

-- bob: his rows only, and alice's update above touched nothing of his --------------------------
reset role;
set local role authenticated;
select set_config('request.jwt.claims', '{"sub": "22222222-2222-2222-2222-222222222222", "role": "authenticated"}', true);
select results_eq('select sku, on_hand from public.inventory_items',
    $$ values ('B-1', 10) $$, 'bob sees only his inventory, unchanged by alice');
select results_eq('select subject from public.approvals', array['bob: new supplier'], 'bob sees only his approvals');
select throws_ok(
    $$ insert into public.programmatic_seo_blueprints (owner_id, slug_pattern) values ('11111111-1111-1111-1111-111111111111', '/x') $$,
    '42501', null, 'bob cannot create an SEO blueprint as alice');

-- service_role: bypasses RLS, sees everyone's rows ----------------------------------------------
reset role;
set local role service_role;
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
select results_eq('select count(*) from public.inventory_items', array[3::bigint], 'service_role sees all inventory');
select results_eq('select count(*) from public.approvals', array[2::bigint], 'service_role sees all approvals');

reset role;
select * from finish();
rollback;
