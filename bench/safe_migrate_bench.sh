#!/usr/bin/env bash
# safe-migrate's overhead over plain `previewdb migrate` (issue 10), on one generated database
# (pgbench -i) on the embedded server, in one run; prints times and ratios. Not a test.
# Target (issue 10): the backup step (a template snapshot of the target) at most 1.2x a raw
# `CREATE DATABASE ... TEMPLATE` of the same database.
#
#   bench/safe_migrate_bench.sh [PREVIEWDB_BIN]
#
# Environment: SCALE (pgbench scale, default 5: about 80 MB; 70 gives about 1 GB), REPS (default 3,
# medians), WORK (scratch directory; default a temporary one, removed at exit).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SCALE=${SCALE:-5}
REPS=${REPS:-3}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-safe-migrate-bench-XXXXXX)
  trap '"$BIN" local stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fi
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGDATABASE PGUSER || true

export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS seed" -c "CREATE DATABASE seed"
echo "setup: pgbench -i -s $SCALE" >&2
pgbench -q -i -s "$SCALE" seed >/dev/null 2>&1
DBSIZE=$(psql -X -At -d seed -c "SELECT pg_size_pretty(pg_database_size('seed'))")

# Two migrations a deploy might carry: a new column with a default, and an index.
mkdir -p "$WORK/m"
echo "ALTER TABLE pgbench_accounts ADD COLUMN note text DEFAULT 'x';" >"$WORK/m/0001_note.sql"
echo "CREATE INDEX accounts_bid ON pgbench_accounts(bid);" >"$WORK/m/0002_index.sql"

fresh() { # a copy of seed named $1, with no snapshot of it around
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" \
    -c "CREATE DATABASE $1 TEMPLATE seed"
}
drop_snapshots() {
  for s in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'snap\\_%'"); do
    psql -X -q -d postgres -c "ALTER DATABASE $s IS_TEMPLATE false" -c "DROP DATABASE $s"
  done
}

declare -a T_MIGRATE T_SAFE T_BACKUP T_DRY T_CLONE
for ((i = 1; i <= REPS; i++)); do
  fresh target
  sync
  t0=$(now)
  "$BIN" migrate --database-url "$BASE" --database target --dir "$WORK/m" -q >/dev/null
  t1=$(now)
  T_MIGRATE+=("$(elapsed "$t0" "$t1")")

  fresh target
  drop_snapshots
  sync
  t0=$(now)
  out=$("$BIN" safe-migrate target --database-url "$BASE" --dir "$WORK/m" --json -q)
  t1=$(now)
  T_SAFE+=("$(elapsed "$t0" "$t1")")
  T_BACKUP+=("$(python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(j['steps'][0]['duration_ms']/1000)" "$out")")
  T_DRY+=("$(python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(j['steps'][1]['duration_ms']/1000)" "$out")")

  # The raw template clone the backup step is measured against (same server, same database).
  fresh target
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rawclone"
  sync
  t0=$(now)
  psql -X -q -d postgres -c "CREATE DATABASE rawclone TEMPLATE target"
  t1=$(now)
  T_CLONE+=("$(elapsed "$t0" "$t1")")
done

M=$(median "${T_MIGRATE[@]}")
S=$(median "${T_SAFE[@]}")
B=$(median "${T_BACKUP[@]}")
D=$(median "${T_DRY[@]}")
C=$(median "${T_CLONE[@]}")
echo "database: pgbench scale $SCALE ($DBSIZE), $REPS runs, medians"
echo "migrate:            ${M} s"
echo "safe-migrate:       ${S} s  ($(ratio "$S" "$M")x migrate)"
echo "  backup step:      ${B} s  ($(ratio "$B" "$C")x a raw CREATE DATABASE ... TEMPLATE: ${C} s; target <= 1.2x)"
echo "  dry-run step:     ${D} s"
