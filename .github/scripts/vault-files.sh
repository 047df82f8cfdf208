#!/usr/bin/env bash
# Write the staging vault files where the runbook sources them from, from the environment's
# secrets ($DATABASE_URL, $SUPABASE_SERVICE_KEY), readable by this job alone and never printed.
# Each value is single-quoted with every ' written as '\'' (as a shell would read it back, and as
# the tool's vault reader does), so any secret survives: quotes, $, backslashes, spaces, #.
set -euo pipefail
umask 077
mkdir -p vault/occ/supabase

# quote NAME VALUE: one `export NAME='VALUE'` line, or exit 2 for a value a line cannot hold.
quote() {
  local name=$1 value=$2
  if [[ -z $value ]]; then
    echo "::error::the $name secret of the staging environment is empty" >&2
    exit 2
  fi
  if [[ $value == *$'\n'* || $value == *$'\r'* ]]; then
    echo "::error::the $name secret holds a line break, which a vault file line cannot hold" >&2
    exit 2
  fi
  local q="'\\''"
  printf "export %s='%s'\n" "$name" "${value//\'/$q}"
}

quote DATABASE_URL "${DATABASE_URL-}" > vault/occ/supabase/database_url_staging.env
quote SUPABASE_SERVICE_KEY "${SUPABASE_SERVICE_KEY-}" > vault/occ/supabase/service_key_staging.env
