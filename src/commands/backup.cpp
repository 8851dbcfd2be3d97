#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "backup/backup.hpp"
#include "commands/common.hpp"
#include "storage/store.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

namespace {

// Progress lines on stderr: bytes so far and the rate.
backup::Progress progress_printer(const std::string& what) {
  auto start = std::chrono::steady_clock::now();
  return [what, start](std::uint64_t raw, std::uint64_t compressed) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    util::log::info(what + ": " + util::human_bytes(static_cast<double>(raw)) + " read, " +
                    util::human_bytes(static_cast<double>(compressed)) + " compressed, " +
                    util::human_bytes(secs > 0 ? static_cast<double>(raw) / secs : 0) + "/s");
  };
}

void add_store_options(cxxopts::Options& options) {
  // clang-format off
  options.add_options()
      ("store", "where backups live: a folder, file://DIR or s3://BUCKET/PREFIX (default "
       "./backups, BACKUP_DIR)",
       cxxopts::value<std::string>(), "URL")
      ("to", "alias of --store", cxxopts::value<std::string>(), "URL")
      ("encryption-key-file", "a file holding the 32-byte archive key (hex or base64; default "
       "PREVIEWDB_ENCRYPTION_KEY)", cxxopts::value<std::string>(), "FILE");
  // clang-format on
}

std::optional<std::string> key_file_option(const cxxopts::ParseResult& parsed) {
  if (!parsed.count("encryption-key-file")) return std::nullopt;
  return parsed["encryption-key-file"].as<std::string>();
}

// --store, else --to, else BACKUP_DIR / previewdb.json / ./backups.
std::unique_ptr<storage::SnapshotStore> open_backup_store(const cxxopts::ParseResult& parsed,
                                                          const config::Config& cfg,
                                                          const storage::StoreOptions& so) {
  if (parsed.count("store") && parsed.count("to")) {
    throw usage_error("--store and --to name the same setting; give one of them");
  }
  std::string where =
      parsed.count("to") ? parsed["to"].as<std::string>() : cfg.get_string("backup_store");
  return storage::open_store(storage::store_url_from(where), so);
}

// Backups whose manifest is not to be trusted: named in a warning, left out of every choice.
void warn_invalid(const std::vector<backup::BackupInfo>& all) {
  for (const auto& b : all) {
    if (b.invalid) util::log::warn("skipped backup " + util::printable(b.name) + ": " + *b.invalid);
  }
}

// The original scripts warned when the bucket held more than 5; retention set to keep more
// raises the bar to what it keeps.
void warn_crowded(const std::vector<backup::BackupInfo>& all, size_t keep,
                  const storage::SnapshotStore& store) {
  for (const auto& [db, n] : backup::crowded_databases(all, keep)) {
    util::log::warn(std::to_string(n) + " backups of '" + util::printable(db) + "' are in " +
                    store.describe() + "; remove old ones with 'previewdb backup prune --keep " +
                    std::to_string(std::max(backup::k_backup_warn_count, keep)) + " --store " +
                    store.describe() + "'");
  }
}

nlohmann::json backup_json(const backup::BackupInfo& b, std::chrono::system_clock::time_point now) {
  nlohmann::json j = {{"name", b.name}, {"size_bytes", b.size}, {"valid", !b.invalid}};
  if (b.invalid) {
    j["reason"] = *b.invalid;
    j["complete"] = false;
    return j;
  }
  if (!b.manifest) {
    j["complete"] = false;
    return j;
  }
  const auto& m = *b.manifest;
  auto created = util::parse_iso8601(m.created_at);
  j["complete"] = true;
  j["database"] = m.database;
  j["created_at"] = m.created_at;
  j["age_seconds"] =
      created
          ? nlohmann::json(std::chrono::duration_cast<std::chrono::seconds>(now - *created).count())
          : nlohmann::json(nullptr);
  j["label"] = m.label ? nlohmann::json(*m.label) : nlohmann::json(nullptr);
  j["size_raw"] = m.size_raw;
  j["verified"] = m.verified_at.has_value();
  j["verified_at"] = m.verified_at ? nlohmann::json(*m.verified_at) : nlohmann::json(nullptr);
  j["encrypted"] = m.encryption_key_id.has_value();
  j["key_id"] =
      m.encryption_key_id ? nlohmann::json(*m.encryption_key_id) : nlohmann::json(nullptr);
  return j;
}

int backup_list(const Args& args) {
  cxxopts::Options options(args[0] + " list", "List the backups in a store, oldest first.");
  add_common_options(options);
  add_store_options(options);
  options.add_options()("json", "print a JSON array");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  auto store = open_backup_store(*parsed, cfg, store_options(cfg, key_file_option(*parsed)));
  auto all = backup::list_backups(*store);
  auto now = std::chrono::system_clock::now();
  warn_invalid(all);
  warn_crowded(all, static_cast<size_t>(cfg.get_int("max_backups", 1, 100000)), *store);
  if (parsed->count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : all) out.push_back(backup_json(b, now));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::erase_if(all, [](const backup::BackupInfo& b) { return b.invalid.has_value(); });
  if (all.empty()) {
    util::log::info("no backups in " + store->describe() + "; make one with 'previewdb backup'");
    return 0;
  }
  std::printf("%-44s %-10s %-8s %-9s %s\n", "BACKUP", "SIZE", "AGE", "VERIFIED", "LABEL");
  for (const auto& b : all) {
    std::string age = "?", verified = "no", label;
    if (b.manifest) {
      if (auto created = util::parse_iso8601(b.manifest->created_at))
        age = util::format_age(std::chrono::duration_cast<std::chrono::seconds>(now - *created));
      verified = b.manifest->verified_at ? "yes" : "no";
      label = b.manifest->label.value_or("");
      if (b.manifest->encryption_key_id) label += label.empty() ? "(encrypted)" : " (encrypted)";
    } else {
      verified = "incomplete";
    }
    char row[1024];
    std::snprintf(row, sizeof row, "%-44s %-10s %-8s %-9s %s", util::printable(b.name).c_str(),
                  util::human_bytes(static_cast<double>(b.size)).c_str(), age.c_str(),
                  verified.c_str(), util::printable(label).c_str());
    std::printf("%s\n", util::workflow::neutralize_commands(row).c_str());
  }
  return 0;
}

int backup_verify(const Args& args) {
  cxxopts::Options options(
      args[0] + " verify",
      "Read a backup back in full: decompress, SHA-256 against its manifest, pg_restore reads\n"
      "every entry. Exit 0: good; 9: damaged. Default: the newest backup in the store.");
  add_common_options(options);
  add_store_options(options);
  // clang-format off
  options.add_options()
      ("restore-test", "also restore into a scratch database on the server, dropped afterwards")
      ("json", "print the result as JSON")
      ("backup", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"backup"});
  options.positional_help("[NAME|PATH|LABEL]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::optional<std::string> wanted =
      one_positional_database(*parsed, "backup", "backup verify", "backup");
  auto so = store_options(cfg, key_file_option(*parsed));
  std::unique_ptr<storage::SnapshotStore> store;
  // A path to an archive names its store too.
  if (wanted && (wanted->find('/') != std::string::npos) &&
      wanted->find("://") == std::string::npos) {
    std::filesystem::path p = *wanted;
    store = storage::open_store(
        storage::store_url_from(p.has_parent_path() ? p.parent_path().string() : std::string(".")),
        so);
    wanted = p.filename().string();
  } else {
    store = open_backup_store(*parsed, cfg, so);
  }
  auto all = backup::list_backups(*store);
  std::string name;
  if (wanted) {
    auto found = backup::resolve_backup(all, *wanted);
    if (!found) {
      throw Error(ExitCode::not_found,
                  "no backup " + util::quoted(*wanted) + " in " + store->describe(),
                  {"list them with 'previewdb backup list --store " + store->describe() + "'"});
    }
    name = *found;
  } else {
    if (all.empty()) {
      throw Error(ExitCode::not_found, "no backups in " + store->describe(),
                  {"make one with 'previewdb backup'"});
    }
    // The newest one that can be trusted (the others are named in a warning).
    warn_invalid(all);
    std::erase_if(all, [](const backup::BackupInfo& b) { return b.invalid.has_value(); });
    if (all.empty()) {
      throw Error(ExitCode::refused,
                  "no backup in " + store->describe() + " has a manifest that can be trusted",
                  {"make a new one with 'previewdb backup'"});
    }
    name = all.back().name;
  }
  backup::VerifyOptions vo;
  vo.progress = progress_printer("verifying " + name);
  vo.encryption_key = so.encryption_key;
  std::optional<db::Connection> maintenance;
  if (parsed->count("restore-test")) {
    auto target = resolve_target(cfg);
    maintenance.emplace(connect_maintenance(target));
    vo.maintenance = &*maintenance;
    vo.conninfo = target.conninfo;
  }
  auto result = backup::verify_backup(*store, name, vo);
  if (result.ok) {
    // A read-only store can still be verified: the record of it is a convenience.
    try {
      backup::mark_verified(*store, *result.manifest,
                            util::to_iso8601(std::chrono::system_clock::now()));
    } catch (const Error& e) {
      util::log::warn(std::string("could not record the verification in the manifest: ") +
                      e.what());
    }
  }
  if (parsed->count("json")) {
    std::cout << nlohmann::json{{"name", name},
                                {"ok", result.ok},
                                {"restore_test", vo.maintenance != nullptr},
                                {"problems", result.problems}}
                     .dump(2)
              << "\n";
  }
  if (!result.ok) {
    for (const auto& p : result.problems) util::log::warn(name + ": " + p);
    throw Error(ExitCode::pending, "backup " + name + " is damaged",
                {"do not rely on it; make a new one with 'previewdb backup'"});
  }
  util::log::info("backup " + name + " is good (" +
                  util::human_bytes(static_cast<double>(result.size_raw)) + " dump" +
                  (vo.maintenance ? ", restore test passed" : "") + ")");
  if (!parsed->count("json")) std::cout << name << "\n";
  return 0;
}

// backup prune --keep N --store URL: the retention `backup --keep` applies after each backup, for
// every database in the store (or --database DB), on demand.
int backup_prune(const Args& args) {
  cxxopts::Options options(args[0] + " prune",
                           "Delete old backups, keeping the newest N unnamed backups of each "
                           "database.\nNamed (--name) backups and incomplete ones are never "
                           "deleted; neither is the newest.");
  add_common_options(options);
  add_store_options(options);
  // clang-format off
  options.add_options()
      ("keep", "how many unnamed backups to keep per database (required; at least 1)",
       cxxopts::value<std::string>(), "N")
      ("keep-days", "also delete unnamed backups older than D days",
       cxxopts::value<std::string>(), "D")
      ("database", "only backups of this database", cxxopts::value<std::string>(), "DB")
      ("dry-run", "show what would be deleted")
      ("y,yes", "do not ask for confirmation")
      ("json", "print the result as JSON");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  if (!parsed->count("keep")) {
    throw usage_error("backup prune needs --keep N",
                      "for example: previewdb backup prune --keep 3 --store ./backups");
  }
  auto cfg = load_config(*parsed);
  // --keep is the max_backups setting's flag: checked (1-100000) by the typed getter.
  backup::RetentionPolicy policy;
  policy.keep = static_cast<size_t>(cfg.get_int("max_backups", 1, 100000));
  if (auto days = cfg.find_int("backup_keep_days", 1, 100000))
    policy.keep_days = std::chrono::hours(24 * *days);
  std::optional<std::string> database;
  if (parsed->count("database")) database = (*parsed)["database"].as<std::string>();
  auto store = open_backup_store(*parsed, cfg, store_options(cfg, key_file_option(*parsed)));
  auto all = backup::list_backups(*store);
  warn_invalid(all);
  auto drop = backup::plan_prune(all, database, policy, std::chrono::system_clock::now());
  bool dry = parsed->count("dry-run") > 0;
  nlohmann::json dropped = nlohmann::json::array();
  if (drop.empty()) {
    util::log::info("nothing to prune in " + store->describe());
  } else {
    for (const auto& name : drop) {
      util::log::info(std::string(dry ? "would delete " : "will delete ") + util::printable(name) +
                      " from " + store->describe());
    }
    if (!dry) {
      confirm("delete " + std::to_string(drop.size()) + " backup(s)", parsed->count("yes") > 0);
      for (const auto& name : drop) {
        backup::remove_backup(*store, name);
        dropped.push_back(name);
        if (!parsed->count("json")) std::cout << name << "\n";
      }
    }
  }
  if (parsed->count("json")) {
    std::cout << nlohmann::json{{"dry_run", dry},
                                {"dropped", dry ? nlohmann::json::array() : dropped},
                                {"would_drop",
                                 dry ? nlohmann::json(drop) : nlohmann::json::array()},
                                {"kept", all.size() - drop.size()},
                                {"store", store->describe()}}
                     .dump(2)
              << "\n";
  }
  return 0;
}

}  // namespace

int run_backup(const Args& args) {
  if (args.size() > 1 && (args[1] == "list" || args[1] == "verify" || args[1] == "prune")) {
    Args rest = {args[0]};
    rest.insert(rest.end(), args.begin() + 2, args.end());
    if (args[1] == "prune") return backup_prune(rest);
    return args[1] == "list" ? backup_list(rest) : backup_verify(rest);
  }
  cxxopts::Options options(
      args[0],
      "Back up DB (default: the target's database) into a store, verify it, apply retention.\n"
      "  previewdb backup [DB] [--store DIR] [--name LABEL] [--keep N] [--keep-days D] "
      "[--encrypt]\n"
      "  previewdb backup list [--json]\n"
      "  previewdb backup verify [NAME|PATH|LABEL] [--restore-test]\n"
      "  previewdb backup prune --keep N [--store URL] [--dry-run] [--yes]");
  add_common_options(options);
  add_store_options(options);
  // clang-format off
  options.add_options()
      ("name", "a label: a kept, named backup that retention never deletes",
       cxxopts::value<std::string>(), "LABEL")
      ("level", "zstd compression level 1-19 (default 3)", cxxopts::value<std::string>(), "N")
      ("keep", "keep the newest N unnamed backups of DB (default 7, MAX_BACKUPS)",
       cxxopts::value<std::string>(), "N")
      ("keep-days", "also delete unnamed backups of DB older than D days",
       cxxopts::value<std::string>(), "D")
      ("encrypt", "encrypt the archive (AES-256-GCM; key from PREVIEWDB_ENCRYPTION_KEY or "
       "--encryption-key-file)", cxxopts::value<std::string>()->implicit_value("true"), "BOOL")
      ("json", "print the manifest as JSON")
      ("database", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"database"});
  options.positional_help("[DB]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::optional<std::string> dbname = one_positional_database(*parsed, "database", "backup");
  int level = static_cast<int>(cfg.get_int("backup_level", 1, 19));
  auto keep = static_cast<size_t>(cfg.get_int("max_backups", 1, 100000));
  auto keep_days = cfg.find_int("backup_keep_days", 1, 100000);
  std::optional<std::string> label;
  if (parsed->count("name")) {
    label = (*parsed)["name"].as<std::string>();
    if (!backup::valid_label(*label)) {
      throw usage_error("invalid backup name " + util::quoted(*label),
                        "use 1-63 letters, digits, '.', '_' or '-', e.g. --name before-refactor");
    }
  }
  auto so = store_options(cfg, key_file_option(*parsed));
  bool encrypt = cfg.get_bool("encrypt");
  if (encrypt && !so.encryption_key) {
    throw usage_error("--encrypt needs a key",
                      "set PREVIEWDB_ENCRYPTION_KEY (32 bytes, hex or base64: 'openssl rand -hex "
                      "32') or pass --encryption-key-file FILE");
  }
  auto store = open_backup_store(*parsed, cfg, so);
  auto target = resolve_target(cfg);
  db::Connection conn = [&] {
    try {
      return db::Connection::open({.conninfo = target.conninfo, .dbname = dbname.value_or("")});
    } catch (const Error& e) {
      if (e.code() != ExitCode::not_found || !dbname) throw;
      throw Error(ExitCode::not_found, "no database " + util::quoted(*dbname) + " to back up",
                  {"check the name with 'previewdb list'"});
    }
  }();
  std::string database = conn.database();
  auto now = std::chrono::system_clock::now();
  backup::BackupRequest req;
  req.conninfo = target.conninfo;
  req.database = database;
  req.level = level;
  req.label = label;
  req.timestamp = util::compact_timestamp(now);
  req.created_at = util::to_iso8601(now);
  req.progress = progress_printer("backing up " + database);
  if (encrypt) req.encryption_key = so.encryption_key;
  util::log::info("backing up " + util::quoted(database) + " to " + store->describe());
  auto m = backup::create_backup(conn, *store, req);
  util::log::info("wrote " + m.name + ": " + util::human_bytes(static_cast<double>(m.size_raw)) +
                  " dump, " + util::human_bytes(static_cast<double>(m.size_compressed)) +
                  " compressed (zstd " + std::to_string(level) + ") in " +
                  std::to_string(m.duration_ms / 1000.0).substr(0, 5) + " s");
  // Retention runs only once the new backup is known good: a bad one never costs a good one.
  backup::VerifyOptions vo;
  vo.progress = progress_printer("verifying " + m.name);
  vo.toc_only = true;
  vo.encryption_key = so.encryption_key;
  auto v = backup::verify_backup(*store, m.name, vo);
  if (!v.ok) {
    for (const auto& p : v.problems) util::log::warn(m.name + ": " + p);
    throw Error(ExitCode::pending,
                "backup " + m.name + " failed its read-back check; no old backup was deleted",
                {"run 'previewdb backup verify " + m.name + "' to see it again"});
  }
  std::string verified_at = util::to_iso8601(std::chrono::system_clock::now());
  backup::mark_verified(*store, m, verified_at);
  m.verified_at = verified_at;
  backup::RetentionPolicy policy;
  policy.keep = keep;
  if (keep_days) policy.keep_days = std::chrono::hours(24 * *keep_days);
  auto listed = backup::list_backups(*store);
  auto drop = backup::plan_retention(listed, database, policy, now);
  for (const auto& name : drop) {
    backup::remove_backup(*store, name);
    util::log::info("deleted old backup " + name);
  }
  std::erase_if(listed, [&](const backup::BackupInfo& b) {
    return std::find(drop.begin(), drop.end(), b.name) != drop.end();
  });
  warn_invalid(listed);
  warn_crowded(listed, keep, *store);
  if (parsed->count("json")) {
    std::cout << backup::to_json(m);
  } else {
    std::cout << m.name << "\n";
  }
  return 0;
}

}  // namespace previewdb::commands
