#!/usr/bin/env bash
# The seed runbook's steps 2-7 (data-staging-apply-runbook.md), exactly as written, for
# `cargo xtask bench` to time against `cargo xtask stage-rehearse` on the same database.
# Usage: DATABASE_URL=... runbook_steps_2_7.sh WORKDIR   (the Supabase CLI on PATH)
cd "$1"
export LOG_ROOT="artifacts/ops/$(date -u +%Y-%m-%d)"
mkdir -p "$LOG_ROOT"

# 2. Connectivity Check
psql "$DATABASE_URL" -c "select current_database(), inet_server_addr(), now();" \
  | tee "$LOG_ROOT/ipv4_pooler_check_$(date -u +%H%M%S).log"

# 3. Inventory Pending Migrations
supabase migration list --db-url "$DATABASE_URL" \
  | tee "$LOG_ROOT/migration_status_pre_$(date -u +%H%M%S).txt"

# 4. Non-Destructive Apply Rehearsal
export REHEARSAL_DIR="$LOG_ROOT/rehearsal_$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$REHEARSAL_DIR"
for file in supabase/migrations/2025101109*.sql \
            supabase/migrations/2025101114*.sql \
            supabase/migrations/20251015*.sql \
            supabase/migrations/20251019004500_programmatic_seo_blueprints.sql \
            supabase/migrations/20251019013000_guided_selling_graph.sql \
            supabase/migrations/20251019021500_cwv_revenue_telemetry.sql \
            supabase/migrations/20251019024000_ab_harness_exposures.sql; do
  echo "==> $file" | tee -a "$REHEARSAL_DIR/migration_apply.log"
  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f "$file" \
    >> "$REHEARSAL_DIR/migration_apply.log" 2>&1 || {
    echo "!! failure: $file" | tee -a "$REHEARSAL_DIR/migration_apply.log"
  }
  echo >> "$REHEARSAL_DIR/migration_apply.log"
done

# 5. Rollback Rehearsal
for file in supabase/migrations.backup/*rollback*.sql; do
  echo "==> rollback $file" | tee -a "$REHEARSAL_DIR/migration_rollback.log"
  psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f "$file" \
    >> "$REHEARSAL_DIR/migration_rollback.log" 2>&1 || {
    echo "!! rollback failure: $file" | tee -a "$REHEARSAL_DIR/migration_rollback.log"
  }
  echo >> "$REHEARSAL_DIR/migration_rollback.log"
done

# 6. RLS Contract Verification
psql "$DATABASE_URL" -f supabase/rls_tests.sql \
  | tee "$REHEARSAL_DIR/rls_contract.log"

# 7. Post-Run Cleanup
supabase migration list --db-url "$DATABASE_URL" > "$REHEARSAL_DIR/migration_status_post.txt"
