#!/usr/bin/env bash
# Start-up: a no-op `previewdb ci` (a pull request that changes no migration, generic provider, no
# network, no database) on a small repository, as whole processes, next to `previewdb version`,
# `git diff --name-only main...HEAD -- migrations/schema/` on the same repository and
# `/bin/true`, alternated, medians. Target: the no-op ci in at most 5 ms.
#
#   bench/startup_bench.sh [PREVIEWDB_BIN [MORE_BINS...]]   e.g. build-rel/previewdb build-rel/portable/previewdb
#
# Environment: REPS (default 41). With valgrind installed it also prints the instructions each
# no-op run executes (callgrind), which do not depend on the load of the machine.
set -euo pipefail

BINS=("$@")
[[ ${#BINS[@]} -eq 0 ]] && BINS=("${PREVIEWDB_BIN:-build/previewdb}")
REPS=${REPS:-41}
WORK=$(mktemp -d /tmp/previewdb-startup-bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# No user configuration, no CI or previewdb variables, no token: nothing asks the network.
export GIT_CONFIG_NOSYSTEM=1 HOME="$WORK" GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset DATABASE_URL DIRECT_URL GITHUB_ACTIONS GITHUB_TOKEN GITHUB_EVENT_PATH NETLIFY CI PGHOST \
  PGDATABASE PREVIEWDB_LABELS || true

repo="$WORK/repo"
git init -q -b main "$repo"
cd "$repo"
mkdir -p migrations/schema src
echo "CREATE TABLE t (id int);" >migrations/schema/0001_init.sql
echo "int main() {}" >src/main.c
git add -A && git commit -qm init
git update-ref refs/remotes/origin/main main
git checkout -qb feature
echo "int main() { return 0; }" >src/main.c
git commit -qam "a change outside the migrations"

# "WALL,CPU" of "$@" in microseconds (CPU = user + system of the process itself: what it did,
# whatever else the machine runs), output discarded.
TIMEFORMAT='%3R %3U %3S'
run_us() {
  local t
  t=$({ time "$@" >/dev/null 2>&1; } 2>&1)
  awk '{printf "%d,%d\n", $1 * 1000000, ($2 + $3) * 1000000}' <<<"$t"
}
# Median of field $1 of the "WALL,CPU" words, in ms.
median_ms() { tr ' ' '\n' | grep . | cut -d, -f"$1" | sort -n | awk '{a[NR]=$1} END {printf "%.2f\n", a[int((NR+1)/2)] / 1000}'; }

# The no-op must really be one: exit 0, no preview.
for bin in "${BINS[@]}"; do
  out=$("$bin" ci --provider generic --pr 1 --base-ref main 2>&1) || {
    echo "$bin: the no-op ci failed: $out" >&2
    exit 1
  }
  grep -q "reason=no-changes" <<<"$out" || {
    echo "$bin: not a no-op: $out" >&2
    exit 1
  }
done

declare -A T
labels=()
add() { labels+=("$1"); T["$1"]=""; }
for bin in "${BINS[@]}"; do
  add "$bin ci (no-op)"
  add "$bin version"
done
add "git diff --name-only"
add "/bin/true"
measure() {
  case "$1" in
    *" ci (no-op)") run_us "${1% ci (no-op)}" ci -q --provider generic --pr 1 --base-ref main ;;
    *" version") run_us "${1% version}" version ;;
    "git diff --name-only") run_us git diff --name-only main...HEAD -- migrations/schema/ ;;
    "/bin/true") run_us /bin/true ;;
  esac
}
for label in "${labels[@]}"; do measure "$label" >/dev/null; done # warm-up
for ((i = 0; i < REPS; i++)); do
  for label in "${labels[@]}"; do T["$label"]+="$(measure "$label") "; done
done

git_ms=$(median_ms 1 <<<"${T["git diff --name-only"]}")
printf '%-60s %9s %9s %11s %14s\n' "process (medians of $REPS)" "wall ms" "CPU ms" "/ git diff" "/ 5 ms target"
for label in "${labels[@]}"; do
  ms=$(median_ms 1 <<<"${T[$label]}")
  cpu=$(median_ms 2 <<<"${T[$label]}")
  printf '%-60s %9s %9s %10sx %13sx\n' "$label" "$ms" "$cpu" \
    "$(awk -v a="$ms" -v b="$git_ms" 'BEGIN {printf "%.2f", a / b}')" \
    "$(awk -v a="$ms" 'BEGIN {printf "%.2f", a / 5}')"
done
echo "(ratios of wall times; CPU time has a 1 ms resolution)"

# Instructions executed (valgrind --tool=callgrind, one run each): the same whatever the load, so
# they compare builds on a busy machine where the times above are mostly waiting.
if command -v valgrind >/dev/null; then
  printf '\n%-60s %14s %11s\n' "process" "instructions" "/ git diff"
  instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
      sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
  }
  git_ir=$(instructions git diff --name-only main...HEAD -- migrations/schema/)
  for bin in "${BINS[@]}"; do
    ir=$(instructions "$bin" ci -q --provider generic --pr 1 --base-ref main)
    printf '%-60s %14s %10sx\n' "$bin ci (no-op)" "$ir" "$(awk -v a="$ir" -v b="$git_ir" 'BEGIN {printf "%.2f", a / b}')"
  done
  printf '%-60s %14s %10sx\n' "git diff --name-only" "$git_ir" "1.00"
fi
