#!/usr/bin/env bash
# Installs what is missing (with the real peers the tests compare against), builds with warnings as errors, and runs every test (unit tests and
# the integration tests, which start their own PostgreSQL servers). Ends with ctest's summary and
# the list of skipped tests; fails when a test skipped that should have run on this machine.
#   scripts/test.sh [ctest args...]      e.g. scripts/test.sh -R lifecycle
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --peers  # dbmate (npm) is a real peer in the interop tests
build=${PREVIEWDB_BUILD_DIR:-build}
# The portable tarball is built and tested too (tests/packaging): its static libpq, libcurl and
# libgit2 are built once from Debian sources into $build/portable-deps; the tarball links the
# objects of this build (one more link, no second compile).
PREVIEWDB_PORTABLE_BUILD_DIR="$build" bash scripts/build-portable.sh --deps-only
deps_prefix="$(cd "$build" && pwd)/portable-deps/prefix"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREVIEWDB_WERROR=ON \
  -DPREVIEWDB_PORTABLE=ON -DPREVIEWDB_DEPS_PREFIX="$deps_prefix" >/dev/null
cmake --build "$build" -j "$(nproc)"
# The peers were just installed: a test that skips for a missing peer now fails (tests/run_gtest.py
# also fails a [shared] skip when ../shared is present and a [root] skip when running as root).
export PREVIEWDB_REQUIRE_PEERS=1
rm -rf "$build/test-reports"
status=0
ctest --test-dir "$build" -j 2 --output-on-failure --timeout 1500 "$@" || status=$?
# Every skip, with its reason, from the gtest reports (ctest shows a binary with skips as Skipped).
shared=$(sed -n 's/^PREVIEWDB_SHARED_DIR:PATH=//p' "$build/CMakeCache.txt")
/usr/bin/python3 tests/run_gtest.py --summary "$build/test-reports" --shared-dir "$shared" || status=1
exit "$status"
