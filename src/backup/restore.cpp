#include "backup/restore.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>

#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"
#include "util/time.hpp"

namespace fs = std::filesystem;

namespace previewdb::backup {

namespace {

constexpr size_t k_chunk = 1 << 20;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string tool_failure(const util::ProcessResult& r) {
  std::string err = util::trim(r.err);
  if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
  if (!err.empty()) return err;
  if (r.signal) return "killed by signal " + std::to_string(r.signal);
  return "exit code " + std::to_string(r.exit_code);
}

// A database name for a client tool's -d: as a conninfo, so that a name with '=' or a URI prefix
// is never read as connection options. Host, user and password come from the environment.
std::string dbname_arg(const std::string& name) {
  std::string out = "dbname='";
  for (char c : name) {
    if (c == '\\' || c == '\'') out += '\\';
    out += c;
  }
  return out + "'";
}

util::ProcessSpec client_spec(const std::string& conninfo, const std::string& dbname,
                              std::vector<std::string> argv) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = db::libpq_environment(conninfo, dbname);
  spec.capture_stderr = true;
  spec.stdout_to_stderr = true;
  return spec;
}

bool is_superuser(db::Connection& conn) {
  return conn.exec("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").get_bool(0, 0);
}

// Why the target cannot be replaced by a swap, or nullopt: the role must create databases and own
// (be a member of the owner of) the target, as ALTER DATABASE ... RENAME and OWNER TO require.
std::optional<std::string> swap_impossible(db::Connection& conn, const std::string& target) {
  auto r = conn.exec(
      "SELECT coalesce((SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = "
      "current_user), false), coalesce((SELECT pg_has_role(current_user, d.datdba, 'MEMBER') "
      "FROM pg_database d WHERE d.datname = $1), true), current_user::text",
      {target});
  if (!r.get_bool(0, 0)) {
    return "role " + util::quoted(r.get(0, 2)) + " may not create databases (no CREATEDB)";
  }
  if (!r.get_bool(0, 1)) {
    return "role " + util::quoted(r.get(0, 2)) + " does not own " + util::quoted(target) +
           " (a rename needs its owner)";
  }
  return std::nullopt;
}

// Streams a backup's archive through zstd into pg_restore, checking it against its manifest on
// the way. A damaged stream is never completed: pg_restore is killed before it sees an end.
void load_backup(const RestoreRequest& req, const Manifest& m, const std::string& dbname,
                 std::vector<std::string> restore_args, std::string& tool_name) {
  auto pg_restore = find_tool("pg_restore", std::max(m.pg_dump_major, 1), req.lib_root);
  tool_name = "pg_restore " + std::to_string(pg_restore.major);
  std::vector<std::string> argv = {pg_restore.path.string(), "--no-password", "--exit-on-error"};
  argv.insert(argv.end(), restore_args.begin(), restore_args.end());
  argv.insert(argv.end(), {"-d", dbname_arg(dbname)});
  auto reader = req.source.store->open_object(req.source.name + k_archive_suffix);
  if (!reader) {
    throw Error(ExitCode::not_found, "no archive " + req.source.name + k_archive_suffix + " in " +
                                         req.source.store->describe());
  }
  ArchiveDecoder decoder(m, req.encryption_key,
                         req.source.name + " in " + req.source.store->describe());
  util::StreamingProcess child(client_spec(req.conninfo, dbname, argv), /*feed_stdin=*/true,
                               /*read_stdout=*/false);
  crypto::Sha256 sha;
  std::uint64_t compressed = 0, raw = 0;
  std::string in(k_chunk, '\0'), out;
  std::optional<std::string> damage;
  std::optional<Error> refused;  // decryption: the archive is not what was encrypted
  bool feeding = true;
  auto started = std::chrono::steady_clock::now();
  auto last = started;
  auto decode = [&](auto&& step) {
    try {
      step();
    } catch (const Error& e) {
      if (e.code() == ExitCode::refused)
        refused = e;
      else
        damage = std::string("the archive does not decompress: ") + e.what();
    }
  };
  while (size_t n = reader->read(in.data(), in.size())) {
    std::string_view chunk(in.data(), n);
    sha.update(chunk);
    compressed += n;
    decode([&] { decoder.update(chunk, out); });
    if (damage || refused) break;
    raw += out.size();
    if (feeding && !child.write(out.data(), out.size())) feeding = false;
    out.clear();
    auto now = std::chrono::steady_clock::now();
    if (req.progress && now - started > std::chrono::seconds(3) &&
        now - last > std::chrono::seconds(2)) {
      last = now;
      req.progress(raw, compressed);
    }
  }
  if (!damage && !refused) {
    decode([&] { decoder.finish(out); });
    if (damage && damage->find("truncated") != std::string::npos)
      damage = "the archive ends in the middle of its stream";
    raw += out.size();
    if (!damage && !refused && feeding && !child.write(out.data(), out.size())) feeding = false;
  }
  if (!damage && !refused && sha.hex_digest() != m.sha256)
    damage = "its SHA-256 differs from the manifest's";
  if (!damage && !refused && raw != m.size_raw) damage = "its size differs from the manifest's";
  if (damage || refused) {
    ::kill(child.pid(), SIGKILL);
    child.wait();
    if (refused) {
      throw Error(ExitCode::refused, std::string(refused->what()),
                  {"nothing was restored (the temporary database is dropped); do not trust this "
                   "backup"});
    }
    throw Error(ExitCode::pending, "backup " + req.source.name + " is damaged: " + *damage,
                {"nothing was restored; run 'previewdb backup verify " + req.source.name + "'"});
  }
  const auto& r = child.wait();
  if (!r.ok()) {
    throw Error(ExitCode::failure, "cannot restore " + req.source.describe() + " into " +
                                       util::quoted(dbname) +
                                       ": pg_restore failed: " + tool_failure(r));
  }
}

// A pg_restore new enough for a foreign archive: the version that wrote it, read with --list.
util::ProcessSpec foreign_archive_restore(const RestoreRequest& req, const std::string& dbname,
                                          std::vector<std::string> restore_args,
                                          std::string& tool_name) {
  auto tool = find_tool("pg_restore", 1, req.lib_root);
  util::ProcessSpec list;
  list.argv = {tool.path.string(), "--list", req.source.path.string()};
  list.capture_stdout = true;
  list.capture_stderr = true;
  auto listed = util::run_process(list);
  if (!listed.ok()) {
    throw Error(ExitCode::failure,
                "cannot read " + util::quoted(req.source.path.string()) +
                    " as a pg_dump archive: " + tool_failure(listed),
                {"plain SQL files must end in .sql or .sql.gz; archives are pg_dump -Fc or -Ft"});
  }
  if (auto major = archive_dump_major(listed.out); major && *major > tool.major) {
    tool = find_tool("pg_restore", *major, req.lib_root);
  }
  tool_name = "pg_restore " + std::to_string(tool.major);
  std::vector<std::string> argv = {tool.path.string(), "--no-password", "--exit-on-error"};
  argv.insert(argv.end(), restore_args.begin(), restore_args.end());
  argv.insert(argv.end(), {"-d", dbname_arg(dbname), req.source.path.string()});
  return client_spec(req.conninfo, dbname, argv);
}

// Loads the source into an empty database `dbname`.
void load_into(db::Connection& conn, const RestoreRequest& req, const std::string& dbname,
               std::string& tool_name) {
  std::vector<std::string> args;
  if (!is_superuser(conn)) args.push_back("--no-owner");  // objects then belong to previewdb's role
  switch (req.source.kind) {
    case SourceKind::backup: {
      load_backup(req, read_manifest(*req.source.store, req.source.name), dbname, args, tool_name);
      return;
    }
    case SourceKind::archive: {
      auto r = util::run_process(foreign_archive_restore(req, dbname, args, tool_name));
      if (!r.ok()) {
        throw Error(ExitCode::failure, "cannot restore " + req.source.describe() + " into " +
                                           util::quoted(dbname) +
                                           ": pg_restore failed: " + tool_failure(r));
      }
      return;
    }
    case SourceKind::sql:
    case SourceKind::sql_gz: {
      auto psql = find_tool("psql", 1, req.lib_root);
      tool_name = "psql";
      // -X: no ~/.psqlrc; one transaction, stopping at the first error.
      std::vector<std::string> argv = {psql.path.string(),     "-X", "-q",
                                       "--no-password",        "-v", "ON_ERROR_STOP=1",
                                       "--single-transaction", "-d", dbname_arg(dbname)};
      util::ProcessResult r;
      if (req.source.kind == SourceKind::sql) {
        argv.insert(argv.end(), {"-f", req.source.path.string()});
        r = util::run_process(client_spec(req.conninfo, dbname, argv));
      } else {
        argv.insert(argv.end(), {"-f", "-"});
        util::ProcessSpec gunzip;
        gunzip.argv = {"gzip", "-dc", "--", req.source.path.string()};
        gunzip.capture_stderr = true;
        auto [unzipped, loaded] =
            util::run_pipeline(gunzip, client_spec(req.conninfo, dbname, argv));
        if (!unzipped.ok()) {
          throw Error(ExitCode::failure,
                      "cannot restore " + req.source.describe() +
                          ": gzip cannot decompress it: " + tool_failure(unzipped));
        }
        r = loaded;
      }
      if (!r.ok()) {
        throw Error(ExitCode::failure, "cannot restore " + req.source.describe() + " into " +
                                           util::quoted(dbname) +
                                           ": psql failed: " + tool_failure(r));
      }
      return;
    }
  }
}

void refuse_protected(const RestoreRequest& req, const std::vector<core::DatabaseInfo>& all) {
  if (!req.protection || req.allow_protected) return;
  if (auto why = req.protection->reason(req.target, all)) {
    throw Error(ExitCode::refused,
                "refusing to restore into database " + util::quoted(req.target) +
                    ": it is protected (" + *why + ")",
                {"pass --allow-protected to restore it anyway (the original is kept under "
                 "another name unless --clean)"});
  }
}

std::chrono::seconds lock_timeout_of(const db::Connection& conn) {
  if (!conn.limits()) return std::chrono::minutes(10);
  return std::max(std::chrono::seconds(1),
                  std::chrono::duration_cast<std::chrono::seconds>(conn.limits()->lock_timeout));
}

RestoreResult restore_in_place(db::Connection& conn, const RestoreRequest& req) {
  if (req.source.kind == SourceKind::sql || req.source.kind == SourceKind::sql_gz) {
    throw usage_error("--clean restores archives in place; " + req.source.describe() +
                          " is plain SQL, which cannot drop what it did not create",
                      {"restore it without --clean (into a new database, swapped in)"});
  }
  db::AdvisoryLock name_lock(conn, core::spawn_lock_key(req.target), lock_timeout_of(conn),
                             "database " + util::quoted(req.target));
  // Only when there is a protection to check: listing reads previewdb's registry, which a role
  // restoring in place (no CREATEDB: safe-migrate's archive restore) may not reach.
  if (req.protection && !req.allow_protected) refuse_protected(req, core::list_databases(conn));
  if (!core::read_properties(conn, req.target)) {
    throw Error(ExitCode::not_found, "no database " + util::quoted(req.target) + " to restore into",
                {"without --clean, restore creates it"});
  }
  if (req.source.kind == SourceKind::backup) {
    // In place there is no temporary database to throw away: the archive is read back in full
    // before anything is dropped.
    VerifyOptions vo;
    vo.toc_only = true;
    vo.lib_root = req.lib_root;
    vo.encryption_key = req.encryption_key;
    auto v = verify_backup(*req.source.store, req.source.name, vo);
    if (!v.ok) {
      throw Error(ExitCode::pending,
                  "backup " + req.source.name + " is damaged: " + util::join(v.problems, "; "),
                  {"nothing was restored"});
    }
  }
  RestoreResult result;
  result.database = req.target;
  result.in_place = true;
  std::vector<std::string> args = {"--clean", "--if-exists", "--single-transaction"};
  if (!is_superuser(conn)) args.push_back("--no-owner");
  if (req.source.kind == SourceKind::backup) {
    load_backup(req, read_manifest(*req.source.store, req.source.name), req.target, args,
                result.tool);
  } else {
    auto r = util::run_process(foreign_archive_restore(req, req.target, args, result.tool));
    if (!r.ok()) {
      throw Error(ExitCode::failure,
                  "cannot restore " + req.source.describe() + " into " + util::quoted(req.target) +
                      ": pg_restore failed: " + tool_failure(r),
                  {"it ran in one transaction: " + req.target + " is as it was"});
    }
  }
  return result;
}

}  // namespace

SourceKind classify_path(const fs::path& path) {
  std::string s = path.filename().string();
  if (ends_with(s, k_archive_suffix)) return SourceKind::backup;
  if (ends_with(s, ".sql")) return SourceKind::sql;
  if (ends_with(s, ".sql.gz")) return SourceKind::sql_gz;
  return SourceKind::archive;
}

std::string to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::backup:
      return "backup";
    case SourceKind::sql:
      return "plain SQL";
    case SourceKind::sql_gz:
      return "gzip-compressed SQL";
    case SourceKind::archive:
      return "pg_dump archive";
  }
  return "?";
}

std::string RestoreSource::describe() const {
  if (kind == SourceKind::backup) {
    return "backup " + name + (store ? " (" + store->describe() + ")" : "");
  }
  return to_string(kind) + " " + util::quoted(path.string());
}

std::optional<int> archive_dump_major(const std::string& list_output) {
  const std::string key = "Dumped by pg_dump version:";
  auto at = list_output.find(key);
  if (at == std::string::npos) return std::nullopt;
  auto end = list_output.find('\n', at);
  return parse_tool_major(list_output.substr(at + key.size(), end - at - key.size()));
}

RestoreResult restore(db::Connection& conn, const RestoreRequest& req) {
  if (req.source.kind == SourceKind::backup) {
    // Refused before anything is created: a manifest not to be trusted, a missing or wrong key.
    check_key(read_manifest(*req.source.store, req.source.name), req.encryption_key,
              req.source.store->describe());
  }
  if (req.clean) return restore_in_place(conn, req);
  core::remove_stale_temporaries(conn);
  auto all = core::list_databases(conn);
  refuse_protected(req, all);
  auto existing_it = std::find_if(
      all.begin(), all.end(), [&](const core::DatabaseInfo& d) { return d.name == req.target; });
  std::optional<core::DatabaseInfo> existing;
  if (existing_it != all.end()) existing = *existing_it;
  if (auto why = swap_impossible(conn, req.target)) {
    throw Error(
        ExitCode::refused,
        "cannot restore into " + util::quoted(req.target) + " through a new database: " + *why,
        {existing ? "pass --clean to restore in place (drops and re-creates its objects "
                    "in one transaction; no copy of the original is kept)"
                  : "as a superuser, run: ALTER ROLE ... CREATEDB;"});
  }
  if (existing) {
    // Fail early, before a long restore: the swap checks again under the name lock.
    auto sessions = core::idle_or_sessions(conn, req.target, std::chrono::seconds(1));
    if (!sessions.empty() && !req.terminate_sessions) {
      throw Error(ExitCode::refused,
                  "database " + util::quoted(req.target) + " has " +
                      std::to_string(sessions.size()) +
                      " session(s) connected: " + core::describe_sessions(sessions),
                  {"the restored database replaces it by a rename, which needs it idle: stop "
                   "those clients, or pass --terminate-sessions to close them"});
    }
  }
  auto props = existing ? core::read_properties(conn, req.target) : std::nullopt;

  auto reg = core::Registry::open(conn);
  std::string temp = core::temp_database_name();
  db::AdvisoryLock build_lock(conn, core::build_lock_key(temp), std::chrono::seconds(5), temp);
  core::Metadata meta;
  if (existing && existing->meta) {
    meta = *existing->meta;
  } else {
    meta.kind = core::Kind::personal;
    meta.created_by = req.created_by;
  }
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  long long row = reg.begin_build(temp, req.target, meta);
  RestoreResult result;
  result.database = req.target;
  try {
    std::string create = "CREATE DATABASE " + conn.quote_ident(temp) + " TEMPLATE template0";
    if (props) {
      create += " ENCODING " + conn.quote_literal(props->encoding) + " LC_COLLATE " +
                conn.quote_literal(props->collate) + " LC_CTYPE " +
                conn.quote_literal(props->ctype);
    }
    conn.exec(create);
    reg.built(row, temp);
    load_into(conn, req, temp, result.tool);
    if (existing) {
      core::SwapRequest swap;
      swap.target = req.target;
      swap.replacement = temp;
      swap.timestamp = req.timestamp;
      swap.terminate_sessions = req.terminate_sessions;
      swap.replacement_row = row;
      swap.protection = req.protection;
      swap.allow_protected = req.allow_protected;
      swap.created_by = req.created_by;
      result.swap = core::swap_database(conn, swap);
    } else {
      db::AdvisoryLock name_lock(conn, core::spawn_lock_key(req.target), lock_timeout_of(conn),
                                 "database " + util::quoted(req.target));
      conn.exec("ALTER DATABASE " + conn.quote_ident(temp) + " RENAME TO " +
                conn.quote_ident(req.target));
      reg.finished(row, req.target);
      result.created = true;
    }
  } catch (...) {
    core::drop_temporary(conn, temp);
    try {
      reg.remove_row(row);
    } catch (const std::exception& e) {
      util::log::warn(std::string("could not update the registry: ") + e.what());
    }
    throw;
  }
  return result;
}

// ---- rollback ----------------------------------------------------------------------------------

std::optional<std::string> choose_rollback(const std::vector<BackupInfo>& all,
                                           const std::string& database,
                                           const std::optional<HistoryHead>& current) {
  if (!current) return std::nullopt;
  auto precedes = [&](const std::optional<HistoryHead>& head) {
    if (!head) return true;
    if (head->id == current->id) return false;
    if (head->finished_at != current->finished_at) return head->finished_at < current->finished_at;
    return head->id < current->id;
  };
  std::optional<std::string> best;
  std::string best_time;
  for (const auto& b : all) {
    if (!b.manifest || b.manifest->database != database) continue;
    if (!precedes(b.manifest->history_head)) continue;
    if (!best || b.manifest->created_at >= best_time) {
      best = b.name;
      best_time = b.manifest->created_at;
    }
  }
  return best;
}

std::vector<std::pair<std::string, std::string>> applied_migrations(db::Connection& conn) {
  std::vector<std::pair<std::string, std::string>> out;
  auto exists = conn.exec("SELECT to_regclass('_previewdb.schema_migrations') IS NOT NULL");
  if (!exists.get_bool(0, 0)) return out;
  auto r = conn.exec(
      "SELECT id, coalesce(name, '') FROM _previewdb.schema_migrations WHERE status = 'applied' "
      "ORDER BY id");
  for (int i = 0; i < r.rows(); ++i) out.emplace_back(r.get(i, 0), r.get(i, 1));
  return out;
}

std::vector<std::string> mark_removed_prisma_migrations(db::Connection& conn,
                                                        const std::set<std::string>& present) {
  std::vector<std::string> marked;
  auto exists = conn.exec("SELECT to_regclass('public._prisma_migrations') IS NOT NULL");
  if (!exists.get_bool(0, 0)) return marked;
  auto r = conn.exec(
      "SELECT id, migration_name FROM public._prisma_migrations "
      "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY started_at, "
      "migration_name");
  for (int i = 0; i < r.rows(); ++i) {
    if (present.count(r.get(i, 1))) continue;
    conn.exec("UPDATE public._prisma_migrations SET rolled_back_at = now() WHERE id = $1",
              {r.get(i, 0)});
    marked.push_back(r.get(i, 1));
  }
  return marked;
}

}  // namespace previewdb::backup
