# previewdb in a container, for self-hosted runners and other CI that want one (the GitHub action
# installs the portable binary on the runner instead; see docs/PACKAGING.md):
#   docker build -t previewdb .
#   docker run --rm -e DATABASE_URL -v "$PWD:/repo" -w /repo previewdb ci --dry-run --pr 12
# Both stages install their packages with scripts/install-deps.sh, the same list .ci/run uses.

FROM debian:12-slim AS build
COPY scripts/install-deps.sh /usr/local/share/previewdb/install-deps.sh
RUN bash /usr/local/share/previewdb/install-deps.sh && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# With tests and benchmarks off, CMakeLists.txt and src/ are the whole build.
COPY CMakeLists.txt ./
COPY src ./src
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
      -DPREVIEWDB_BUILD_TESTS=OFF -DPREVIEWDB_BUILD_BENCH=OFF \
    && cmake --build build -j "$(nproc)" \
    && cmake --install build --prefix /out --strip

FROM debian:12-slim
COPY scripts/install-deps.sh /usr/local/share/previewdb/install-deps.sh
# The runtime libraries, postgresql-client (pg_dump/pg_restore), git and CA certificates.
# safe.directory: a Docker action runs as root on a workspace owned by the runner's user, and
# libgit2 (like git) refuses to open a repository owned by someone else. Debian 12's libgit2 1.5
# ignores the '*' wildcard, so the action's /github/workspace and the /repo mount documented
# above are named; '*' covers the git CLI (a --migrate-command may use it).
RUN bash /usr/local/share/previewdb/install-deps.sh --runtime \
    && rm -rf /var/lib/apt/lists/* \
    && git config --system --add safe.directory /github/workspace \
    && git config --system --add safe.directory /repo \
    && git config --system --add safe.directory '*'
COPY --from=build /out/bin/previewdb /usr/local/bin/previewdb
# Docker actions must run as the image's default user (root): the runner's file commands
# (GITHUB_OUTPUT, GITHUB_ENV, ...) are mounted from the host and written as root.
ENTRYPOINT ["previewdb"]
