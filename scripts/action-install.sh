#!/usr/bin/env bash
# The GitHub action's install step (action.yml), also usable on any Linux x64 CI:
#
#   scripts/action-install.sh resolve   which previewdb to install and where: writes version=,
#                                       dir= and cache-key= to $GITHUB_OUTPUT (for actions/cache)
#   scripts/action-install.sh install   installs it into that dir (unless the cache restored it)
#                                       and puts the dir on $GITHUB_PATH
#
# Which version: the `version` input (PREVIEWDB_VERSION_INPUT, e.g. 0.1.0 or v0.1.0), else the
# action's own ref when it is a release tag (ACTION_REF=v0.1.0). A release is downloaded from
# PREVIEWDB_RELEASE_URL (default https://github.com/<ACTION_REPOSITORY>/releases/download/v<ver>;
# any URL curl reads, file:// too) as previewdb-<ver>-linux-x64.tar.gz and checked against the
# release's SHA256SUMS: a missing or wrong checksum fails the step. Any other ref (a branch, a
# commit) is built from the action's source: the slow path (minutes), said so in the log.
#
# PREVIEWDB_INSTALL_ROOT: where versions are installed (default $RUNNER_TOOL_CACHE/previewdb, else
# ~/.cache/previewdb). ACTION_PATH: the action's checkout (default: this script's repository).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
action_path=$(cd "${ACTION_PATH:-$here}" && pwd)
# github.action_ref/action_repository are not promised inside composite actions (and are empty
# on some runners): the runner checks an action out to .../_actions/<owner>/<repo>/<ref>.
if [[ "$action_path" =~ /_actions/([^/]+)/([^/]+)/([^/]+)$ ]]; then
  ACTION_REF=${ACTION_REF:-${BASH_REMATCH[3]}}
  ACTION_REPOSITORY=${ACTION_REPOSITORY:-${BASH_REMATCH[1]}/${BASH_REMATCH[2]}}
fi
root=${PREVIEWDB_INSTALL_ROOT:-${RUNNER_TOOL_CACHE:-$HOME/.cache}/previewdb}
arch=linux-x64

die() {
  # ::error:: makes GitHub show it on the run's summary; elsewhere it is a plain line.
  echo "::error title=previewdb install::$*" >&2
  exit 1
}
note() { echo "previewdb install: $*" >&2; }
output() {
  if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1=$2" >> "$GITHUB_OUTPUT"; else echo "$1=$2"; fi
}

[ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] ||
  die "previewdb's release binaries are for Linux x86_64; this runner is $(uname -s) $(uname -m)"

# The release version, or empty for "build from source".
resolve_version() {
  local v=${PREVIEWDB_VERSION_INPUT:-}
  if [ -z "$v" ] && [[ "${ACTION_REF:-}" =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.-]+)?$ ]]; then
    v=$ACTION_REF
  fi
  v=${v#v}
  if [ -n "$v" ] && ! [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-.][0-9A-Za-z.-]+)?$ ]]; then
    die "version '$v' is not a release version like 0.1.0"
  fi
  echo "$v"
}

version=$(resolve_version)
if [ -n "$version" ]; then
  dir="$root/$version"
  key="previewdb-$version-$arch"
else
  # A branch or commit: keyed by the source's commit, so a cache entry is never stale.
  rev=$(git -C "$action_path" rev-parse HEAD 2>/dev/null || echo "${ACTION_REF:-unknown}")
  dir="$root/source-$rev"
  key="previewdb-source-$rev-$arch"
fi

case "${1:-}" in
  resolve)
    output version "${version:-source}"
    output dir "$dir"
    output cache-key "$key"
    exit 0
    ;;
  install) ;;
  *) echo "usage: $0 resolve|install" >&2; exit 2 ;;
esac

if [ -x "$dir/previewdb" ] && "$dir/previewdb" --version >/dev/null 2>&1; then
  note "previewdb ${version:-from source} is already in $dir (cached)"
elif [ -n "$version" ]; then
  base=${PREVIEWDB_RELEASE_URL:-https://github.com/${ACTION_REPOSITORY:-previewdb/previewdb}/releases/download/v$version}
  asset="previewdb-$version-$arch.tar.gz"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  note "downloading $base/$asset"
  curl -fsSL --retry 3 -o "$tmp/$asset" "$base/$asset" || die "cannot download $base/$asset"
  curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$base/SHA256SUMS" ||
    die "cannot download $base/SHA256SUMS (every release publishes one; without it the download cannot be verified)"
  expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
  [ -n "$expected" ] || die "$base/SHA256SUMS has no line for $asset"
  actual=$(sha256sum "$tmp/$asset" | cut -d' ' -f1)
  [ "$actual" = "$expected" ] ||
    die "checksum mismatch for $asset: SHA256SUMS says $expected, the download is $actual (a corrupt or tampered download: not installed)"
  mkdir -p "$tmp/x"
  tar -xzf "$tmp/$asset" -C "$tmp/x"
  [ -x "$tmp/x/previewdb-$version-$arch/previewdb" ] || die "$asset holds no previewdb-$version-$arch/previewdb"
  rm -rf "$dir"
  mkdir -p "$(dirname "$dir")"
  mv "$tmp/x/previewdb-$version-$arch" "$dir"
else
  echo "::notice title=previewdb::the action's ref '${ACTION_REF:-?}' is not a release tag: building previewdb from source (the slow path, several minutes). Pin a release (uses: previewdb/previewdb@v1.2.3) or set the version input to install in seconds." >&2
  if grep -qs '^12' /etc/debian_version; then
    bash "$action_path/scripts/install-deps.sh"
    PREVIEWDB_PORTABLE_BUILD_DIR="$root/build-$rev" PREVIEWDB_DIST_DIR="$root/dist-$rev" \
      bash "$action_path/scripts/build-portable.sh"
  elif command -v docker >/dev/null 2>&1; then
    # The portable build needs Debian 12's packages: build in a Debian 12 container.
    mkdir -p "$root/dist-$rev"
    docker run --rm -v "$action_path:/src:ro" -v "$root/dist-$rev:/dist" debian:12 bash -c \
      'cp -r /src /build && cd /build && bash scripts/install-deps.sh >/dev/null && PREVIEWDB_DIST_DIR=/dist bash scripts/build-portable.sh'
  else
    die "building from source needs Debian 12 or Docker; set the action's version input to a release instead"
  fi
  tarball=$(ls "$root/dist-$rev"/previewdb-*-$arch.tar.gz | head -n1)
  mkdir -p "$dir"
  tar -xzf "$tarball" -C "$dir" --strip-components=1
fi

"$dir/previewdb" --version >&2 || die "the installed $dir/previewdb does not run on this machine"
if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >> "$GITHUB_PATH"; fi
output path "$dir/previewdb"
