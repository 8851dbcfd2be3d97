#!/usr/bin/env bash
# Builds the portable release tarball, dist/previewdb-<version>-linux-x64.tar.gz: one binary that
# needs nothing from the system but glibc (2.35 or newer), see docs/PACKAGING.md.
#
#   scripts/build-portable.sh                 build dir build-portable (Release), tarball in dist/
#   scripts/build-portable.sh --deps-only     only build the static libpq, libcurl, cpp-httplib and libgit2 (cached)
#
#   PREVIEWDB_PORTABLE_BUILD_DIR=DIR  build in DIR instead (scripts/test.sh passes its own build
#                                     dir: the portable binary then links the objects the tests
#                                     were built from, at the cost of one more link)
#   PREVIEWDB_DIST_DIR=DIR            where the tarball goes (default dist/)
#
# libpq, libcurl and libgit2 are built here from their Debian source packages (the versions of
# the installed -dev packages, with Debian's patches), with only what previewdb uses: Debian
# ships them as static archives too, but built with Kerberos/GSSAPI and LDAP (and libgit2 with
# SSH), which Debian does not ship statically. Everything else is Debian's own static archive. The sources and the
# built libraries are cached in <build dir>/portable-deps; a second run only links.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
build=${PREVIEWDB_PORTABLE_BUILD_DIR:-build-portable}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
dist=${PREVIEWDB_DIST_DIR:-$root/dist}
deps_only=0
[ "${1:-}" = "--deps-only" ] && deps_only=1
jobs=${PREVIEWDB_JOBS:-2}

deps="$build/portable-deps"
prefix="$deps/prefix"
mkdir -p "$deps/src" "$prefix"

say() { echo "build-portable: $*" >&2; }

# The source package and version behind an installed binary package: its headers are what the
# normal build compiles against, so the static library is built from the same source.
source_of() {
  dpkg-query -W -f='${source:Package} ${source:Version}' "$1" 2>/dev/null || {
    say "package $1 is not installed: run scripts/install-deps.sh"
    exit 1
  }
}

# apt-get source with a private sources list and state (no change to the system's apt setup):
# the deb-src lines of the mirrors the system already uses for bookworm. Sets $srcdir. When the
# installed version's source cannot be fetched (a mirror without that security update), the
# newest other Debian revision of the same upstream version is used: same headers, same ABI.
fetch_source() {
  local pkg=$1 version=$2
  srcdir="$deps/src/$pkg-$version"
  [ -f "$srcdir/.unpacked" ] && return 0
  local apt="$deps/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache" "$deps/src/dl"
  if [ ! -f "$apt/sources.list" ]; then
    cat > "$apt/sources.list" <<EOF
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian bookworm-updates main
deb-src http://deb.debian.org/debian-security bookworm-security main
EOF
  fi
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
              -o APT::Sandbox::User=root -qq)
  if ! compgen -G "$apt/lists/*Sources*" >/dev/null; then
    say "fetching the Debian source index"
    apt-get "${opts[@]}" update >/dev/null
  fi
  local upstream=${version%-*} candidate
  local candidates=("$version")
  while read -r candidate; do
    [ "$candidate" != "$version" ] && [ "${candidate%-*}" = "$upstream" ] && candidates+=("$candidate")
  done < <(apt-cache "${opts[@]}" showsrc "$pkg" | sed -n 's/^Version: //p' | sort -rV)
  for candidate in "${candidates[@]}"; do
    say "fetching Debian source package $pkg $candidate"
    if (cd "$deps/src/dl" && apt-get "${opts[@]}" source --download-only "$pkg=$candidate" >/dev/null 2>&1); then
      rm -rf "$srcdir"
      dpkg-source --no-check -x "$deps/src/dl/${pkg}_${candidate#*:}.dsc" "$srcdir" >/dev/null
      touch "$srcdir/.unpacked"
      return 0
    fi
    say "cannot fetch $pkg $candidate from the mirror"
  done
  say "no source of $pkg $upstream could be fetched"
  exit 1
}

# libpq with OpenSSL and nothing else: no GSSAPI/Kerberos, no LDAP service lookup, no NLS.
build_libpq() {
  read -r pkg version <<<"$(source_of libpq-dev)"
  local stamp="$prefix/.libpq-$version"
  [ -f "$stamp" ] && return 0
  fetch_source "$pkg" "$version"
  local src=$srcdir
  say "building libpq $version (static, OpenSSL only)"
  (
    cd "$src"
    ./configure --quiet --prefix="$prefix" --with-openssl --without-readline --without-zlib \
      --without-icu --without-gssapi --without-ldap --disable-nls --without-systemd \
      --without-lz4 --without-zstd CFLAGS="-O2 -fPIC" >/dev/null
    make -s -C src/backend generated-headers >/dev/null
    make -s -j"$jobs" -C src/common libpgcommon_shlib.a >/dev/null
    make -s -j"$jobs" -C src/port libpgport_shlib.a >/dev/null
    make -s -j"$jobs" -C src/interfaces/libpq all-static-lib >/dev/null
    mkdir -p "$prefix/lib" "$prefix/include"
    cp src/interfaces/libpq/libpq.a src/common/libpgcommon_shlib.a src/port/libpgport_shlib.a \
      "$prefix/lib/"
    cp src/interfaces/libpq/libpq-fe.h src/interfaces/libpq/libpq-events.h \
      src/include/postgres_ext.h src/include/pg_config_ext.h "$prefix/include/"
  )
  touch "$stamp"
}

# libcurl for HTTP(S) with OpenSSL and zlib (what src/net uses): no HTTP/2, IDN, PSL, SSH,
# LDAP, Kerberos or the other protocols. CA certificates: the Debian/Ubuntu bundle path.
build_libcurl() {
  read -r pkg version <<<"$(source_of libcurl4-openssl-dev)"
  local stamp="$prefix/.libcurl-$version"
  [ -f "$stamp" ] && return 0
  fetch_source "$pkg" "$version"
  local src=$srcdir
  say "building libcurl $version (static, HTTP(S) with OpenSSL)"
  (
    cd "$src"
    # Debian's patches touch configure.ac and Makefile.am: regenerate as Debian's build does.
    autoreconf -fi >/dev/null 2>&1
    ./configure --quiet --prefix="$prefix" --disable-shared --enable-static --with-pic \
      --with-openssl --with-zlib --without-libpsl --without-brotli --without-zstd \
      --without-libidn2 --without-nghttp2 --without-librtmp --without-libssh2 --without-libssh \
      --without-gssapi --without-libgsasl --disable-ldap --disable-ldaps --disable-rtsp \
      --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap \
      --disable-smtp --disable-gopher --disable-mqtt --disable-smb --disable-ftp --disable-file \
      --disable-manual --disable-ntlm-wb --enable-threaded-resolver \
      --with-ca-bundle=/etc/ssl/certs/ca-certificates.crt --with-ca-path=/etc/ssl/certs \
      CFLAGS="-O2" >/dev/null
    make -s -j"$jobs" -C lib >/dev/null
    make -s -C lib install >/dev/null
    make -s -C include install >/dev/null
  )
  # Debian's Makefile.am names the library after the flavour it built last (libcurl-nss): this
  # one is the OpenSSL build configured above, whatever its name.
  [ -f "$prefix/lib/libcurl.a" ] || cp "$(ls "$prefix"/lib/libcurl*.a | head -n1)" "$prefix/lib/libcurl.a"
  touch "$stamp"
}

# libgit2 for local repositories (previewdb never fetches): Debian's libgit2.a is built with
# GSSAPI, SSH and HTTPS, which it does not ship statically.
build_libgit2() {
  read -r pkg version <<<"$(source_of libgit2-dev)"
  local stamp="$prefix/.libgit2-$version"
  [ -f "$stamp" ] && return 0
  fetch_source "$pkg" "$version"
  local src=$srcdir
  say "building libgit2 $version (static, local repositories only)"
  cmake -Wno-dev -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_TESTS=OFF -DBUILD_CLI=OFF -DBUILD_EXAMPLES=OFF \
    -DBUILD_FUZZERS=OFF -DUSE_HTTPS=OFF -DUSE_SSH=OFF -DUSE_GSSAPI=OFF -DUSE_NTLMCLIENT=OFF \
    -DUSE_HTTP_PARSER=system -DREGEX_BACKEND=regcomp -DUSE_BUNDLED_ZLIB=OFF \
    -DCMAKE_INSTALL_PREFIX="$prefix" >/dev/null
  # Its compiler warnings are Debian's to fix: kept in a log, shown when the build fails.
  cmake --build "$src/build" -j"$jobs" >"$src/build.log" 2>&1 || { tail -40 "$src/build.log" >&2; exit 1; }
  cmake --install "$src/build" >/dev/null
  touch "$stamp"
}

# cpp-httplib (the webhook receiver's server): Debian ships it only as a shared library, built
# from the header by upstream's split.py with OpenSSL, zlib and Brotli support. The same split of
# the same source, compiled with the same definitions (its .pc file's Cflags), gives the archive:
# Debian's header, which previewdb compiles against, is byte for byte that split's header.
build_httplib() {
  read -r pkg version <<<"$(source_of libcpp-httplib-dev)"
  local stamp="$prefix/.httplib-$version"
  [ -f "$stamp" ] && return 0
  fetch_source "$pkg" "$version"
  local src=$srcdir
  say "building cpp-httplib $version (static, the split Debian builds)"
  (
    cd "$src"
    python3 "$src/split.py" -o "$src/split" >/dev/null
    cmp -s <(sed 's/[[:space:]]*$//' "$src/split/httplib.h") \
      <(sed 's/[[:space:]]*$//' /usr/include/httplib.h) || {
      say "the split header of $pkg $version differs from /usr/include/httplib.h"
      exit 1
    }
    # shellcheck disable=SC2046
    g++ -O2 -fPIC -std=c++17 $(pkg-config --cflags cpp-httplib) -I "$src/split" \
      -c "$src/split/httplib.cc" -o "$src/split/httplib.o"
    mkdir -p "$prefix/lib"
    ar rcs "$prefix/lib/libcpp-httplib.a" "$src/split/httplib.o"
  )
  touch "$stamp"
}

build_libpq
build_libcurl
build_httplib
build_libgit2
[ "$deps_only" = 1 ] && { say "static libpq, libcurl, cpp-httplib and libgit2 in $prefix"; exit 0; }

# A new build dir gets a Release configuration of its own; an existing one (scripts/test.sh's)
# keeps its settings and only gains the portable target, so its objects are not rebuilt.
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -DPREVIEWDB_PORTABLE=ON -DPREVIEWDB_DEPS_PREFIX="$prefix" >/dev/null
else
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DPREVIEWDB_BUILD_TESTS=OFF \
    -DPREVIEWDB_BUILD_BENCH=OFF -DPREVIEWDB_PORTABLE=ON -DPREVIEWDB_DEPS_PREFIX="$prefix" \
    "${launcher[@]}" >/dev/null
fi
cmake --build "$build" -j"$jobs" --target portable-tarball
mkdir -p "$dist"
for f in "$build"/dist/previewdb-*-linux-x64.tar.gz; do
  cp "$f" "$dist/"
  say "$dist/$(basename "$f")"
done
