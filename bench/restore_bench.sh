#!/usr/bin/env bash
# Restore speed: `previewdb restore` (a backup's .dump.zst decompressed in-process and streamed to
# pg_restore into a new database, then swapped in for the original) next to `pg_restore` of the
# same archive into an empty database (the baseline, measured in the same run), on one generated
# database (pgbench -i). Prints times and ratios. Not a test.
#
#   bench/restore_bench.sh [PREVIEWDB_BIN]
#
# Environment: SCALE (pgbench scale, default 20: about 300 MB), REPS (default 3, the median is
# reported), WORK (scratch directory; default a temporary one, removed at exit).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SCALE=${SCALE:-20}
REPS=${REPS:-3}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-restore-bench-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
  trap '"$BIN" local stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fi
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGDATABASE PGUSER BACKUP_DIR MAX_BACKUPS || true

# A server of its own: previewdb's embedded PostgreSQL under $WORK/home (unix socket, trust).
export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb
export PGOPTIONS="-c client_min_messages=warning"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
echo "setup: pgbench -i -s $SCALE, one backup" >&2
pgbench -q -i -s "$SCALE" bench >/dev/null 2>&1
DBSIZE=$(psql -X -At -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")
NAME=$("$BIN" backup bench --store "$WORK/backups" --database-url "$BASE" -q)
# The same archive, uncompressed, for the baseline (pg_restore of a plain -Fc -Z0 file).
zstd -q -dc "$WORK/backups/$NAME.dump.zst" >"$WORK/bench.dump"
PG_RESTORE=$(command -v pg_restore)

declare -a T_BASE T_CREATE T_RESTORE
for ((i = 1; i <= REPS; i++)); do
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS bench_base"
  sync
  t0=$(now)
  psql -X -q -d postgres -c "CREATE DATABASE bench_base TEMPLATE template0"
  t1=$(now)
  "$PG_RESTORE" --exit-on-error -d bench_base "$WORK/bench.dump"
  t2=$(now)
  T_BASE+=("$(elapsed "$t1" "$t2")")
  T_CREATE+=("$(elapsed "$t0" "$t2")")
  sync
  t0=$(now)
  "$BIN" restore "$NAME" --store "$WORK/backups" --into bench --database-url "$BASE" -q >/dev/null
  t1=$(now)
  T_RESTORE+=("$(elapsed "$t0" "$t1")")
  # The kept original of each round, so the next round swaps again.
  for kept in $(psql -X -At -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'bench_before_restore_%'"); do
    psql -X -q -d postgres -c "DROP DATABASE \"$kept\""
  done
done
tb=$(median "${T_BASE[@]}")
tc=$(median "${T_CREATE[@]}")
tr_=$(median "${T_RESTORE[@]}")

echo "database: pgbench scale $SCALE ($DBSIZE), $REPS runs, medians; $("$PG_RESTORE" --version)"
printf '%-52s %9s\n' "" "time (s)"
printf '%-52s %9s\n' "pg_restore -d EMPTY FILE (baseline, same archive)" "$tb"
printf '%-52s %9s\n' "CREATE DATABASE + pg_restore" "$tc"
printf '%-52s %9s\n' "previewdb restore (zstd stream + pg_restore + swap)" "$tr_"
python3 - "$tb" "$tc" "$tr_" <<'PY'
import sys
tb, tc, tr = map(float, sys.argv[1:])
print(f"ratios: previewdb restore {tr/tb:.2f}x pg_restore's time, "
      f"{tr/tc:.2f}x CREATE DATABASE + pg_restore")
PY
