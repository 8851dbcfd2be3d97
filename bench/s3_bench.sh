#!/usr/bin/env bash
# Snapshots in S3 (issue 12): `previewdb snapshot --to s3://...` (a template copy, then pg_dump -Fc
# streamed as a multipart upload) and `previewdb spawn --snapshot s3://...` (ranged GETs streamed
# into pg_restore) next to `pg_dump -Fc -f FILE` and `pg_restore -d DB FILE` on a local disk, on
# one generated database, interleaved, in one run; prints medians, ratios and previewdb's peak
# RSS (memory must stay bounded by the part size, whatever the database's size). Not a test.
#
#   bench/s3_bench.sh [PREVIEWDB_BIN]
#
# The S3 server is the one the integration tests use: s3rver (npm) behind tests/peers/s3_server.cjs,
# which checks every request's Signature V4 (scripts/install-deps.sh --peers installs both).
#
# Environment: SIZE_MB (the database's size, default 1000), REPS (default 3; medians), PART_MB
# (the upload's first part size, default the configured 8), WORK (scratch directory; default a
# temporary one, removed at exit), PEERS (node_modules holding s3rver, default
# /opt/previewdb-peers/node_modules).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
SIZE_MB=${SIZE_MB:-1000}
REPS=${REPS:-3}
PART_MB=${PART_MB:-8}
PEERS=${PEERS:-/opt/previewdb-peers/node_modules}
TIME=/usr/bin/time
[[ -x $TIME ]] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
[[ -d $PEERS/s3rver ]] || { echo "needs s3rver in $PEERS (scripts/install-deps.sh --peers)" >&2; exit 2; }

S3_PID=
cleanup() {
  [[ -n $S3_PID ]] && kill "$S3_PID" 2>/dev/null || true
  "$BIN" local stop >/dev/null 2>&1 || true
  [[ -n ${OWN_WORK:-} ]] && rm -rf "$WORK"
  true
}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /var/tmp/previewdb-s3-bench-XXXXXX)
  # Reachable by the server's user, so its files stay in $WORK (else /var/tmp, left behind).
  chmod 755 "$WORK"
  OWN_WORK=1
fi
trap cleanup EXIT
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGDATABASE PGUSER PREVIEWDB_ENCRYPT || true

# A server of its own: previewdb's embedded PostgreSQL under $WORK/home (unix socket, trust).
export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
export PGHOST=$SOCKET PGPORT=$PORT PGUSER=previewdb

# The S3 server: s3rver behind the SigV4-checking front, on a free port.
mkdir -p "$WORK/s3"
export AWS_ACCESS_KEY_ID=AKIDPREVIEWDBBENCH AWS_SECRET_ACCESS_KEY=bench-secret-0123456789abcdef
export AWS_REGION=us-east-1 PREVIEWDB_MANIFEST_KEY=bench-manifest-key-0123456789
export PREVIEWDB_S3_PART_SIZE_MB=$PART_MB PREVIEWDB_USER=bench
NODE_PATH=$PEERS node "$HERE/../tests/peers/s3_server.cjs" --dir "$WORK/s3" --bucket bench \
  --access-key "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" >"$WORK/s3.out" 2>&1 &
S3_PID=$!
for _ in $(seq 100); do grep -q '^listening' "$WORK/s3.out" 2>/dev/null && break; sleep 0.1; done
S3_PORT=$(awk '/^listening/ {print $2}' "$WORK/s3.out")
[[ -n $S3_PORT ]] || { cat "$WORK/s3.out" >&2; exit 1; }
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT
STORE=s3://bench/snaps

now() { date +%s.%N; }
median() { tr ' ' '\n' <<<"$*" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Runs a command under /usr/bin/time -v; sets SECS (wall) and RSS_MB (peak resident set of the
# process and the children it waited for: pg_dump / pg_restore too).
measure() {
  local t0 t1
  t0=$(now)
  "$TIME" -v -o "$WORK/time.txt" "$@" >"$WORK/out.txt" 2>"$WORK/err.txt" ||
    { cat "$WORK/err.txt" >&2; exit 1; }
  t1=$(now)
  SECS=$(python3 -c "print(f'{$t1 - $t0:.2f}')")
  RSS_MB=$(awk -F: '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$WORK/time.txt")
}

# The database: one table of int + 100 characters of hex per row (about half compressible), as
# many rows as SIZE_MB needs (about 150 bytes per row on disk with its index).
ROWS=$((SIZE_MB * 1000000 / 150))
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS dev" -c "CREATE DATABASE dev"
echo "setup: $ROWS rows" >&2
psql -X -q -d dev -c "CREATE TABLE items AS SELECT g AS id, md5(g::text) || md5((g * 31)::text) || \
  left(md5((g * 7)::text), 36) AS v FROM generate_series(1, $ROWS) g" \
  -c "ALTER TABLE items ADD PRIMARY KEY (id)" -c "VACUUM ANALYZE items"
DBSIZE=$(psql -X -At -d dev -c "SELECT pg_size_pretty(pg_database_size('dev'))")
PG_DUMP=$(command -v pg_dump)
PG_RESTORE=$(command -v pg_restore)

declare -a T_DUMP T_REST T_SNAP T_LOCAL T_SPAWN R_SNAP R_SPAWN
for ((i = 1; i <= REPS; i++)); do
  echo "round $i of $REPS" >&2
  rm -f "$WORK/dump.fc"
  sync
  measure "$PG_DUMP" -Fc -f "$WORK/dump.fc" dev
  T_DUMP+=("$SECS")
  sync
  measure "$BIN" snapshot dev --to "$STORE" --database-url "$BASE"
  T_SNAP+=("$SECS")
  R_SNAP+=("$RSS_MB")
  # The same snapshot without the archive: what the S3 part adds is the difference.
  measure "$BIN" snapshot dev --database-url "$BASE"
  T_LOCAL+=("$SECS")
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS restored" -c "CREATE DATABASE restored"
  sync
  measure "$PG_RESTORE" -d restored "$WORK/dump.fc"
  T_REST+=("$SECS")
  sync
  measure "$BIN" spawn froms3 --snapshot "$STORE" --database-url "$BASE"
  T_SPAWN+=("$SECS")
  R_SPAWN+=("$RSS_MB")
  [[ $(psql -X -At -d dev_bench_froms3 -c "SELECT count(*) FROM items") == "$ROWS" ]] ||
    { echo "spawned copy is incomplete" >&2; exit 1; }
  "$BIN" cleanup froms3 --yes --database-url "$BASE" >/dev/null 2>&1
  psql -X -q -d postgres -c "DROP DATABASE restored"
  "$BIN" snapshot prune --keep 0 --yes --database-url "$BASE" >/dev/null 2>&1
  "$BIN" snapshot prune --keep 0 --yes --store "$STORE" >/dev/null 2>&1
done
S_DUMP=$(stat -c %s "$WORK/dump.fc")
PARTS=$(grep -c '"partNumber' "$WORK/s3/requests.log" || true)
td=$(median "${T_DUMP[@]}")
ts=$(median "${T_SNAP[@]}")
tl=$(median "${T_LOCAL[@]}")
tr=$(median "${T_REST[@]}")
tp=$(median "${T_SPAWN[@]}")

echo "database: $DBSIZE ($ROWS rows; pg_dump -Fc archive $(python3 -c "print(f'{$S_DUMP/1e6:.0f}')") MB)," \
  "$REPS interleaved runs, medians; $("$PG_DUMP" --version); S3: s3rver behind the SigV4 front" \
  "on this machine, first part $PART_MB MB ($PARTS UploadPart requests in all)"
printf '%-52s %9s %14s\n' "" "time (s)" "peak RSS (MB)"
printf '%-52s %9s\n' "pg_dump -Fc -f FILE" "$td"
printf '%-52s %9s %14s\n' "previewdb snapshot --to s3:// (copy + dump + upload)" "$ts" "$(median "${R_SNAP[@]}")"
printf '%-52s %9s\n' "  the same snapshot without --to (copy only)" "$tl"
printf '%-52s %9s\n' "pg_restore -d DB FILE" "$tr"
printf '%-52s %9s %14s\n' "previewdb spawn --snapshot s3:// (download + restore)" "$tp" "$(median "${R_SPAWN[@]}")"
# Every run, to show the noise behind the medians.
echo "runs (s): pg_dump ${T_DUMP[*]} | snapshot --to s3 ${T_SNAP[*]} | snapshot ${T_LOCAL[*]} |" \
  "pg_restore ${T_REST[*]} | spawn from s3 ${T_SPAWN[*]}"
python3 - "$td" "$ts" "$tl" "$tr" "$tp" <<'PY'
import sys
td, ts, tl, tr, tp = map(float, sys.argv[1:])
print(f"ratios: snapshot to S3 {ts/td:.2f}x pg_dump to a file (its dump + upload alone "
      f"{(ts - tl)/td:.2f}x); spawn from S3 {tp/tr:.2f}x pg_restore from a file")
PY
