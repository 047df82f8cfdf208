-- Rolls back 20251019013000_guided_selling_graph.sql.
drop table if exists public.guided_selling_edges;
drop table if exists public.guided_selling_nodes;
