#!/usr/bin/env bash
# The staging job's rehearsal: `cargo xtask stage-rehearse` on staging, with the data plan kept in
# the repo ($PLAN, `supabase/data_plan.json` unless the dispatch names another), so a dispatch
# with a molecule finds it on a fresh runner; $MOLECULE, when set, rehearses that molecule alone.
# $XTASK runs another build of the tool (the tests run the one they built); cargo's by default.
set -euo pipefail
read -ra xtask <<< "${XTASK:-cargo xtask}"
args=(--target staging --junit target/junit/stage-rehearse.xml --github --plan "${PLAN:-supabase/data_plan.json}")
if [[ -n ${MOLECULE-} ]]; then args+=(--molecule "$MOLECULE"); fi
exec "${xtask[@]}" stage-rehearse "${args[@]}"
