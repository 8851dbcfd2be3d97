#!/usr/bin/env bash
# Installs what is missing (with the real peers the tests compare against), builds with warnings as errors, and runs every test (unit tests and
# the integration tests, which start their own PostgreSQL servers). Ends with ctest's summary.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -R lifecycle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --peers  # dbmate (npm) is a real peer in the interop tests
build=${PREVIEWDB_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREVIEWDB_WERROR=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" -j 2 --output-on-failure --timeout 1500 "$@"
