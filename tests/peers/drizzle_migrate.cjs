// Runs drizzle-orm's own migrator (node-postgres driver) against DATABASE_URL with the migrations
// folder given as the first argument, and prints the number of rows in
// drizzle.__drizzle_migrations before and after as JSON. Used by tests/integration/migrate to
// check that Drizzle agrees with what previewdb applied. Needs NODE_PATH to reach drizzle-orm and
// pg (scripts/install-deps.sh --peers installs them under /opt/previewdb-peers).
const { Pool } = require("pg");
const { drizzle } = require("drizzle-orm/node-postgres");
const { migrate } = require("drizzle-orm/node-postgres/migrator");

(async () => {
  const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 1 });
  const count = async () =>
    (await pool.query("SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations")).rows[0].n;
  const before = await count().catch(() => 0);
  await migrate(drizzle(pool), { migrationsFolder: process.argv[2] });
  const after = await count();
  console.log(JSON.stringify({ before, after }));
  await pool.end();
})().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
