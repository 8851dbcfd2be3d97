#!/usr/bin/env bash
# Warm pool speed (issue 15): `previewdb spawn` taking a member of the warm pool (a rename) next
# to a raw `CREATE DATABASE ... TEMPLATE snap STRATEGY FILE_COPY` of the same snapshot (the
# baseline, measured in the same run), on one generated database (pgbench -i, scale 70: about
# 1 GB). Prints medians and the ratio. Not a test.
#
#   bench/pool_bench.sh [PREVIEWDB_BIN]
#
# Environment: SCALE (pgbench scale, default 70), REPS (default 5, the median is reported), WORK
# (scratch directory; default a temporary one under /var/tmp, removed at exit). With PGHOST (and
# PGPORT, PGUSER) set, that server is used instead of previewdb's embedded one, and a `dev` that
# already holds pgbench's tables is kept (set it up once, time it many times).
#
# Each round, untimed: `previewdb spawn fill_N --pool 1` refills the pool (one member), then a
# CHECKPOINT. Timed: the whole `previewdb spawn pooled_N --json` process (start, connect, locks,
# catalog, rename, registry; it must report "pooled": true) and the whole `psql -c "CREATE DATABASE
# raw_N TEMPLATE snap STRATEGY FILE_COPY"` process, with a CHECKPOINT before each; and, as the
# floor any previewdb command pays, the whole `previewdb --version` process (start-up only: no
# connection), so the pooled spawn's own work is the difference.
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SCALE=${SCALE:-70}
REPS=${REPS:-5}
EXTERNAL=${PGHOST:+1}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-pool-bench-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
  trap '[[ -n "$EXTERNAL" ]] || "$BIN" local stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fi
unset DATABASE_URL DIRECT_URL PGDATABASE PREVIEWDB_POOL_SIZE || true
cd "$WORK"  # outside any git repository
export PREVIEWDB_USER=bench PGOPTIONS="-c client_min_messages=warning"

if [[ -z "$EXTERNAL" ]]; then
  # A server of its own: previewdb's embedded PostgreSQL under $WORK/home (unix socket, trust).
  export PREVIEWDB_HOME="$WORK/home"
  "$BIN" local start -q >/dev/null
  BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
  SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
  PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
  export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb
fi

now() { date +%s.%N; }
elapsed_ms() { python3 -c "print(f'{($2 - $1) * 1000:.0f}')"; }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
drop() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)"; }

if ! psql -X -At -d dev -c "SELECT 1 FROM pgbench_accounts LIMIT 1" >/dev/null 2>&1; then
  echo "setup: pgbench -i -s $SCALE into dev" >&2
  psql -X -q -d postgres -c "CREATE DATABASE dev" 2>/dev/null || true
  pgbench -q -i -s "$SCALE" dev >/dev/null 2>&1
fi
DBSIZE=$(psql -X -At -d dev -c "SELECT pg_size_pretty(pg_database_size('dev'))")
SNAP=$("$BIN" snapshot -q)
echo "snapshot $SNAP of dev ($DBSIZE)" >&2

declare -a T_POOL T_RAW T_START
for ((i = 1; i <= REPS; i++)); do
  "$BIN" spawn "fill_$i" --pool 1 -q >/dev/null
  drop "dev_bench_fill_$i"
  psql -X -q -d postgres -c "CHECKPOINT"
  t0=$(now)
  out=$("$BIN" spawn "pooled_$i" --json -q)
  t1=$(now)
  grep -q '"pooled": true' <<<"$out" || { echo "round $i: the spawn did not take from the pool" >&2; exit 1; }
  T_POOL+=("$(elapsed_ms "$t0" "$t1")")
  t0=$(now)
  "$BIN" --version >/dev/null
  t1=$(now)
  T_START+=("$(elapsed_ms "$t0" "$t1")")
  drop "dev_bench_pooled_$i"

  psql -X -q -d postgres -c "CHECKPOINT"
  t0=$(now)
  psql -X -q -d postgres -c "CREATE DATABASE raw_$i TEMPLATE \"$SNAP\" STRATEGY FILE_COPY"
  t1=$(now)
  T_RAW+=("$(elapsed_ms "$t0" "$t1")")
  drop "raw_$i"
done
tp=$(median "${T_POOL[@]}")
tr_=$(median "${T_RAW[@]}")
ts=$(median "${T_START[@]}")

echo "snapshot: pgbench scale $(psql -X -At -d dev -c 'SELECT count(*) / 100000 FROM pgbench_accounts') ($DBSIZE), $REPS rounds, medians; $(psql -X -At -d postgres -c 'SHOW server_version')"
echo "pooled spawn (ms): ${T_POOL[*]}"
echo "raw FILE_COPY (ms): ${T_RAW[*]}"
echo "previewdb --version (ms): ${T_START[*]}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
printf '%-58s %9s\n' "" "time (ms)"
printf '%-58s %9s\n' "CREATE DATABASE ... STRATEGY FILE_COPY (psql, baseline)" "$tr_"
printf '%-58s %9s\n' "previewdb spawn from the warm pool (whole process)" "$tp"
printf '%-58s %9s\n' "previewdb --version (process start-up only)" "$ts"
python3 - "$tp" "$tr_" "$ts" <<'PY'
import sys
tp, tr, ts = map(float, sys.argv[1:])
print(f"ratio: pooled spawn {tp/tr:.3f}x raw FILE_COPY ({tr/tp:.0f}x faster); "
      f"target <= 100 ms: {'met' if tp <= 100 else 'NOT met'}; "
      f"beyond start-up: {tp - ts:.0f} ms")
PY
