#!/usr/bin/env bash
# `previewdb lint` against squawk (npm package squawk-cli, which ships squawk's binary) on the same
# real migration histories (../shared/corpora) and on a generated 10,000-line migration, in one
# run: median wall time of each whole process and the ratio, then what each tool reports by rule.
# Not a test.
#
#   bench/lint_bench.sh [PREVIEWDB_BIN]
#
# Environment: SHARED (default: ../shared beside the repository), REPS (default 5), SQUAWK (the
# squawk binary; default: `squawk` on PATH, else installed with npm into $PEERS, default
# /opt/previewdb-peers, as scripts/install-deps.sh --bench does).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(realpath "${1:-${PREVIEWDB_BIN:-$ROOT/build/previewdb}}")
SHARED=${SHARED:-$ROOT/../shared}
REPS=${REPS:-5}
PEERS=${PEERS:-${PREVIEWDB_PEERS_DIR:-/opt/previewdb-peers}}
unset GITHUB_ACTIONS DATABASE_URL || true

if [[ -z "${SQUAWK:-}" ]]; then
  if command -v squawk >/dev/null; then
    SQUAWK=$(command -v squawk)
  else
    if [[ ! -x "$PEERS/node_modules/.bin/squawk" ]]; then
      echo "setup: npm install --prefix $PEERS squawk-cli" >&2
      npm install --prefix "$PEERS" --silent --no-audit --no-fund squawk-cli >/dev/null
    fi
    SQUAWK="$PEERS/node_modules/.bin/squawk"
  fi
fi
echo "previewdb: $BIN"
echo "squawk:    $SQUAWK ($("$SQUAWK" --version))"

WORK=$(mktemp -d /tmp/previewdb-lint-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# The corpora: previewdb reads each folder with its reader (up parts only); squawk gets the same
# migration files (golang-migrate: the .up.sql files; dbmate: whole files, down sections too,
# since squawk has no notion of them).
declare -A DIRS=(
  [prisma]="$SHARED/corpora/prisma-documenso/packages/prisma/migrations"
  [drizzle]="$SHARED/corpora/drizzle-dokploy/apps/dokploy/drizzle"
  [golang-migrate]="$SHARED/corpora/golang-migrate-ente/server/migrations"
  [dbmate]="$SHARED/corpora/dbmate-ftl/backend/controller/sql/schema"
)
files_of() {
  case $1 in
    prisma) find "$2" -name migration.sql ;;
    golang-migrate) find "$2" -name '*.up.sql' ;;
    *) find "$2" -maxdepth 1 -name '*.sql' ;;
  esac | sort
}

# A generated 10,000-line migration: the statements migrations are made of, on existing tables.
python3 - "$WORK/generated.sql" <<'PY'
import sys
out, lines, i = [], 0, 0
while lines < 10000:
    i += 1
    block = [
        f"CREATE TABLE t{i} (",
        f"  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,",
        f"  name varchar(200) NOT NULL,",
        f"  created_at timestamp DEFAULT now(),",
        f"  owner_id integer REFERENCES users (id)",
        f");",
        f"CREATE INDEX t{i}_name ON t{i} (name);",
        f"ALTER TABLE users ADD COLUMN c{i} text;",
        f"CREATE INDEX users_c{i} ON users (c{i});",
        f"ALTER TABLE orders ALTER COLUMN total{i} TYPE numeric(12, 2);",
        f"UPDATE orders SET total{i} = 0 WHERE total{i} IS NULL;",
        f"ALTER TABLE orders ADD CONSTRAINT orders_u{i} FOREIGN KEY (u{i}) REFERENCES users (id) NOT VALID;",
        f"ALTER TABLE orders VALIDATE CONSTRAINT orders_u{i};",
        "",
    ]
    out += block
    lines += len(block)
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# Median wall seconds of REPS runs of "$@" (exit codes ignored: findings are not failures here).
timeit() {
  for _ in $(seq "$REPS"); do
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s%N)
    python3 -c "print(($e - $s) / 1e9)"
  done | median
}

printf '\n%-16s %7s %7s %12s %12s %8s\n' input files lines previewdb squawk "sq/pdb"
total_lines=0
for name in prisma drizzle golang-migrate dbmate generated; do
  if [[ $name == generated ]]; then
    files=("$WORK/generated.sql")
    pdb=("$BIN" lint --fail-on never "$WORK/generated.sql")
  else
    dir=${DIRS[$name]}
    if [[ ! -d $dir ]]; then echo "$name: $dir missing (../shared), skipped"; continue; fi
    mapfile -t files < <(files_of "$name" "$dir")
    pdb=("$BIN" lint --fail-on never --dir "$dir")
  fi
  lines=$(cat "${files[@]}" | wc -l)
  [[ $name == generated ]] || total_lines=$((total_lines + lines))
  tp=$(timeit "${pdb[@]}")
  ts=$(timeit "$SQUAWK" "${files[@]}")
  printf '%-16s %7d %7d %11.3fs %11.3fs %7.2fx\n' "$name" "${#files[@]}" "$lines" "$tp" "$ts" \
    "$(python3 -c "print($ts / $tp)")"
  # Findings by rule, for the comparison below.
  "${pdb[@]}" --json 2>/dev/null | python3 -c '
import json, sys, collections
c = collections.Counter(f["rule"] for f in json.load(sys.stdin)["findings"])
for k, v in c.items(): print(f"{k}\t{v}")' >>"$WORK/pdb.rules"
  "$SQUAWK" --reporter json "${files[@]}" 2>/dev/null | python3 -c '
import json, sys, collections
data = sys.stdin.read().strip() or "[]"
c = collections.Counter(f["rule_name"] for f in json.loads(data))
for k, v in c.items(): print(f"{k}\t{v}")' >>"$WORK/squawk.rules" || true
done
echo "(corpora: $total_lines lines in all)"

sum_rules() { awk -F'\t' '{n[$1]+=$2} END {for (k in n) printf "  %-34s %6d\n", k, n[k]}' "$1" | sort; }
echo
echo "previewdb findings by rule (all inputs):"
sum_rules "$WORK/pdb.rules"
echo "squawk findings by rule (all inputs):"
sum_rules "$WORK/squawk.rules"
