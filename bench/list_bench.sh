#!/usr/bin/env bash
# `previewdb list` with many preview databases (issue 15: 1,000 under 200 ms) next to a raw
# `psql -c "SELECT datname FROM pg_database"` (the baseline, measured in the same run), both whole
# processes. Also times the first list after the previews appear (their sizes not cached yet) and
# `list --exact-sizes` (every size measured now, as list did before the cache). Not a test.
#
#   bench/list_bench.sh [PREVIEWDB_BIN]
#
# Environment: COUNT (previews, default 1000), REPS (default 9, medians), WORK (scratch directory;
# default a temporary one, removed at exit), OLD_BIN (another previewdb build whose `list` is
# timed in the same rounds, e.g. main's, for a before/after).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
COUNT=${COUNT:-1000}
REPS=${REPS:-9}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-list-bench-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
  trap '"$BIN" local stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fi
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGDATABASE PGUSER || true

# A server of its own: previewdb's embedded PostgreSQL under $WORK/home (unix socket, trust).
export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb
export PGOPTIONS="-c client_min_messages=warning"
export DATABASE_URL=$BASE

now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}x')"; }

# The registry exists once previewdb has run; then COUNT empty databases (template0, FILE_COPY:
# no WAL of their pages; fsync off while making them), registered as pull-request previews the
# way spawn registers them.
"$BIN" list >/dev/null
HAVE=$(psql -X -At -d postgres -c "SELECT count(*) FROM pg_database WHERE datname ~ '^pr_[0-9]+$'")
if ((HAVE < COUNT)); then  # a kept WORK may have them already
  echo "setup: $COUNT databases" >&2
  psql -X -q -d postgres -c "ALTER SYSTEM SET fsync = off" -c "SELECT pg_reload_conf()" >/dev/null
  for ((i = HAVE + 1; i <= COUNT; i++)); do
    echo "CREATE DATABASE pr_$i TEMPLATE template0 STRATEGY FILE_COPY;"
  done | psql -X -q -d postgres >/dev/null
  psql -X -q -d postgres -c "ALTER SYSTEM RESET fsync" -c "SELECT pg_reload_conf()" >/dev/null
fi
psql -X -q -d previewdb_registry -c "
  INSERT INTO registry.databases (oid, name, target, owner, state, kind, pr_number, created_by)
  SELECT oid, datname, datname, datdba, 'ready', 'pr', substr(datname, 4)::bigint, 'bench'
  FROM pg_database WHERE datname ~ '^pr_[0-9]+$' ON CONFLICT (oid) DO NOTHING" >/dev/null
# The first list after they appeared: no size cached yet.
psql -X -q -d previewdb_registry -c "
  DO \$\$ BEGIN IF to_regclass('registry.database_sizes') IS NOT NULL THEN
    DELETE FROM registry.database_sizes; END IF; END \$\$" >/dev/null

t0=$(now)
"$BIN" list >/dev/null
COLD=$(ms "$t0" "$(now)")
LINES=$("$BIN" list | grep -c '^  pr_')
[[ "$LINES" == "$COUNT" ]] || { echo "list shows $LINES previews, expected $COUNT" >&2; exit 1; }

declare -a T_PSQL T_LIST T_JSON T_EXACT T_OLD
for ((i = 1; i <= REPS; i++)); do
  t0=$(now); psql -X -At -d postgres -c "SELECT datname FROM pg_database" >/dev/null; t1=$(now)
  T_PSQL+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" list >/dev/null; t1=$(now)
  T_LIST+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" list --json >/dev/null; t1=$(now)
  T_JSON+=("$(ms "$t0" "$t1")")
  t0=$(now); "$BIN" list --exact-sizes >/dev/null; t1=$(now)
  T_EXACT+=("$(ms "$t0" "$t1")")
  if [[ -n "${OLD_BIN:-}" ]]; then
    t0=$(now); "$OLD_BIN" list >/dev/null; t1=$(now)
    T_OLD+=("$(ms "$t0" "$t1")")
  fi
done
P=$(median "${T_PSQL[@]}")
L=$(median "${T_LIST[@]}")
J=$(median "${T_JSON[@]}")
E=$(median "${T_EXACT[@]}")
echo "$COUNT previews, $REPS rounds (medians), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-44s %8s %10s\n' "command" "ms" "vs psql"
printf '%-44s %8s %10s\n' "psql -c 'SELECT datname FROM pg_database'" "$P" "1.00x"
printf '%-44s %8s %10s\n' "previewdb list (cached sizes)" "$L" "$(ratio "$L" "$P")"
printf '%-44s %8s %10s\n' "previewdb list --json (cached sizes)" "$J" "$(ratio "$J" "$P")"
printf '%-44s %8s %10s\n' "previewdb list --exact-sizes" "$E" "$(ratio "$E" "$P")"
printf '%-44s %8s %10s\n' "first previewdb list (measures all $COUNT)" "$COLD" "$(ratio "$COLD" "$P")"
if [[ -n "${OLD_BIN:-}" ]]; then
  O=$(median "${T_OLD[@]}")
  printf '%-44s %8s %10s\n' "OLD_BIN list" "$O" "$(ratio "$O" "$P")"
fi
echo "target: previewdb list under 200 ms with 1,000 previews"
