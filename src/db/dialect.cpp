#include "db/dialect.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <regex>

#include "util/redact.hpp"

namespace previewdb::db {

namespace {

std::vector<std::string> postgres_session(std::chrono::milliseconds lock_timeout,
                                          int server_version_num) {
  auto ms = std::max<long long>(1, lock_timeout.count());
  std::vector<std::string> out = {"SELECT set_config('lock_timeout', '" + std::to_string(ms) +
                                  "ms', false), set_config('statement_timeout', '0', false)"};
  // The server checks every second whether the client is still there, even while the statement
  // waits for a lock, and ends the statement (and its locks) when it is gone.
  if (server_version_num >= 140000) out.emplace_back("SET client_connection_check_interval = '1s'");
  return out;
}

// CockroachDB has no client_connection_check_interval; its lock_timeout and statement_timeout
// are session variables of the same names (docs: "Session Variables", lock_timeout since v22.1).
std::vector<std::string> cockroach_session(std::chrono::milliseconds lock_timeout, int) {
  auto ms = std::max<long long>(1, lock_timeout.count());
  return {"SET statement_timeout = '0'", "SET lock_timeout = '" + std::to_string(ms) + "ms'"};
}

std::string postgres_drop(std::string_view name, bool if_exists) {
  return std::string("DROP DATABASE ") + (if_exists ? "IF EXISTS " : "") + quote_identifier(name) +
         " WITH (FORCE)";
}

std::string cockroach_drop(std::string_view name, bool if_exists) {
  return std::string("DROP DATABASE ") + (if_exists ? "IF EXISTS " : "") + quote_identifier(name) +
         " CASCADE";
}

std::string postgres_create(std::string_view name) {
  return "CREATE DATABASE " + quote_identifier(name) + " TEMPLATE template0";
}

std::string cockroach_create(std::string_view name) {
  return "CREATE DATABASE " + quote_identifier(name);
}

const Dialect k_postgres = {
    ServerKind::postgres,         "PostgreSQL",
    /*template_databases=*/true,
    /*clone_strategy=*/true,
    /*comment_on_database=*/true,
    /*advisory_locks=*/true,
    /*transactional_ddl=*/true,
    /*database_sizes=*/true,
    /*terminate_on_drop=*/true,   postgres_session, postgres_drop, postgres_create};
const Dialect k_postgres_pre15 = [] {
  Dialect d = k_postgres;
  d.clone_strategy = false;
  return d;
}();
Dialect without_advisory_locks(const Dialect& d) {
  Dialect out = d;
  out.advisory_locks = false;
  return out;
}
const Dialect k_postgres_lease = without_advisory_locks(k_postgres);
const Dialect k_postgres_pre15_lease = without_advisory_locks(k_postgres_pre15);
std::atomic<bool> g_force_lease_locks{false};

const Dialect k_cockroach = {ServerKind::cockroach, "CockroachDB",
                             /*template_databases=*/false,
                             /*clone_strategy=*/false,
                             /*comment_on_database=*/true,
                             // pg_advisory_lock exists as a no-op stub: not a lock at all.
                             /*advisory_locks=*/false,
                             /*transactional_ddl=*/false,
                             // Serverless hides range sizes; the original system showed "-".
                             /*database_sizes=*/false,
                             /*terminate_on_drop=*/false, cockroach_session, cockroach_drop,
                             cockroach_create};

}  // namespace

std::string quote_identifier(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_string(std::string_view text) {
  bool backslash = text.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : text) {
    if (c == '\'' || (backslash && c == '\\')) out += c;
    out += c;
  }
  return out + "'";
}

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

const Dialect& postgres_dialect(int server_version_num) {
  return server_version_num >= 150000 ? k_postgres : k_postgres_pre15;
}

const Dialect& cockroach_dialect() {
  return k_cockroach;
}

const Dialect& dialect_for(const ServerInfo& info, int server_version_num) {
  if (info.kind == ServerKind::cockroach) return k_cockroach;
  if (g_force_lease_locks) {
    return server_version_num >= 150000 ? k_postgres_lease : k_postgres_pre15_lease;
  }
  return postgres_dialect(server_version_num);
}

void force_lease_locks(bool on) {
  g_force_lease_locks = on;
}

bool lease_locks_forced() {
  return g_force_lease_locks;
}

namespace {

// Sessions whose dialect is known. A key is the libpq handle and the server pid, so a handle
// that libpq reuses for another session (reopen) is asked again.
std::mutex g_known_mutex;
std::map<Connection::SessionKey, const Dialect*>& known() {
  static std::map<Connection::SessionKey, const Dialect*> m;
  return m;
}

}  // namespace

const Dialect& dialect_of(Connection& conn) {
  {
    std::lock_guard lock(g_known_mutex);
    if (auto it = known().find(conn.session_key()); it != known().end()) return *it->second;
  }
  auto info = classify_version(conn.exec("SELECT version()").get(0, 0));
  const Dialect& d = dialect_for(info, conn.server_version());
  std::lock_guard lock(g_known_mutex);
  known()[conn.session_key()] = &d;
  return d;
}

void force_dialect(Connection& conn, const Dialect& dialect) {
  std::lock_guard lock(g_known_mutex);
  known()[conn.session_key()] = &dialect;
}

Result exec_redacted(Connection& conn, const std::string& sql) {
  try {
    return conn.exec(sql);
  } catch (const QueryError& e) {
    throw QueryError(util::redact_url(e.what()), e.sqlstate(), util::redact_url(e.primary()),
                     util::redact_url(e.detail()), util::redact_url(e.server_hint()), e.position(),
                     e.connection_lost());
  } catch (const Error& e) {
    Error clean(e.code(), util::redact_url(e.what()));
    for (const auto& h : e.hints()) clean.with_hint(util::redact_url(h));
    throw clean;
  }
}

namespace cockroach {

std::string backup_database(std::string_view database, std::string_view collection_uri) {
  return "BACKUP DATABASE " + quote_identifier(database) + " INTO " + quote_string(collection_uri);
}

std::string restore_database(std::string_view database, std::string_view collection_uri,
                             std::string_view new_name) {
  return "RESTORE DATABASE " + quote_identifier(database) + " FROM LATEST IN " +
         quote_string(collection_uri) + " WITH new_db_name = " + quote_string(new_name);
}

std::string show_backups(std::string_view collection_uri) {
  return "SHOW BACKUPS IN " + quote_string(collection_uri);
}

std::string restore_database_from(std::string_view database, std::string_view subdir,
                                  std::string_view collection_uri, std::string_view new_name) {
  return "RESTORE DATABASE " + quote_identifier(database) + " FROM " + quote_string(subdir) +
         " IN " + quote_string(collection_uri) + " WITH new_db_name = " + quote_string(new_name);
}

namespace {
const std::regex k_backup_path(R"(/?(\d{4})/(\d{2})/(\d{2})-(\d{2})(\d{2})(\d{2})(\.\d+)?)");
}  // namespace

std::optional<std::chrono::system_clock::time_point> backup_path_time(std::string_view path) {
  std::cmatch m;
  if (!std::regex_match(path.begin(), path.end(), m, k_backup_path)) return std::nullopt;
  auto num = [&](int i) { return std::stoi(m[i].str()); };
  using namespace std::chrono;
  year_month_day ymd{year{num(1)}, month{static_cast<unsigned>(num(2))},
                     day{static_cast<unsigned>(num(3))}};
  if (!ymd.ok() || num(4) > 23 || num(5) > 59 || num(6) > 60) return std::nullopt;
  return sys_days{ymd} + hours{num(4)} + minutes{num(5)} + seconds{num(6)};
}

BackupReference split_backup_reference(std::string_view reference) {
  std::string ref(reference);
  while (!ref.empty() && ref.back() == '/') ref.pop_back();
  // The last three segments: <year>/<month>/<day>-<time>.
  size_t cut = ref.size();
  for (int i = 0; i < 3 && cut != std::string::npos && cut > 0; ++i) {
    cut = ref.rfind('/', cut - 1);
  }
  if (cut != std::string::npos && cut > 0 && backup_path_time(ref.substr(cut))) {
    std::string collection = ref.substr(0, cut);
    // Never cut into the URL's scheme and bucket (s3://BUCKET).
    auto scheme = collection.find("://");
    if (scheme != std::string::npos && collection.size() > scheme + 3) {
      return {collection, ref.substr(cut)};
    }
  }
  return {ref, ""};
}

}  // namespace cockroach

}  // namespace previewdb::db
