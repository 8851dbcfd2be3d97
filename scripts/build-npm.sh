#!/usr/bin/env bash
# Builds previewdb's npm packages from the portable tarball (scripts/build-portable.sh):
#   previewdb             a small JS launcher (bin: previewdb) that runs the platform package's
#                         binary; @previewdb/linux-x64 is its optional dependency
#   @previewdb/linux-x64  the binary, installed only on Linux x64 with glibc (os/cpu/libc)
# Neither has install scripts (package managers increasingly refuse to run them).
#
#   scripts/build-npm.sh dist/previewdb-<version>-linux-x64.tar.gz [OUT_DIR]
# writes OUT_DIR/previewdb-<version>.tgz and OUT_DIR/previewdb-linux-x64-<version>.tgz
# (default OUT_DIR: dist/npm), ready for `npm publish`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tarball=${1:?usage: $0 dist/previewdb-<version>-linux-x64.tar.gz [OUT_DIR]}
out=${2:-$root/dist/npm}
base=$(basename "$tarball" .tar.gz)
[[ "$base" =~ ^previewdb-([0-9]+\.[0-9]+\.[0-9]+[-.0-9A-Za-z]*)-linux-x64$ ]] ||
  { echo "build-npm: $tarball is not previewdb-<version>-linux-x64.tar.gz" >&2; exit 2; }
version=${BASH_REMATCH[1]}
command -v npm >/dev/null || { echo "build-npm: npm is not installed (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/x" "$work/previewdb/bin" "$work/linux-x64/bin"
tar -xzf "$tarball" -C "$work/x"
src="$work/x/$base"
[ -x "$src/previewdb" ] || { echo "build-npm: $tarball holds no $base/previewdb" >&2; exit 1; }

# The platform package: the binary and nothing to run at install time.
install -m 0755 "$src/previewdb" "$work/linux-x64/bin/previewdb"
cat > "$work/linux-x64/package.json" <<JSON
{
  "name": "@previewdb/linux-x64",
  "version": "$version",
  "description": "previewdb's binary for Linux x64 (glibc 2.35 or newer); installed by the previewdb package",
  "os": ["linux"],
  "cpu": ["x64"],
  "libc": ["glibc"],
  "files": ["bin/previewdb"],
  "preferUnplugged": true
}
JSON
cat > "$work/linux-x64/README.md" <<'MD'
# @previewdb/linux-x64

The previewdb binary for Linux x64 (glibc 2.35 or newer). Install `previewdb` instead: it lists
this package as an optional dependency and runs the binary (`npx previewdb --version`).
MD

# The launcher package.
install -m 0755 "$root/scripts/npm/previewdb.js" "$work/previewdb/bin/previewdb.js"
cat > "$work/previewdb/package.json" <<JSON
{
  "name": "previewdb",
  "version": "$version",
  "description": "A PostgreSQL database for every pull request that changes the schema",
  "bin": { "previewdb": "bin/previewdb.js" },
  "files": ["bin/previewdb.js", "README.md"],
  "optionalDependencies": { "@previewdb/linux-x64": "$version" },
  "engines": { "node": ">=16" }
}
JSON
cp "$root/README.md" "$work/previewdb/README.md"

(cd "$work/linux-x64" && npm pack --silent --pack-destination "$out" >/dev/null)
(cd "$work/previewdb" && npm pack --silent --pack-destination "$out" >/dev/null)
echo "build-npm: $out/previewdb-$version.tgz $out/previewdb-linux-x64-$version.tgz" >&2
