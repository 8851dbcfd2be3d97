#!/usr/bin/env bash
# safe-migrate's overhead over plain `previewdb migrate` (issue 10), on one generated database
# (pgbench -i) on the embedded server, in one run; prints times and ratios. Not a test.
# Target (issue 10): the backup step (a template snapshot of the target) at most 1.2x a raw
# `CREATE DATABASE ... TEMPLATE` of the same database.
#
#   bench/safe_migrate_bench.sh [PREVIEWDB_BIN]
#
# Environment: SIZE (the database's size: 1G, 500M, ...; turned into a pgbench scale at about 15 MB
# per unit), else SCALE (pgbench scale, default 5: about 80 MB; 68 is about 1 GB), REPS (default 3,
# medians), WORK (scratch directory; default a temporary one, removed at exit), ARCHIVE=1 (also time
# `safe-migrate --backup archive`: pg_dump into a file:// store, its restore test, the dry run).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
if [[ -n "${SIZE:-}" ]]; then
  MB=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?', sys.argv[1].strip(), re.I)
if not m: sys.exit('SIZE must look like 1G, 500M or 2048 (MB): ' + sys.argv[1])
print(float(m[1]) * {'': 1, 'K': 1/1024, 'M': 1, 'G': 1024, 'T': 1024**2}[m[2].upper()])" "$SIZE")
  SCALE=$(python3 -c "print(max(1, round($MB / 15)))")
fi
SCALE=${SCALE:-5}
REPS=${REPS:-3}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-safe-migrate-bench-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
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

step_s() { # the duration of step $2 in safe-migrate's --json $1, in seconds
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(next((s['duration_ms'] for s in j['steps'] if s['step'] == sys.argv[2]), 0)/1000)" "$1" "$2"
}

declare -a T_MIGRATE T_SAFE T_BACKUP T_DRY T_CLONE T_CLONE_FC T_ARCHIVE T_ABACKUP T_AVERIFY T_ADRY
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
  T_BACKUP+=("$(step_s "$out" backup)")
  T_DRY+=("$(step_s "$out" dry-run)")

  if [[ "${ARCHIVE:-0}" == 1 ]]; then
    fresh target
    rm -rf "$WORK/store"
    sync
    t0=$(now)
    out=$("$BIN" safe-migrate target --database-url "$BASE" --dir "$WORK/m" --json -q \
      --backup archive --backup-store "$WORK/store")
    t1=$(now)
    T_ARCHIVE+=("$(elapsed "$t0" "$t1")")
    T_ABACKUP+=("$(step_s "$out" backup)")
    T_AVERIFY+=("$(step_s "$out" verify)")
    T_ADRY+=("$(step_s "$out" dry-run)")
  fi

  # The raw template clone the backup step is measured against (same server, same database).
  fresh target
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rawclone"
  sync
  t0=$(now)
  psql -X -q -d postgres -c "CREATE DATABASE rawclone TEMPLATE target"
  t1=$(now)
  T_CLONE+=("$(elapsed "$t0" "$t1")")
  # The same with FILE_COPY (what previewdb's auto strategy picks for a large database).
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rawclone"
  sync
  t0=$(now)
  psql -X -q -d postgres -c "CREATE DATABASE rawclone TEMPLATE target STRATEGY FILE_COPY"
  t1=$(now)
  T_CLONE_FC+=("$(elapsed "$t0" "$t1")")
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS rawclone"
done

M=$(median "${T_MIGRATE[@]}")
S=$(median "${T_SAFE[@]}")
B=$(median "${T_BACKUP[@]}")
D=$(median "${T_DRY[@]}")
C=$(median "${T_CLONE[@]}")
CF=$(median "${T_CLONE_FC[@]}")
echo "server: $(psql -X -At -d postgres -c 'SHOW server_version'); machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "database: pgbench scale $SCALE ($DBSIZE), $REPS runs, medians"
echo "migrate:            ${M} s"
echo "safe-migrate:       ${S} s  ($(ratio "$S" "$M")x migrate)"
echo "  backup step:      ${B} s  ($(ratio "$B" "$C")x a raw CREATE DATABASE ... TEMPLATE: ${C} s; target <= 1.2x)"
echo "                          (a raw ... TEMPLATE ... STRATEGY FILE_COPY: ${CF} s; $(ratio "$B" "$CF")x that)"
echo "  dry-run step:     ${D} s"
if [[ "${ARCHIVE:-0}" == 1 ]]; then
  A=$(median "${T_ARCHIVE[@]}")
  echo "safe-migrate --backup archive: ${A} s  ($(ratio "$A" "$M")x migrate)"
  echo "  backup (pg_dump into file://): $(median "${T_ABACKUP[@]}") s; verify (restore test): $(median "${T_AVERIFY[@]}") s; dry-run: $(median "${T_ADRY[@]}") s"
fi
