#!/usr/bin/env bash
# Per-migration overhead: N small generated migrations applied to an empty database by
# `previewdb migrate`, by `dbmate up` (npm package dbmate, which ships its Go binary), and by one
# `psql -f` per file, all on the same server in one run; prints times and ratios. Not a test.
#
#   bench/migrate_bench.sh [PREVIEWDB_BIN]
#
# Environment: COUNTS (default "1000 10000"), WORK (scratch directory; default a temporary one,
# removed at exit), SKIP_PSQL=1 to skip the slowest baseline, SYNC_COMMIT (default "off on": one
# table per setting, in one run). With synchronous_commit = on (the server's default: durable
# commits) dbmate and psql wait for one WAL flush (fsync) per migration; previewdb waits for one
# per run (every commit but the last is asynchronous, bench/README.md). With off, nobody waits and
# what is left is the tools' own overhead. The psql baseline runs with off only (it takes minutes).
# The setup step installs dbmate with `npm install -g dbmate` when it is not on PATH.
# SERVER_FSYNC=off turns the scratch server's fsync off (ALTER SYSTEM, reloaded) for the whole run:
# PostgreSQL then skips the fsync of every new index file (CREATE TABLE with a primary key and
# CREATE INDEX each build one), which is most of a small migration's server time on a busy disk,
# so what is left is closer to the tools' own overhead. Every tool runs on the same server.
# ORDER (default "pdb dbmate") is the order the two tools run in within each row; "dbmate pdb"
# checks that a row's figures do not depend on who goes first.
set -euo pipefail

BIN=$(realpath "${1:-${PREVIEWDB_BIN:-build/previewdb}}")
COUNTS=${COUNTS:-"1000 10000"}
if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /tmp/previewdb-migrate-bench-XXXXXX)
  # The server's files may live outside $WORK (a root run puts them under /var/tmp, where the
  # server's user can reach them): removed too, or every run leaves gigabytes behind.
  OWN_WORK=1
  cleanup() {
    "$BIN" local stop >/dev/null 2>&1 || true
    if [[ -n "${SERVER_DIR:-}" && "$SERVER_DIR" != "$WORK"/* && "$(basename "$SERVER_DIR")" == previewdb-* ]]; then
      rm -rf "$SERVER_DIR"
    fi
    rm -rf "$WORK"
  }
  trap cleanup EXIT
fi
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGDATABASE PGUSER GITHUB_ACTIONS CI || true

# Setup: dbmate from npm (its package carries the binary for this platform).
if ! command -v dbmate >/dev/null; then
  echo "setup: npm install -g dbmate" >&2
  npm install -g dbmate >/dev/null
fi

# A server of its own: previewdb's embedded PostgreSQL under $WORK/home (unix socket, trust).
export PREVIEWDB_HOME="$WORK/home"
"$BIN" local start -q >/dev/null
BASE=$("$BIN" local url | sed 's#/dev?#/postgres?#')
SOCKET=$(sed -E 's#.*host=([^&]*).*#\1#' <<<"$BASE")
PORT=$(sed -E 's#.*port=([0-9]+).*#\1#' <<<"$BASE")
psql_base() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -h "$SOCKET" -p "$PORT" -U previewdb "$@"; }
if [[ -n "${OWN_WORK:-}" ]]; then
  SERVER_DIR=$(dirname "$(psql_base -d postgres -Atc 'SHOW data_directory')")
fi
SERVER_FSYNC=${SERVER_FSYNC:-on}
ORDER=${ORDER:-pdb dbmate}
psql_base -d postgres -c "ALTER SYSTEM SET fsync = $SERVER_FSYNC" -c "SELECT pg_reload_conf()" >/dev/null
echo "server fsync = $SERVER_FSYNC; order: $ORDER"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# N migrations: dbmate files (-- migrate:up / -- migrate:down), and the same up sections as plain
# files for psql.
generate() {
  local n=$1 dir=$2
  mkdir -p "$dir/dbmate" "$dir/plain"
  python3 - "$n" "$dir" <<'PY'
import sys
n, d = int(sys.argv[1]), sys.argv[2]
for i in range(1, n + 1):
    version = 20240000000000 + i
    up = f"CREATE TABLE t{i} (id bigint PRIMARY KEY, name text NOT NULL);\nCREATE INDEX t{i}_name ON t{i} (name);\n"
    with open(f"{d}/dbmate/{version}_m{i}.sql", "w") as f:
        f.write(f"-- migrate:up\n{up}\n-- migrate:down\nDROP TABLE t{i};\n")
    with open(f"{d}/plain/{version}_m{i}.sql", "w") as f:
        f.write(up)
PY
}

# WAL flushes (pg_stat_wal.wal_sync, server-wide) during one tool's run.
wal_syncs() { psql_base -d postgres -Atc "SELECT wal_sync FROM pg_stat_wal"; }

declare -A PDB
for sync in ${SYNC_COMMIT:-off on}; do
echo "synchronous_commit = $sync"
printf '%-8s %12s %12s %12s %16s %14s %16s\n' migrations previewdb dbmate "psql -f" "previewdb/dbmate" "previewdb/psql" "WAL flushes p/d"
for n in $COUNTS; do
  dir="$WORK/m$n"
  generate "$n" "$dir"
  for tool in pdb dbmate psql; do
    psql_base -d postgres -c "DROP DATABASE IF EXISTS bench_${tool}_$n" -c "CREATE DATABASE bench_${tool}_$n" \
      -c "ALTER DATABASE bench_${tool}_$n SET synchronous_commit = $sync" >/dev/null
  done
  for tool in $ORDER; do
    psql_base -d postgres -c CHECKPOINT >/dev/null
    w0=$(wal_syncs)
    t0=$(now)
    if [[ $tool == pdb ]]; then
      "$BIN" migrate -q --database-url "$BASE" --database "bench_pdb_$n" --dir "$dir/dbmate" >/dev/null
      t_pdb=$(elapsed "$t0" "$(now)")
      PDB[$sync$n]=$t_pdb
      w_pdb=$(($(wal_syncs) - w0))
    else
      dbmate --url "postgres://previewdb@/bench_dbmate_$n?socket=$SOCKET&port=$PORT&sslmode=disable" \
        --migrations-dir "$dir/dbmate" --no-dump-schema up >/dev/null
      t_dbmate=$(elapsed "$t0" "$(now)")
      w_dbmate=$(($(wal_syncs) - w0))
    fi
  done
  psql_base -d postgres -c CHECKPOINT >/dev/null

  if [[ "${SKIP_PSQL:-0}" == 1 || "$sync" != off ]]; then
    t_psql=n/a
  else
    t0=$(now)
    for f in "$dir"/plain/*.sql; do
      psql_base -d "bench_psql_$n" -v ON_ERROR_STOP=1 -f "$f" >/dev/null
    done
    t_psql="$(elapsed "$t0" "$(now)")s"
  fi
  # Same result everywhere: n tables each.
  for tool in pdb dbmate; do
    got=$(psql_base -d "bench_${tool}_$n" -Atc "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename ~ '^t[0-9]+$'")
    [[ "$got" == "$n" ]] || { echo "bench_${tool}_$n has $got tables, expected $n" >&2; exit 1; }
  done
  printf '%-8s %11ss %11ss %12s %15sx %14s %16s\n' "$n" "$t_pdb" "$t_dbmate" "$t_psql" \
    "$(python3 -c "print(f'{$t_pdb / $t_dbmate:.2f}')")" \
    "$(python3 -c "print('n/a' if '$t_psql' == 'n/a' else f'{$t_pdb / float(\"${t_psql%s}\"):.2f}x')")" \
    "$w_pdb / $w_dbmate"
  rm -rf "$dir"
done
set -- $COUNTS
if [[ $# -ge 2 ]]; then
  python3 -c "print(f'previewdb scaling: {$2} migrations take {${PDB[$sync$2]} / ${PDB[$sync$1]}:.1f}x the time of {$1} (target <= ~{$2 / $1:.0f}x)')"
fi
echo
done
echo "target: previewdb/dbmate <= 0.7 at every row"

