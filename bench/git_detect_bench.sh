#!/usr/bin/env bash
# Change detection on a large repository: `previewdb ci --dry-run` (detection and decision only,
# no database) next to `git diff --name-only origin/main...HEAD -- migrations/schema/`, both timed
# as whole processes (process start included; wall and CPU time), in one run. Target: previewdb no
# slower than git.
#
#   bench/git_detect_bench.sh [PREVIEWDB_BIN]
#
# Environment: COMMITS (default 100000), FORK (commit of main the PR branch starts from, default
# COMMITS/2), PR_COMMITS (default 40), FILES (files in the tree, default 4000), REPS (default 9),
# WORK (directory to build the repository in; default a temporary one, removed at exit; an
# existing repository there is reused), COMMIT_GRAPH=1 to also time with a commit-graph file.
set -euo pipefail

BIN=${1:-${PREVIEWDB_BIN:-build/previewdb}}
BIN=$(realpath "$BIN")
COMMITS=${COMMITS:-100000}
FORK=${FORK:-$((COMMITS / 2))}
PR_COMMITS=${PR_COMMITS:-40}
FILES=${FILES:-4000}
REPS=${REPS:-9}
COMMIT_GRAPH=${COMMIT_GRAPH:-0}

if [[ -z "${WORK:-}" ]]; then
  WORK=$(mktemp -d /tmp/previewdb-git-bench-XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
REPO="$WORK/repo"

# No user or system configuration, no previewdb or CI variables: both commands see the same repo.
export GIT_CONFIG_NOSYSTEM=1 HOME="$WORK" GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
unset DATABASE_URL GITHUB_ACTIONS GITHUB_TOKEN GITHUB_EVENT_PATH NETLIFY CI PGHOST PGDATABASE || true

# The repository: `main` with COMMITS commits, each touching a few of FILES files in nested
# folders (every 500th adds a migration under migrations/schema/), and a PR branch `feature` that
# starts at commit FORK of main and adds PR_COMMITS commits, one of them a new migration. Written
# as one git fast-import stream: seconds instead of hours of `git commit`.
generate_stream() {
  python3 - "$COMMITS" "$FORK" "$PR_COMMITS" "$FILES" <<'EOF'
import random, sys
commits, fork, pr_commits, nfiles = map(int, sys.argv[1:5])
rnd = random.Random(42)
out = sys.stdout.buffer
paths = [f"src/mod{i % 40:02d}/pkg{(i // 40) % 25:02d}/file{i:05d}.c" for i in range(nfiles)]
t0 = 1_500_000_000
def data(b):
    out.write(b"data %d\n" % len(b)); out.write(b); out.write(b"\n")
def commit(ref, mark, when, msg, parent, changes):
    out.write(b"commit %s\nmark :%d\n" % (ref.encode(), mark))
    out.write(b"committer bench <bench@example.com> %d +0000\n" % when)
    data(msg.encode())
    if parent:
        out.write(b"from :%d\n" % parent)
    for path, body in changes:
        out.write(b"M 100644 inline %s\n" % path.encode()); data(body)
migration = 0
for n in range(1, commits + 1):
    if n == 1:  # the initial tree: every file and the first migration
        changes = [(p, b"/* %s */\nint v = 0;\n" % p.encode()) for p in paths]
        changes.append(("migrations/schema/0001_init.sql", b"CREATE TABLE t (id int);\n"))
        changes.append(("README.md", b"bench\n"))
        migration = 1
    else:
        changes = [(p, b"/* %s */\nint v = %d;\n" % (p.encode(), n))
                   for p in rnd.sample(paths, rnd.randint(1, 4))]
        if n % 500 == 0:
            migration += 1
            changes.append((f"migrations/schema/{migration:04d}_m{n}.sql",
                            b"ALTER TABLE t ADD COLUMN c%d int;\n" % n))
    commit("refs/heads/main", n, t0 + n * 60, f"main {n}", n - 1 if n > 1 else None, changes)
parent = fork
for i in range(pr_commits):
    mark = commits + 1 + i
    changes = [(p, b"/* %s */\nint pr = %d;\n" % (p.encode(), i)) for p in rnd.sample(paths, 3)]
    if i == pr_commits // 2:
        changes.append(("migrations/schema/9000_pr_feature.sql",
                        b"ALTER TABLE t ADD COLUMN feature int;\n"))
    commit("refs/heads/feature", mark, t0 + (fork + i) * 60 + 30, f"pr {i}", parent, changes)
    parent = mark
EOF
}

if [[ ! -d "$REPO/.git" ]]; then
  echo "building a repository with $COMMITS commits on main, a PR branch of $PR_COMMITS commits from commit $FORK ..." >&2
  start=$(date +%s)
  git init -q -b main "$REPO"
  generate_stream | git -C "$REPO" fast-import --quiet
  # What a clone looks like: one pack, the base as a remote-tracking branch, HEAD on the PR.
  git -C "$REPO" update-ref refs/remotes/origin/main refs/heads/main
  git -C "$REPO" repack -a -d -q
  git -C "$REPO" pack-refs --all
  git -C "$REPO" checkout -q feature
  echo "built in $(($(date +%s) - start))s: $(git -C "$REPO" rev-list --count origin/main) commits on main," \
    "merge base $(git -C "$REPO" rev-list --count "$(git -C "$REPO" merge-base origin/main HEAD)..origin/main")" \
    "commits behind origin/main, $(git -C "$REPO" ls-files | wc -l) files" >&2
fi
cd "$REPO"

# Wall time and CPU time (user + system) of "$@" in microseconds ("WALL CPU"), output
# discarded. The CPU time is what the process itself did, whatever else the machine runs.
TIMEFORMAT='%3R %3U %3S'
run_us() {
  local t
  t=$({ time "$@" >/dev/null 2>&1; } 2>&1)
  awk '{printf "%d %d\n", $1 * 1000000, ($2 + $3) * 1000000}' <<<"$t"
}
# Median of column $1 of the "WALL CPU" lines, in ms.
median_ms() { awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR]=$1} END {printf "%.1f\n", a[int((NR+1)/2)] / 1000}'; }

detect() { "$BIN" ci --dry-run --provider generic --pr 1 --base-ref main "$@"; }
gitdiff() { git diff --name-only origin/main...HEAD -- migrations/schema/; }

# Both must find the same change, or the comparison means nothing.
expected=$(gitdiff)
plan=$(detect --json 2>/dev/null || true)
if [[ "$expected" != "migrations/schema/9000_pr_feature.sql" ]] ||
  ! grep -q '"reason": "migrations-changed"' <<<"$plan"; then
  echo "detection disagrees: git diff says '$expected'; previewdb says: $plan" >&2
  exit 1
fi

# The two commands alternate, after one warm-up run each (page cache), so that a change in the
# machine's load affects both alike; medians of REPS runs.
report() {
  local label=$1 ours=() theirs=() i
  detect >/dev/null 2>&1
  gitdiff >/dev/null 2>&1
  for ((i = 0; i < REPS; i++)); do
    ours+=("$(run_us detect)")
    theirs+=("$(run_us gitdiff)")
  done
  local a b ca cb
  a=$(printf '%s\n' "${ours[@]}" | median_ms 1)
  b=$(printf '%s\n' "${theirs[@]}" | median_ms 1)
  ca=$(printf '%s\n' "${ours[@]}" | median_ms 2)
  cb=$(printf '%s\n' "${theirs[@]}" | median_ms 2)
  echo "$label (medians of $REPS): wall: previewdb ci --dry-run ${a} ms, git diff ${b} ms," \
    "previewdb/git = $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}');" \
    "CPU: ${ca} ms vs ${cb} ms, previewdb/git = $(awk -v a="$ca" -v b="$cb" 'BEGIN {printf "%.2f", a / b}')"
}

echo "repository: $(git rev-list --count HEAD) commits reachable from HEAD, $(git rev-list --count origin/main) on origin/main"
report "no commit-graph (a fresh clone)"
if [[ "$COMMIT_GRAPH" == 1 ]]; then
  git commit-graph write --reachable
  report "with a commit-graph"
  rm -f .git/objects/info/commit-graph
  rm -rf .git/objects/info/commit-graphs
fi
