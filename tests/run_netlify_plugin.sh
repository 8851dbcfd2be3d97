#!/bin/sh
# The Netlify build plugin's tests (netlify-plugin/test/) in Node's own test runner, against the
# built binary ($1). Node is a peer (scripts/install-deps.sh --peers): without it this skips with
# the tag [peer:node] (ctest: exit 77), and fails instead under PREVIEWDB_REQUIRE_PEERS=1
# (scripts/test.sh), like the gtest skips of tests/run_gtest.py.
bin=$1
dir=$2
if ! command -v node >/dev/null 2>&1; then
  if [ "${PREVIEWDB_REQUIRE_PEERS:-}" = "1" ]; then
    echo "netlify-plugin: node is not installed but PREVIEWDB_REQUIRE_PEERS=1: run scripts/install-deps.sh --peers" >&2
    exit 1
  fi
  echo "[peer:node] netlify-plugin skipped: node is not installed (scripts/install-deps.sh --peers)"
  exit 77
fi
PREVIEWDB_BIN=$bin exec node --test "$dir/test/"
