#include "ci/preview_state.hpp"

namespace previewdb::ci {

namespace {
constexpr const char* k_table = "_previewdb.ci_state";
}

std::string read_reset_cause(db::Connection& preview) {
  auto exists = preview.exec("SELECT to_regclass($1) IS NOT NULL", {k_table});
  if (!exists.get_bool(0, 0)) return {};
  auto r = preview.exec(std::string("SELECT value FROM ") + k_table + " WHERE key = 'reset_cause'");
  return r.rows() ? r.get(0, 0) : std::string();
}

void record_reset_cause(db::Connection& preview, const std::string& cause) {
  preview.exec("CREATE SCHEMA IF NOT EXISTS _previewdb");
  preview.exec(std::string("CREATE TABLE IF NOT EXISTS ") + k_table +
               " (key text PRIMARY KEY, value text NOT NULL)");
  preview.exec(std::string("INSERT INTO ") + k_table +
                   " (key, value) VALUES ('reset_cause', $1) ON CONFLICT (key) DO UPDATE SET "
                   "value = EXCLUDED.value",
               {cause});
}

}  // namespace previewdb::ci
