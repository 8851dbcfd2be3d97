#!/usr/bin/env bash
# Installs what previewdb needs to build, test and run, on Debian 12. Idempotent: it installs only
# the packages that are missing, so a second run costs a dpkg query and nothing else.
# Used by the README, .ci/run and the Dockerfile (one list, one place).
#
#   scripts/install-deps.sh            build + test + runtime packages (default)
#   scripts/install-deps.sh --runtime  only what the installed binary needs at run time (the
#                                      Dockerfile's runtime stage): no compiler, no local server
#   scripts/install-deps.sh --peers    also the real peers tests and benchmarks compare against
#                                      (dbmate, drizzle-orm, squawk-cli, s3rver from npm); --bench is the
#                                      same
set -euo pipefail

mode=${1:-build}

# The shared libraries the binary links (ldd build/previewdb) and the programs it runs. Not the
# embedded local server (package postgresql): CI and containers talk to DATABASE_URL; install it
# (or use the default mode) for 'previewdb local' on a workstation.
runtime_pkgs=(
  libpq5 libgit2-1.5 libcurl4 libssl3 libpg-query1504.0 zlib1g
  libzstd1  # backup archives
  libcpp-httplib0.11  # webhook serve's HTTP server
  postgresql-client  # pg_dump / pg_restore for online snapshots and file:// archives
  ca-certificates git
)
build_pkgs=(
  build-essential cmake pkg-config git
  libpq-dev libgit2-dev libcurl4-openssl-dev libssl-dev zlib1g-dev nlohmann-json3-dev libcxxopts-dev
  libzstd-dev  # backup archives are zstd-compressed in-process
  libcpp-httplib-dev  # webhook serve's HTTP server (src/net/http_server)
  libpg-query-dev libgtest-dev libgmock-dev libbenchmark-dev
  postgresql postgresql-client
  python3 python3-yaml  # the workflow/action.yml test parses YAML
  zstd  # bench/restore_bench.sh decompresses a backup's archive for its pg_restore baseline
  time  # bench/s3_bench.sh reports peak RSS with /usr/bin/time -v
  curl ca-certificates
  # The portable tarball (scripts/build-portable.sh): libcurl is regenerated from its Debian
  # source (autoreconf), and its test runs the binary in a debootstrap'd minimal root.
  autoconf automake libtool dpkg-dev debootstrap file libhttp-parser-dev
)

case "$mode" in
  --runtime) pkgs=("${runtime_pkgs[@]}") ;;
  build | --build) pkgs=("${build_pkgs[@]}") ;;
  --peers | --bench) pkgs=("${build_pkgs[@]}") ;;
  *) echo "usage: $0 [--runtime|--build|--peers]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = "--peers" ] || [ "$mode" = "--bench" ]; then
  # npm may come with a nodejs from elsewhere (it then is no Debian package of its own): ask for
  # the command, not the package, so as not to fight that install.
  if ! command -v npm >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "install-deps: installing nodejs npm" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  # The npm package `dbmate` ships dbmate's own binary.
  if ! command -v dbmate >/dev/null 2>&1; then
    npm install -g --silent dbmate >/dev/null
  fi
  # drizzle-orm's own migrator (with node-postgres), which the interop tests run
  # (tests/peers/drizzle_migrate.cjs); in a folder of its own, outside the repository.
  peers=${PREVIEWDB_PEERS_DIR:-/opt/previewdb-peers}
  if [ ! -d "$peers/node_modules/drizzle-orm" ] || [ ! -d "$peers/node_modules/pg" ]; then
    mkdir -p "$peers"
    npm install --prefix "$peers" --silent --no-audit --no-fund drizzle-orm@0.45 pg@8 >/dev/null
  fi
  # verdaccio, the local npm registry the packaging test publishes previewdb's npm packages to
  # (tests/packaging/npm_test.cpp). 6.8 with node-fetch 2.7 (later 6.x want Node 22), hence a
  # folder of its own with that override.
  if [ ! -x "$peers/verdaccio/node_modules/.bin/verdaccio" ]; then
    mkdir -p "$peers/verdaccio"
    cat > "$peers/verdaccio/package.json" <<'JSON'
{
  "name": "previewdb-test-registry",
  "private": true,
  "dependencies": { "verdaccio": "6.8.0" },
  "overrides": { "node-fetch": "2.7.0" }
}
JSON
    npm install --prefix "$peers/verdaccio" --silent --no-audit --no-fund >/dev/null
  fi
  # s3rver: the S3-compatible server the s3:// store tests run (behind tests/peers/s3_server.cjs,
  # which checks Signature V4 and adds the multipart listing/abort s3rver lacks).
  if [ ! -d "$peers/node_modules/s3rver" ]; then
    npm install --prefix "$peers" --silent --no-audit --no-fund s3rver@3 >/dev/null
  fi
  # squawk (npm squawk-cli ships its binary), the linter bench/lint_bench.sh compares against.
  if [ ! -x "$peers/node_modules/.bin/squawk" ]; then
    npm install --prefix "$peers" --silent --no-audit --no-fund squawk-cli@2 >/dev/null
  fi
fi
echo "install-deps: ok ($mode)" >&2
