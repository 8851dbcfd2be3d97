// The history side of 'migrate down' and 'resolve --rolled-back': what each tool writes when a
// migration is undone (kept apart from history.cpp, which records applied migrations).
#include "migrate/down.hpp"

namespace previewdb::migrate {

namespace {

std::string qualified(db::Connection& conn, const std::string& schema, const char* table) {
  return conn.quote_ident(schema) + "." + conn.quote_ident(table);
}

bool has_column(db::Connection& conn, const std::string& schema, const char* table,
                const char* column) {
  return conn.exec(
                 "SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND "
                 "table_name = $2 AND column_name = $3",
                 {schema, table, column})
             .rows() > 0;
}

// golang-migrate's table: schema_migrations with a "dirty" column (dbmate's has none).
bool golang_table(db::Connection& conn, const std::string& schema) {
  return table_exists(conn, schema + ".schema_migrations") &&
         has_column(conn, schema, "schema_migrations", "dirty");
}

bool dbmate_table(db::Connection& conn, const std::string& schema) {
  return table_exists(conn, schema + ".schema_migrations") &&
         !has_column(conn, schema, "schema_migrations", "dirty");
}

// golang-migrate's SetVersion: the table emptied, then (version, dirty) inserted; no version
// (everything undone) inserts -1 only while dirty, as its postgres driver does.
std::vector<std::string> golang_set_version(db::Connection& conn, const std::string& schema,
                                            const Migration* previous, bool dirty) {
  std::string t = qualified(conn, schema, "schema_migrations");
  std::vector<std::string> sql = {"DELETE FROM " + t};
  if (previous || dirty) {
    sql.push_back("INSERT INTO " + t + " (version, dirty) VALUES (" +
                  (previous ? previous->version : std::string("-1")) + ", " +
                  (dirty ? "true" : "false") + ")");
  }
  return sql;
}

}  // namespace

std::string unrecord_own(db::Connection& conn, const Migration& m) {
  return "DELETE FROM _previewdb.schema_migrations WHERE id = " + conn.quote_literal(m.id);
}

std::vector<std::string> tool_undo_sql(db::Connection& conn, Format format,
                                       const std::string& schema, const Migration& up,
                                       const Migration* previous, const RecordInfo& info) {
  switch (format) {
    case Format::golang_migrate:
      // A failed statement-by-statement down stays dirty, as golang-migrate leaves it.
      if (!info.success || !golang_table(conn, schema)) return {};
      return golang_set_version(conn, schema, previous, false);
    case Format::dbmate:
      if (!info.success || !dbmate_table(conn, schema)) return {};
      return {"DELETE FROM " + qualified(conn, schema, "schema_migrations") +
              " WHERE version = " + conn.quote_literal(up.version)};
    case Format::flyway: {
      // Flyway Teams' undo: a row of type UNDO_SQL for the version; the newest row of a version
      // decides its state, so a successful undo makes it pending again.
      if (!table_exists(conn, schema + ".flyway_schema_history")) return {};
      const Migration& u = up.down ? *up.down : up;
      std::string t = qualified(conn, schema, "flyway_schema_history");
      std::string by =
          info.applied_by.empty() ? "current_user" : conn.quote_literal(info.applied_by);
      std::string duration = info.duration_ms
                                 ? std::to_string(*info.duration_ms)
                                 : "(extract(epoch FROM clock_timestamp() - now()) * 1000)::int";
      return {
          "INSERT INTO " + t +
          " (installed_rank, version, description, type, script, checksum, installed_by, "
          "installed_on, execution_time, success) VALUES ((SELECT coalesce(max(installed_rank), "
          "0) + 1 FROM " +
          t + "), " + conn.quote_literal(up.version) + ", " + conn.quote_literal(u.name) +
          ", 'UNDO_SQL', " + conn.quote_literal(u.script) + ", " +
          std::to_string(u.flyway_checksum) + ", " + by + ", now(), " + duration + ", " +
          (info.success ? "true" : "false") + ")"};
    }
    case Format::prisma:
      // Prisma ignores rows with rolled_back_at set (kept as an audit trail): the migration is
      // pending again and 'prisma migrate deploy' would apply it.
      if (!info.success || !table_exists(conn, schema + "._prisma_migrations")) return {};
      return {"UPDATE " + qualified(conn, schema, "_prisma_migrations") +
              " SET rolled_back_at = now() WHERE migration_name = " + conn.quote_literal(up.id) +
              " AND rolled_back_at IS NULL"};
    case Format::drizzle:
    case Format::drizzle1:
    case Format::plain:
      break;
  }
  return {};
}

std::vector<std::string> tool_undo_before_autocommit(db::Connection& conn, Format format,
                                                     const std::string& schema,
                                                     const Migration* previous) {
  if (format != Format::golang_migrate || !golang_table(conn, schema)) return {};
  return golang_set_version(conn, schema, previous, true);
}

std::vector<std::string> tool_rolled_back_sql(db::Connection& conn, Format format,
                                              const std::string& schema, const Migration& m,
                                              const Migration* previous) {
  switch (format) {
    case Format::prisma:
      if (!table_exists(conn, schema + "._prisma_migrations")) return {};
      return {"UPDATE " + qualified(conn, schema, "_prisma_migrations") +
              " SET rolled_back_at = now() WHERE migration_name = " + conn.quote_literal(m.id) +
              " AND finished_at IS NULL AND rolled_back_at IS NULL"};
    case Format::golang_migrate: {
      // Only when its single row is dirty at this version (a failed up) or at the one below (a
      // failed statement-by-statement down, -1 when none): 'migrate force <previous>'.
      if (!golang_table(conn, schema)) return {};
      auto r = conn.exec("SELECT version::text, dirty FROM " +
                         qualified(conn, schema, "schema_migrations") +
                         " ORDER BY version DESC LIMIT 1");
      if (r.rows() == 0 || !r.get_bool(0, 1)) return {};
      std::string v = r.get(0, 0);
      if (v != m.version && v != (previous ? previous->version : std::string("-1"))) return {};
      return golang_set_version(conn, schema, previous, false);
    }
    case Format::flyway:
      if (!table_exists(conn, schema + ".flyway_schema_history")) return {};
      return {"DELETE FROM " + qualified(conn, schema, "flyway_schema_history") +
              " WHERE success = false AND " +
              (m.repeatable ? "script = " + conn.quote_literal(m.script)
                            : "version = " + conn.quote_literal(m.version))};
    case Format::dbmate:
    case Format::drizzle:
    case Format::drizzle1:
    case Format::plain:
      break;
  }
  return {};
}

}  // namespace previewdb::migrate
