#!/usr/bin/env bash
# The main job, end to end, on previewdb's own local PostgreSQL (no database to configure):
# installs what is missing, builds previewdb, makes a small demo repository whose main branch has
# migrations/schema/0001_*.sql and whose PR branch adds 0002_*.sql, then runs what CI runs on a
# pull request: `previewdb ci`. It creates pr_1 from a snapshot of `dev` and applies 0002.
# Run it again: pr_1 is reused and nothing is applied twice.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j "$(nproc)" --target previewdb
pdb="$root/build/previewdb"

demo=${PREVIEWDB_DEMO_DIR:-$root/.previewdb-demo}
# The embedded server, not whatever the calling shell points at.
unset DATABASE_URL DIRECT_URL PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSERVICE \
  GITHUB_ACTIONS GITHUB_EVENT_PATH NETLIFY
export PREVIEWDB_HOME="$demo/.previewdb" PREVIEWDB_USER=${PREVIEWDB_USER:-demo}

if [ ! -d "$demo/work/.git" ]; then
  mkdir -p "$demo"
  git init -q --bare -b main "$demo/origin.git"
  git init -q -b main "$demo/work"
  cd "$demo/work"
  git config user.name demo && git config user.email demo@example.com
  mkdir -p migrations/schema
  cat > migrations/schema/0001_create_users.sql <<'SQL'
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE);
SQL
  git add . && git commit -qm "0001: users"
  git remote add origin "$demo/origin.git" && git push -q origin main
  git checkout -q -b feature/orders
  cat > migrations/schema/0002_create_orders.sql <<'SQL'
CREATE TABLE orders (
  id bigserial PRIMARY KEY,
  user_id bigint NOT NULL REFERENCES users (id),
  total_cents integer NOT NULL CHECK (total_cents >= 0)
);
CREATE INDEX orders_user_id_idx ON orders (user_id);
SQL
  git add . && git commit -qm "0002: orders"
fi
cd "$demo/work"

# The shared dev database has main's schema: migrate it, then snapshot it (once).
if [ -z "$("$pdb" snapshot list --json -q | tr -d '[] \n')" ]; then
  git show main:migrations/schema/0001_create_users.sql > "$demo/0001.sql"
  mkdir -p "$demo/main-schema" && cp "$demo/0001.sql" "$demo/main-schema/0001_create_users.sql"
  "$pdb" migrate --dir "$demo/main-schema" --database dev
  "$pdb" snapshot dev
fi

echo "== previewdb ci (pull request #1, branch feature/orders)"
"$pdb" ci --provider generic --pr 1 --base-ref main
echo "== previewdb list"
"$pdb" list
