#include "db/dialect.hpp"

#include <regex>

namespace previewdb::db {

namespace {
const Dialect k_postgres = {"PostgreSQL", true, true, true, true};
const Dialect k_postgres_pre15 = {"PostgreSQL", true, false, true, true};
const Dialect k_cockroach = {"CockroachDB", false, false, true, false};
}  // namespace

ServerInfo classify_version(const std::string& text) {
  ServerInfo info;
  std::smatch m;
  if (text.find("CockroachDB") != std::string::npos) {
    info.kind = ServerKind::cockroach;
    static const std::regex v(R"((v\d+\.\d+(\.\d+)?))");
    if (std::regex_search(text, m, v)) info.version = m[1];
  } else {
    static const std::regex v(R"(PostgreSQL (\d+(\.\d+)?))");
    if (std::regex_search(text, m, v)) info.version = m[1];
  }
  return info;
}

const Dialect& dialect_for(const ServerInfo& info, int server_version_num) {
  if (info.kind == ServerKind::cockroach) {
    throw Error(ExitCode::connection,
                "the server is CockroachDB " + info.version +
                    ", which previewdb does not support yet (it has no template databases; "
                    "snapshots need BACKUP/RESTORE)",
                {"point --database-url / DATABASE_URL at a PostgreSQL server, or leave them unset "
                 "to use previewdb's local PostgreSQL"});
  }
  return server_version_num >= 150000 ? k_postgres : k_postgres_pre15;
}

const Dialect& dialect_of(Connection& conn) {
  auto info = classify_version(conn.exec("SELECT version()").get(0, 0));
  return dialect_for(info, conn.server_version());
}

}  // namespace previewdb::db
