#!/usr/bin/env bash
# Backup speed and size: `previewdb backup` (pg_dump -Fc -Z0 streamed through in-process zstd,
# then its read-back verification) next to `pg_dump -Fc -f FILE` (pg_dump's own gzip), on one
# generated database (pgbench -i), in one run; prints times, sizes and ratios. Not a test.
# Target (issue 9): at most 0.6x pg_dump -Fc's time at no more than 1.1x its size.
#
#   bench/backup_bench.sh [PREVIEWDB_BIN]
#
# Environment: SCALE (pgbench scale, default 20: about 300 MB), REPS (default 3, the median is
# reported), LEVEL (zstd level, default the configured 3), WORK (scratch directory; default a
# temporary one, removed at exit).
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SCALE=${SCALE:-20}
REPS=${REPS:-3}
LEVEL=${LEVEL:-3}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-backup-bench-XXXXXX)
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

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# The same pg_dump for both: the one previewdb picks for this server (PATH's when new enough).
PG_DUMP=$(command -v pg_dump)
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
echo "setup: pgbench -i -s $SCALE" >&2
pgbench -q -i -s "$SCALE" bench >/dev/null 2>&1
DBSIZE=$(psql -X -At -d bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")

declare -a T_DUMP T_BACKUP T_STREAM
for ((i = 1; i <= REPS; i++)); do
  rm -rf "$WORK/dump.fc" "$WORK/backups"
  sync
  t0=$(now)
  "$PG_DUMP" -Fc -f "$WORK/dump.fc" bench
  t1=$(now)
  T_DUMP+=("$(elapsed "$t0" "$t1")")
  sync
  t0=$(now)
  "$BIN" backup bench --store "$WORK/backups" --level "$LEVEL" --database-url "$BASE" -q >/dev/null
  t1=$(now)
  T_BACKUP+=("$(elapsed "$t0" "$t1")")
  # The dump + compression part alone (the manifest's duration), without the verification.
  T_STREAM+=("$(python3 -c "import json,glob; print(json.load(open(glob.glob('$WORK/backups/*.json')[0]))['duration_ms']/1000)")")
done
S_DUMP=$(stat -c %s "$WORK/dump.fc")
S_BACKUP=$(stat -c %s "$WORK"/backups/*.dump.zst)
td=$(median "${T_DUMP[@]}")
tb=$(median "${T_BACKUP[@]}")
ts=$(median "${T_STREAM[@]}")

echo "database: pgbench scale $SCALE ($DBSIZE), $REPS runs, medians; $("$PG_DUMP" --version)"
printf '%-44s %9s %12s\n' "" "time (s)" "size (MB)"
printf '%-44s %9s %12.1f\n' "pg_dump -Fc -f FILE" "$td" "$(python3 -c "print($S_DUMP/1e6)")"
printf '%-44s %9s %12.1f\n' "previewdb backup (dump+zstd $LEVEL+verify)" "$tb" "$(python3 -c "print($S_BACKUP/1e6)")"
printf '%-44s %9s\n' "  of which dump + compress (manifest)" "$ts"
python3 - "$td" "$tb" "$ts" "$S_DUMP" "$S_BACKUP" <<'PY'
import sys
td, tb, ts, sd, sb = map(float, sys.argv[1:])
print(f"ratios: whole backup {tb/td:.2f}x time, dump+compress {ts/td:.2f}x time, {sb/sd:.2f}x size "
      f"(target <= 0.6x time, <= 1.1x size)")
PY
