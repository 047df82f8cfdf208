-- Rolls back 20251011140000_knowledge_base.sql.
drop table if exists public.kb_chunks;
drop table if exists public.kb_articles;
