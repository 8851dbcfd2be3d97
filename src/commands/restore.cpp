// `previewdb restore [BACKUP] [--into DB]` and `previewdb rollback [DB]`: wiring for
// backup::restore (which builds a new database and swaps it in through core::swap_database).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "backup/backup.hpp"
#include "backup/restore.hpp"
#include "commands/common.hpp"
#include "core/catalog.hpp"
#include "core/naming.hpp"
#include "migrate/readers.hpp"
#include "storage/store.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"

namespace fs = std::filesystem;

namespace previewdb::commands {

namespace {

void add_restore_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options()
      ("store", "where backups live: a folder, file://DIR or s3://BUCKET/PREFIX (default "
       "./backups, BACKUP_DIR)",
       cxxopts::value<std::string>(), "URL")
      ("to", "alias of --store", cxxopts::value<std::string>(), "URL")
      ("encryption-key-file", "a file holding the key of an encrypted backup (hex or base64; "
       "default PREVIEWDB_ENCRYPTION_KEY)", cxxopts::value<std::string>(), "FILE")
      ("terminate-sessions", "close the sessions connected to the database (a rename needs it idle)")
      ("clean", "restore in place (pg_restore --clean --if-exists, one transaction): for when a "
                "swap is impossible (no CREATEDB, not the owner); keeps no copy of the original")
      ("allow-protected", "restore over a protected database (asks for confirmation)")
      ("y,yes", "do not ask for confirmation (needed without a terminal)")
      ("json", "print the result as JSON");
  // clang-format on
}

// S3 settings and the archive key (PREVIEWDB_ENCRYPTION_KEY, --encryption-key-file).
storage::StoreOptions restore_store_options(const cxxopts::ParseResult& parsed,
                                            const config::Config& cfg) {
  std::optional<std::string> key_file;
  if (parsed.count("encryption-key-file"))
    key_file = parsed["encryption-key-file"].as<std::string>();
  return store_options(cfg, key_file);
}

// --store, else --to, else BACKUP_DIR / previewdb.json / ./backups (as `backup` reads them).
std::unique_ptr<storage::SnapshotStore> open_store_option(const cxxopts::ParseResult& parsed,
                                                          const config::Config& cfg) {
  if (parsed.count("store") && parsed.count("to")) {
    throw usage_error("--store and --to name the same setting; give one of them");
  }
  std::string where =
      parsed.count("to") ? parsed["to"].as<std::string>() : cfg.get_string("backup_store");
  return storage::open_store(storage::store_url_from(where), restore_store_options(parsed, cfg));
}

// The database the target URL names (DATABASE_URL's path, PGDATABASE), or "".
std::string url_database(const Target& target) {
  return db::parse_conninfo(target.conninfo).get("dbname").value_or("");
}

struct Chosen {
  backup::RestoreSource source;
  std::unique_ptr<storage::SnapshotStore> store;  // keeps source.store alive
  std::optional<backup::Manifest> manifest;
};

// What BACKUP names: a file path (a .sql, .sql.gz, a pg_dump archive, or a backup's .dump.zst in
// some folder), else a backup name or label in the store; nothing: the newest backup of `db`.
Chosen choose_source(const std::optional<std::string>& wanted, const cxxopts::ParseResult& parsed,
                     const config::Config& cfg, const std::string& db) {
  Chosen c;
  std::error_code ec;
  if (wanted && wanted->find("://") == std::string::npos &&
      (wanted->find('/') != std::string::npos || fs::is_regular_file(*wanted, ec))) {
    fs::path p = *wanted;
    if (!fs::is_regular_file(p, ec)) {
      throw usage_error("cannot restore " + util::quoted(*wanted) + ": no such file",
                        {"name a backup (see 'previewdb backup list'), a .sql/.sql.gz file or a "
                         "pg_dump archive"});
    }
    auto kind = backup::classify_path(p);
    if (kind != backup::SourceKind::backup) {
      c.source.kind = kind;
      c.source.path = p;
      return c;
    }
    c.store = storage::open_store(
        storage::store_url_from(p.has_parent_path() ? p.parent_path().string() : std::string(".")),
        restore_store_options(parsed, cfg));
    std::string file = p.filename().string();
    c.source.name = file.substr(0, file.size() - std::string(backup::k_archive_suffix).size());
  } else {
    c.store = open_store_option(parsed, cfg);
    auto all = backup::list_backups(*c.store);
    if (wanted) {
      auto found = backup::resolve_backup(all, *wanted);
      if (!found) {
        throw Error(ExitCode::not_found,
                    "no backup " + util::quoted(*wanted) + " in " + c.store->describe(),
                    {"list them with 'previewdb backup list --store " + c.store->describe() + "'"});
      }
      c.source.name = *found;
    } else {
      if (db.empty()) {
        throw usage_error("restore needs a backup or a database",
                          {"name a backup, or the database with --into DB"});
      }
      for (const auto& b : all)  // oldest first: the last match is the newest
        if (b.manifest && b.manifest->database == db) c.source.name = b.name;
      if (c.source.name.empty()) {
        throw Error(ExitCode::not_found,
                    "no backup of " + util::quoted(db) + " in " + c.store->describe(),
                    {"make one with 'previewdb backup " + db + "'"});
      }
    }
  }
  c.source.kind = backup::SourceKind::backup;
  c.source.store = c.store.get();
  // Error(pending) without a manifest, Error(refused) for one not to be trusted.
  c.manifest = backup::read_manifest(*c.store, c.source.name);
  return c;
}

// Asks on a terminal; without one, --yes is the consent (cleanup's confirm(), whose hint names
// --dry-run, which restore does not have).
void ask(const std::string& what, bool yes) {
  if (!yes && !interactive()) {
    throw Error(ExitCode::refused, "refusing to " + what + " without confirmation: no terminal",
                {"pass --yes to confirm"});
  }
  confirm(what, yes);
}

// Protected: --allow-protected and a confirmation; --clean keeps no copy: a confirmation.
void check_consent(db::Connection& maintenance, const core::Protection& protection,
                   const std::string& db, const cxxopts::ParseResult& parsed) {
  auto all = core::list_databases(maintenance);
  bool exists = std::any_of(all.begin(), all.end(),
                            [&](const core::DatabaseInfo& d) { return d.name == db; });
  if (!exists) return;
  bool yes = parsed.count("yes") > 0;
  if (auto why = protection.reason(db, all)) {
    if (!parsed.count("allow-protected")) {
      throw Error(ExitCode::refused,
                  "refusing to restore into database " + util::quoted(db) + ": it is protected (" +
                      *why + ")",
                  {"pass --allow-protected (and --yes without a terminal) to restore it anyway"});
    }
    ask(std::string("replace the protected database ") + util::quoted(db) +
            (parsed.count("clean") ? " in place (no copy is kept)" : ""),
        yes);
  } else if (parsed.count("clean")) {
    ask("drop and re-create the objects of " + util::quoted(db) + " (no copy is kept)", yes);
  }
}

nlohmann::json result_json(const backup::RestoreResult& r, const backup::RestoreSource& source) {
  nlohmann::json j = {
      {"database", r.database},
      {"source", source.kind == backup::SourceKind::backup ? source.name : source.path.string()},
      {"kind", backup::to_string(source.kind)},
      {"created", r.created},
      {"in_place", r.in_place},
      {"tool", r.tool},
      {"kept_as", nullptr},
      {"kept_managed", false},
      {"terminated_sessions", nlohmann::json::array()}};
  if (r.swap) {
    j["kept_as"] = r.swap->kept_as;
    j["kept_managed"] = r.swap->kept_managed;
    for (const auto& s : r.swap->terminated) {
      j["terminated_sessions"].push_back(
          {{"pid", s.pid}, {"user", s.user}, {"application", s.application}, {"client", s.client}});
    }
  }
  return j;
}

void report(const backup::RestoreResult& r, const backup::RestoreSource& source, double seconds) {
  std::string secs = std::to_string(seconds).substr(0, 5);
  if (r.in_place) {
    util::log::info("restored " + source.describe() + " into " + util::quoted(r.database) +
                    " in place (" + r.tool + ", " + secs + " s)");
    return;
  }
  util::log::info("restored " + source.describe() + " into " +
                  (r.created ? "a new database " : "") + util::quoted(r.database) + " (" + r.tool +
                  ", " + secs + " s)");
  if (!r.swap) return;
  if (!r.swap->terminated.empty()) {
    util::log::info("terminated " + std::to_string(r.swap->terminated.size()) +
                    " session(s): " + core::describe_sessions(r.swap->terminated));
  }
  util::log::info("the original is kept as " + util::quoted(r.swap->kept_as) +
                  " until you remove it: previewdb cleanup " + r.swap->kept_as +
                  (r.swap->kept_managed
                       ? ""
                       : " --include-unmanaged (it is owned by " + r.swap->kept_owner +
                             ", not by previewdb's role, so previewdb does not manage it)"));
}

backup::RestoreResult run_restore_request(db::Connection& maintenance, backup::RestoreRequest& req,
                                          const cxxopts::ParseResult& parsed,
                                          const config::Config& cfg, const Target& target) {
  auto protection = make_protection(cfg);
  check_consent(maintenance, protection, req.target, parsed);
  req.conninfo = target.conninfo;
  req.protection = &protection;
  req.allow_protected = parsed.count("allow-protected") > 0;
  req.terminate_sessions = parsed.count("terminate-sessions") > 0;
  req.clean = parsed.count("clean") > 0;
  req.timestamp = util::compact_timestamp(std::chrono::system_clock::now());
  req.created_by = "previewdb restore (" + resolve_creator(cfg) + ")";
  req.encryption_key = restore_store_options(parsed, cfg).encryption_key;
  auto start = std::chrono::steady_clock::now();
  req.progress = [start, name = req.target](std::uint64_t raw, std::uint64_t compressed) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    util::log::info("restoring " + name + ": " + util::human_bytes(static_cast<double>(raw)) +
                    " restored (" + util::human_bytes(static_cast<double>(compressed)) +
                    " read), " + util::human_bytes(secs > 0 ? static_cast<double>(raw) / secs : 0) +
                    "/s");
  };
  auto result = db::naming_lost_connection("restoring " + util::quoted(req.target),
                                           "run 'previewdb list' to see what is there",
                                           [&] { return backup::restore(maintenance, req); });
  report(result, req.source,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return result;
}

}  // namespace

int run_restore(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Restore a backup into a new database built under a temporary name, then swap it in for DB\n"
      "(the original is kept as DB_before_restore_<YYYYMMDD_HHMMSS> until 'cleanup').\n"
      "  previewdb restore [BACKUP] [--into DB]\n"
      "BACKUP: a backup name or label in the store, a path to a .dump.zst, .sql, .sql.gz or a\n"
      "pg_dump archive; default: the newest backup of DB. DB: --into, else the backup's database,\n"
      "else the target URL's database.");
  add_common_options(options);
  add_restore_options(options);
  // clang-format off
  options.add_options()
      ("into", "the database to restore into (created when it does not exist)",
       cxxopts::value<std::string>(), "DB")
      ("backup", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"backup"});
  options.positional_help("[BACKUP]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::optional<std::string> wanted;
  if (parsed->count("backup")) {
    auto v = (*parsed)["backup"].as<std::vector<std::string>>();
    if (v.size() > 1) {
      throw usage_error("restore takes one backup, got " + std::to_string(v.size()),
                        {"choose the database with --into DB"});
    }
    wanted = v[0];
  }
  std::optional<std::string> into;
  if (parsed->count("into")) {
    into = (*parsed)["into"].as<std::string>();
    core::validate_name(*into, "--into database name");
  }
  auto target = resolve_target(cfg);
  std::string db = into.value_or("");
  if (db.empty() && !wanted) db = url_database(target);
  auto chosen = choose_source(wanted, *parsed, cfg, db);
  if (db.empty()) db = chosen.manifest ? chosen.manifest->database : url_database(target);
  if (db.empty()) {
    throw usage_error("which database should " + chosen.source.describe() + " be restored into?",
                      {"name it with --into DB"});
  }
  core::validate_name(db, "database name");
  auto maintenance = connect_maintenance(target, lock_timeout_setting(cfg));
  backup::RestoreRequest req;
  req.target = db;
  req.source = chosen.source;
  auto result = run_restore_request(maintenance, req, *parsed, cfg, target);
  if (parsed->count("json")) {
    std::cout << result_json(result, req.source).dump(2) << "\n";
  } else {
    std::cout << result.database << "\n";
  }
  return 0;
}

int run_rollback(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Restore the newest backup of DB taken before its last migration run (whose manifest's\n"
      "history head precedes the current head), then report the migrations no longer applied.\n"
      "Prisma: rows of _prisma_migrations whose folder is gone get rolled_back_at.\n"
      "  previewdb rollback [DB]   (default: the target URL's database)");
  add_common_options(options);
  add_restore_options(options);
  // clang-format off
  options.add_options()
      ("dir", "the migrations folder (for Prisma's rolled_back_at)", cxxopts::value<std::string>(),
       "DIR")
      ("database", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"database"});
  options.positional_help("[DB]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::optional<std::string> named = one_positional_database(*parsed, "database", "rollback");
  auto target = resolve_target(cfg);
  std::string db = named.value_or(url_database(target));
  if (db.empty()) {
    throw usage_error("rollback needs a database", {"name it: previewdb rollback DB"});
  }
  core::validate_name(db, "database name");
  auto store = open_store_option(*parsed, cfg);

  std::optional<backup::HistoryHead> head;
  std::vector<std::pair<std::string, std::string>> before;
  {
    // Closed before the restore: a session of our own would keep the rename from happening.
    db::Connection conn = [&] {
      try {
        return db::Connection::open({.conninfo = target.conninfo, .dbname = db});
      } catch (const Error& e) {
        if (e.code() != ExitCode::not_found) throw;
        throw Error(ExitCode::not_found, "no database " + util::quoted(db) + " to roll back",
                    {"check the name with 'previewdb list'"});
      }
    }();
    head = backup::current_history_head(conn);
    before = backup::applied_migrations(conn);
  }
  auto all = backup::list_backups(*store);
  auto name = backup::choose_rollback(all, db, head);
  if (!name) {
    throw Error(
        ExitCode::not_found,
        head ? "no backup of " + util::quoted(db) + " in " + store->describe() +
                   " was taken before its last migration (" + head->id + " " + head->name + ")"
             : "nothing to roll back: " + util::quoted(db) +
                   " has no migrations applied by previewdb",
        {head ? "restore a chosen backup with 'previewdb restore BACKUP --into " + db +
                    "', and take one before migrating next time ('previewdb backup " + db + "')"
              : "restore a chosen backup with 'previewdb restore BACKUP'"});
  }
  util::log::info("rolling " + util::quoted(db) + " back to backup " + *name + " (taken before " +
                  head->id + " " + head->name + ")");
  auto maintenance = connect_maintenance(target, lock_timeout_setting(cfg));
  backup::RestoreRequest req;
  req.target = db;
  req.source.kind = backup::SourceKind::backup;
  req.source.store = store.get();
  req.source.name = *name;
  auto result = run_restore_request(maintenance, req, *parsed, cfg, target);

  auto conn = db::Connection::open({.conninfo = target.conninfo, .dbname = db});
  auto after = backup::applied_migrations(conn);
  std::set<std::string> still;
  for (const auto& [id, n] : after) still.insert(id);
  std::vector<std::pair<std::string, std::string>> gone;
  for (const auto& m : before)
    if (!still.count(m.first)) gone.push_back(m);
  for (const auto& [id, n] : gone) {
    util::log::info("no longer applied: " + util::printable(id) +
                    (n.empty() ? "" : " " + util::printable(n)));
  }
  if (gone.empty()) util::log::info("every migration applied before is still applied");

  std::vector<std::string> marked;
  fs::path dir = parsed->count("dir") ? fs::path((*parsed)["dir"].as<std::string>())
                                      : cfg.get_path("migrations_dir");
  std::error_code ec;
  if (fs::is_directory(dir, ec) && migrate::detect_format(dir) == migrate::Format::prisma) {
    auto set = migrate::read_migrations({.dir = dir, .format = "prisma"});
    std::set<std::string> present;
    for (const auto& m : set.migrations) present.insert(m.id);
    marked = backup::mark_removed_prisma_migrations(conn, present);
    for (const auto& m : marked) {
      util::log::info("marked " + util::printable(m) +
                      " rolled back in _prisma_migrations (its folder is gone from " +
                      dir.string() + ")");
    }
  }
  if (parsed->count("json")) {
    auto j = result_json(result, req.source);
    j["backup"] = *name;
    j["no_longer_applied"] = nlohmann::json::array();
    for (const auto& [id, n] : gone) j["no_longer_applied"].push_back({{"id", id}, {"name", n}});
    j["prisma_rolled_back"] = marked;
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << *name << "\n";
  }
  return 0;
}

}  // namespace previewdb::commands
