#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands/common.hpp"
#include "commands/mask_options.hpp"
#include "core/catalog.hpp"
#include "core/naming.hpp"
#include "db/dialect.hpp"
#include "snapshot/cockroach_backups.hpp"
#include "snapshot/snapshot.hpp"
#include "storage/store.hpp"
#include "util/duration.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

namespace {

// More snapshots of one source than this gets a warning (as the original scripts did).
const size_t k_snapshot_warn_count = 5;

nlohmann::json snapshot_json(const core::DatabaseInfo& d) {
  return {
      {"id", d.name},
      {"source", d.meta->source.value_or("")},
      {"created_at", d.meta->created_at},
      {"created_by", d.meta->created_by},
      {"size_bytes", d.size_bytes >= 0 ? nlohmann::json(d.size_bytes) : nlohmann::json(nullptr)},
      {"masked", d.meta->mask_rules_sha256.has_value()},
      {"mask_rules_sha256", d.meta->mask_rules_sha256 ? nlohmann::json(*d.meta->mask_rules_sha256)
                                                      : nlohmann::json(nullptr)}};
}

void warn_over(size_t count, const std::string& source, const std::string& where) {
  if (count <= k_snapshot_warn_count) return;
  util::log::warn(std::to_string(count) + " snapshots of '" + util::printable(source) + "' exist" +
                  where + "; drop old ones with 'previewdb snapshot prune --keep " +
                  std::to_string(k_snapshot_warn_count) + "'");
}

// snapshot list/prune --store s3://... against CockroachDB: the store holds the cluster's BACKUP
// collections (<store>/<source>), which only the cluster reads (SHOW BACKUPS IN), not previewdb's
// archives. A session when the server is CockroachDB; nullopt otherwise (PostgreSQL, no server
// configured, or none reachable: the store's own listing, as before).
std::optional<db::Connection> cockroach_server(const config::Config& cfg,
                                               const std::string& store_url) {
  if (store_url.rfind("s3://", 0) != 0) return std::nullopt;
  auto target = resolve_target(cfg, false, /*start_local=*/false);
  if (target.embedded) return std::nullopt;
  try {
    auto conn = db::Connection::open(
        {.conninfo = target.conninfo, .busy_retry = std::chrono::milliseconds(0)});
    if (db::dialect_of(conn).template_databases) return std::nullopt;
    return conn;
  } catch (const Error& e) {
    // Said, not hidden: on CockroachDB the store's own listing does not show the cluster's
    // backups, so an unreachable cluster must not look like an empty store.
    util::log::warn(std::string("could not reach the configured server to ask whether it is "
                                "CockroachDB (") +
                    e.what() +
                    "); listing previewdb's own archives in the store. On CockroachDB, retry "
                    "when the cluster is reachable to list its BACKUP collections");
    return std::nullopt;
  }
}

std::string source_of(const cxxopts::ParseResult& parsed, const config::Config& cfg) {
  return parsed.count("source") ? parsed["source"].as<std::string>() : cfg.get_string("source");
}

nlohmann::json backup_json(const snapshot::CockroachBackup& b, const std::string& source) {
  return {{"id", util::redact_url(b.reference)},
          {"source", source},
          {"created_at", b.created_at},
          {"path", b.path},
          {"size_bytes", nullptr},
          {"masked", false},
          {"mask_rules_sha256", nullptr},
          {"store", util::redact_url(b.reference.substr(0, b.reference.size() - b.path.size()))}};
}

int snapshot_list_cockroach(const cxxopts::ParseResult& parsed, const config::Config& cfg,
                            db::Connection& conn, const std::string& store_url) {
  std::string source = source_of(parsed, cfg);
  core::validate_name(source, "source database");
  auto backups = snapshot::list_cockroach_backups(conn, store_url, source, store_options(cfg));
  std::string collection = util::redact_url(snapshot::cockroach_collection(store_url, source));
  if (parsed.count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& b : backups) out.push_back(backup_json(b, source));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (backups.empty()) {
    util::log::info("no backups of '" + util::printable(source) + "' in " + collection +
                    "; take one with 'previewdb snapshot " + source + " --to " +
                    util::redact_url(store_url) + "'");
    return 0;
  }
  warn_over(backups.size(), source, " in " + collection);
  auto now = std::chrono::system_clock::now();
  std::printf("%-60s %-16s %-21s %s\n", "SNAPSHOT", "SOURCE", "CREATED", "AGE");
  for (const auto& b : backups) {
    std::string age =
        util::format_age(std::chrono::duration_cast<std::chrono::seconds>(now - b.created));
    char row[2048];
    std::snprintf(row, sizeof row, "%-60s %-16s %-21s %s",
                  util::printable(util::redact_url(b.reference)).c_str(),
                  util::printable(source).c_str(), b.created_at.c_str(), age.c_str());
    std::printf("%s\n", util::workflow::neutralize_commands(row).c_str());
  }
  return 0;
}

// CockroachDB has no statement that removes a backup: --dry-run shows which would go; otherwise
// refused (exit 6) naming the subdirectories to remove with the bucket's own tools.
int snapshot_prune_cockroach(const cxxopts::ParseResult& parsed, const config::Config& cfg,
                             db::Connection& conn, const std::string& store_url, size_t keep) {
  std::string source = source_of(parsed, cfg);
  core::validate_name(source, "source database");
  auto backups = snapshot::list_cockroach_backups(conn, store_url, source, store_options(cfg));
  auto plan = snapshot::plan_backup_prune(backups, keep);
  bool dry = parsed.count("dry-run") > 0;
  std::string collection = util::redact_url(snapshot::cockroach_collection(store_url, source));
  if (plan.drop.empty()) {
    util::log::info("nothing to prune in " + collection + " (" + std::to_string(plan.keep.size()) +
                    " backups kept)");
  } else if (dry) {
    for (const auto& b : plan.drop) {
      util::log::info("would remove " + util::printable(util::redact_url(b.reference)) + " (" +
                      b.created_at + ")");
    }
  } else {
    std::vector<std::string> hints = {
        "CockroachDB has no statement that removes a backup: delete these subdirectories with the "
        "bucket's tools (for example 'aws s3 rm --recursive " +
            util::redact_url(plan.drop.front().reference) +
            "/'), or expire old ones with a lifecycle rule on " + collection + "/",
        "'previewdb snapshot prune --keep " + std::to_string(keep) +
            " --dry-run' lists them again"};
    std::string list;
    for (const auto& b : plan.drop) {
      list += (list.empty() ? "" : ", ") + util::printable(util::redact_url(b.reference));
    }
    throw Error(ExitCode::refused,
                "not pruning the CockroachDB backups in " + collection + ": previewdb cannot " +
                    "remove a backup the cluster wrote; to remove: " + list,
                hints);
  }
  if (parsed.count("json")) {
    nlohmann::json would = nlohmann::json::array();
    for (const auto& b : plan.drop) would.push_back(util::redact_url(b.reference));
    std::cout << nlohmann::json{{"dry_run", dry},
                                {"dropped", nlohmann::json::array()},
                                {"would_drop", dry ? would : nlohmann::json::array()},
                                {"kept", plan.keep.size()},
                                {"store", collection}}
                     .dump(2)
              << "\n";
  }
  return 0;
}

// snapshot list --store URL: the archives in a store (file://, s3://), newest first per source.
int snapshot_list_store(const cxxopts::ParseResult& parsed, const config::Config& cfg) {
  auto store = storage::open_store(storage::store_url_from(parsed["store"].as<std::string>()),
                                   store_options(cfg));
  std::optional<std::string> source;
  if (parsed.count("source")) source = parsed["source"].as<std::string>();
  auto plan = snapshot::plan_archive_prune(store->archives(), SIZE_MAX, source);
  if (parsed.count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : plan.keep) {
      out.push_back(
          {{"id", a.id},
           {"source", a.source},
           {"created_at", a.created_at},
           {"size_bytes", a.size},
           {"masked", a.mask_rules_sha256.has_value()},
           {"mask_rules_sha256",
            a.mask_rules_sha256 ? nlohmann::json(*a.mask_rules_sha256) : nlohmann::json(nullptr)},
           {"store", store->describe()}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (plan.keep.empty()) {
    util::log::info("no snapshot archives in " + store->describe() +
                    "; write one with 'previewdb snapshot --to " + store->describe() + "'");
    return 0;
  }
  std::map<std::string, size_t> per_source;
  for (const auto& a : plan.keep) ++per_source[a.source];
  for (const auto& [s, n] : per_source) warn_over(n, s, " in " + store->describe());
  auto now = std::chrono::system_clock::now();
  std::printf("%-40s %-16s %-21s %-8s %-10s %s\n", "SNAPSHOT", "SOURCE", "CREATED", "AGE", "SIZE",
              "MASKED");
  for (const auto& a : plan.keep) {
    auto created = util::parse_iso8601(a.created_at);
    std::string age =
        created ? util::format_age(std::chrono::duration_cast<std::chrono::seconds>(now - *created))
                : "?";
    char row[1024];
    std::snprintf(row, sizeof row, "%-40s %-16s %-21s %-8s %-10s %s", util::printable(a.id).c_str(),
                  util::printable(a.source).c_str(), util::printable(a.created_at).c_str(),
                  age.c_str(), util::human_bytes(static_cast<double>(a.size)).c_str(),
                  a.mask_rules_sha256 ? "yes" : "no");
    std::printf("%s\n", util::workflow::neutralize_commands(row).c_str());
  }
  return 0;
}

// snapshot prune --keep N --store URL: removes old archives (manifest first, then the data).
int snapshot_prune_store(const cxxopts::ParseResult& parsed, const config::Config& cfg,
                         size_t keep) {
  auto store = storage::open_store(storage::store_url_from(parsed["store"].as<std::string>()),
                                   store_options(cfg));
  std::optional<std::string> source;
  if (parsed.count("source")) source = parsed["source"].as<std::string>();
  auto plan = snapshot::plan_archive_prune(store->archives(), keep, source);
  bool dry = parsed.count("dry-run") > 0;
  nlohmann::json dropped = nlohmann::json::array();
  if (plan.drop.empty()) {
    util::log::info("nothing to prune in " + store->describe() + " (" +
                    std::to_string(plan.keep.size()) + " archives kept)");
  } else {
    for (const auto& a : plan.drop) {
      util::log::info(std::string(dry ? "would remove " : "will remove ") + util::printable(a.id) +
                      " (of " + util::printable(a.source) + ", " + util::printable(a.created_at) +
                      ") from " + store->describe());
    }
    if (!dry) {
      confirm("remove " + std::to_string(plan.drop.size()) + " snapshot archive(s)",
              parsed.count("yes") > 0);
      for (const auto& a : plan.drop) {
        store->remove(a.id);
        dropped.push_back(a.id);
        if (!parsed.count("json")) std::cout << a.id << "\n";
      }
    }
  }
  if (parsed.count("json")) {
    nlohmann::json would = nlohmann::json::array();
    for (const auto& a : plan.drop) would.push_back(a.id);
    std::cout << nlohmann::json{{"dry_run", dry},
                                {"dropped", dry ? nlohmann::json::array() : dropped},
                                {"would_drop", dry ? would : nlohmann::json::array()},
                                {"kept", plan.keep.size()},
                                {"store", store->describe()}}
                     .dump(2)
              << "\n";
  }
  return 0;
}

int snapshot_list(const Args& args) {
  cxxopts::Options options(args[0] + " list", "List snapshots, newest first per source.");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("json", "print a JSON array")
      ("store", "list the archives in this store instead (file://DIR, s3://BUCKET/PREFIX)",
       cxxopts::value<std::string>(), "URL")
      ("source", "only snapshots of this database", cxxopts::value<std::string>(), "NAME");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  if (parsed->count("store")) {
    std::string store_url = (*parsed)["store"].as<std::string>();
    if (auto crdb = cockroach_server(cfg, store_url)) {
      return snapshot_list_cockroach(*parsed, cfg, *crdb, store_url);
    }
    return snapshot_list_store(*parsed, cfg);
  }
  auto conn = connect_maintenance(resolve_target(cfg), lock_timeout_setting(cfg));
  auto all = core::list_databases(conn, /*with_sizes=*/true);
  auto plan = snapshot::plan_prune(
      all, SIZE_MAX,
      parsed->count("source") ? std::optional(parsed->operator[]("source").as<std::string>())
                              : std::nullopt);
  if (parsed->count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : plan.keep) out.push_back(snapshot_json(d));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (plan.keep.empty()) {
    util::log::info("no snapshots; create one with 'previewdb snapshot'");
    return 0;
  }
  auto now = std::chrono::system_clock::now();
  std::printf("%-40s %-16s %-21s %-8s %s\n", "SNAPSHOT", "SOURCE", "CREATED", "AGE", "MASKED");
  for (const auto& d : plan.keep) {
    auto created = util::parse_iso8601(d.meta->created_at);
    std::string age =
        created ? util::format_age(std::chrono::duration_cast<std::chrono::seconds>(now - *created))
                : "?";
    // Metadata is a comment anyone with CREATEDB can write: one line per row, whatever it holds.
    char row[1024];
    std::snprintf(row, sizeof row, "%-40s %-16s %-21s %-8s %s", util::printable(d.name).c_str(),
                  util::printable(d.meta->source.value_or("")).c_str(),
                  util::printable(d.meta->created_at).c_str(), age.c_str(),
                  d.meta->mask_rules_sha256 ? "yes" : "no");
    std::printf("%s\n", util::workflow::neutralize_commands(row).c_str());
  }
  return 0;
}

int snapshot_prune(const Args& args) {
  cxxopts::Options options(args[0] + " prune",
                           "Drop old snapshots, keeping the newest N of each source.");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("keep", "how many to keep per source (required)", cxxopts::value<std::string>(), "N")
      ("source", "only snapshots of this database", cxxopts::value<std::string>(), "NAME")
      ("store", "prune the archives in this store instead (file://DIR, s3://BUCKET/PREFIX)",
       cxxopts::value<std::string>(), "URL")
      ("dry-run", "show what would be dropped")
      ("y,yes", "do not ask for confirmation")
      ("json", "print the result as JSON");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  if (!parsed->count("keep")) {
    throw usage_error("snapshot prune needs --keep N",
                      "for example: previewdb snapshot prune --keep 3");
  }
  auto keep = util::parse_uint(parsed->operator[]("keep").as<std::string>());
  if (!keep) {
    throw usage_error(
        "invalid --keep " + util::quoted(parsed->operator[]("keep").as<std::string>()),
        "--keep takes a whole number, e.g. --keep 3");
  }
  auto cfg = load_config(*parsed);
  if (parsed->count("store")) {
    std::string store_url = (*parsed)["store"].as<std::string>();
    if (auto crdb = cockroach_server(cfg, store_url)) {
      return snapshot_prune_cockroach(*parsed, cfg, *crdb, store_url, static_cast<size_t>(*keep));
    }
    return snapshot_prune_store(*parsed, cfg, static_cast<size_t>(*keep));
  }
  auto conn = connect_maintenance(resolve_target(cfg), lock_timeout_setting(cfg));
  auto all = core::list_databases(conn);
  std::optional<std::string> source;
  if (parsed->count("source")) source = parsed->operator[]("source").as<std::string>();
  auto plan = snapshot::plan_prune(all, static_cast<size_t>(*keep), source);
  bool dry = parsed->count("dry-run") > 0;
  nlohmann::json dropped = nlohmann::json::array();
  if (plan.drop.empty()) {
    util::log::info("nothing to prune (" + std::to_string(plan.keep.size()) + " snapshots kept)");
  } else {
    for (const auto& d : plan.drop) {
      util::log::info(std::string(dry ? "would drop " : "will drop ") + d.name + " (of " +
                      d.meta->source.value_or("?") + ", " + d.meta->created_at + ")");
    }
    if (!dry) {
      confirm("drop " + std::to_string(plan.drop.size()) + " snapshot(s)",
              parsed->count("yes") > 0);
      auto protection = make_protection(cfg);
      for (const auto& d : plan.drop) {
        // Under the name lock: still the snapshot chosen above (not re-created since)?
        auto same = [&](const core::DatabaseInfo& current) -> std::optional<std::string> {
          if (!current.meta || current.meta->kind != core::Kind::snapshot || current.oid != d.oid) {
            return "it changed since it was selected";
          }
          return std::nullopt;
        };
        auto r = db::naming_lost_connection(
            "dropping snapshot " + util::quoted(d.name),
            "when the server is back, 'previewdb snapshot list' shows what is left; run it again",
            [&] {
              return core::drop_database(conn, d.name, protection, false, std::nullopt, same);
            });
        if (r.outcome == core::DropOutcome::dropped) {
          dropped.push_back(d.name);
          if (!parsed->count("json")) std::cout << d.name << "\n";
        } else {
          util::log::warn("kept " + d.name + ": " + r.reason);
        }
      }
    }
  }
  if (parsed->count("json")) {
    nlohmann::json would = nlohmann::json::array();
    for (const auto& d : plan.drop) would.push_back(d.name);
    std::cout << nlohmann::json{{"dry_run", dry},
                                {"dropped", dry ? nlohmann::json::array() : dropped},
                                {"would_drop", dry ? would : nlohmann::json::array()},
                                {"kept", plan.keep.size()}}
                     .dump(2)
              << "\n";
  }
  return 0;
}

}  // namespace

int run_snapshot(const Args& args) {
  if (args.size() >= 2 && args[1] == "list") {
    Args rest = {args[0]};
    rest.insert(rest.end(), args.begin() + 2, args.end());
    return snapshot_list(rest);
  }
  if (args.size() >= 2 && args[1] == "prune") {
    Args rest = {args[0]};
    rest.insert(rest.end(), args.begin() + 2, args.end());
    return snapshot_prune(rest);
  }
  cxxopts::Options options(
      args[0],
      "Take a point-in-time snapshot of SOURCE (default dev) and print its id.\n"
      "  previewdb snapshot [SOURCE] [--to file://DIR|s3://BUCKET/PREFIX] [--wait-idle 30s]\n"
      "                     [--terminate-sessions] [--mask FILE] [--exclude-data TABLE]...\n"
      "                     [--require-rules]\n"
      "  previewdb snapshot list [--json] [--store URL]\n"
      "  previewdb snapshot prune --keep N [--store URL] [--dry-run] [--yes]");
  add_common_options(options);
  add_mask_options(options);
  // clang-format off
  options.add_options()
      ("encrypt", "encrypt the archive written with --to (AES-256-GCM; key from "
       "PREVIEWDB_ENCRYPTION_KEY or --encryption-key-file)",
       cxxopts::value<std::string>()->implicit_value("true"), "BOOL")
      ("encryption-key-file", "a file holding the 32-byte key (hex or base64)",
       cxxopts::value<std::string>(), "FILE")
      ("to", "also write a pg_dump archive to a snapshot store (file://DIR, s3://BUCKET/PREFIX)",
       cxxopts::value<std::string>(), "URL")
      ("strategy", "clone strategy: auto, wal_log, file_copy", cxxopts::value<std::string>(), "S")
      ("wait-idle", "when SOURCE has client sessions, wait up to this long for them to end "
       "(then the fast template copy), e.g. 30s", cxxopts::value<std::string>(), "DURATION")
      ("terminate-sessions", "end SOURCE's client sessions for the fast template copy")
      ("json", "print the result as JSON")
      ("source", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"source"});
  options.positional_help("[SOURCE]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  std::string source = cfg.get_string("source");
  if (parsed->count("source")) {
    auto v = parsed->operator[]("source").as<std::vector<std::string>>();
    if (v.size() > 1)
      throw usage_error("snapshot takes one SOURCE database, got " + std::to_string(v.size()));
    source = v[0];
  }
  core::validate_name(source, "source database");
  std::chrono::seconds wait_idle{0};
  if (parsed->count("wait-idle")) {
    wait_idle = util::parse_duration((*parsed)["wait-idle"].as<std::string>(),
                                     util::BareUnit::seconds, "--wait-idle");
  }
  auto target = resolve_target(cfg);
  auto conn = connect_maintenance(target, lock_timeout_setting(cfg));
  snapshot::SnapshotRequest req;
  req.source = source;
  req.created_by = resolve_creator(cfg);
  req.conninfo = target.conninfo;
  req.strategy = core::parse_clone_strategy(cfg.get_string("strategy"));
  req.wait_idle = wait_idle;
  req.terminate_sessions = parsed->count("terminate-sessions") > 0;
  if (auto to = cfg.get("snapshot_store")) {
    req.store_url = to->value;
  }
  std::optional<std::string> key_file;
  if (parsed->count("encryption-key-file"))
    key_file = (*parsed)["encryption-key-file"].as<std::string>();
  req.encrypt = cfg.get_bool("encrypt");
  // Configured on (previewdb.json, PREVIEWDB_ENCRYPT), it applies when there is an archive; only
  // the flag without --to is a mistake.
  if (auto e = cfg.get("encrypt"); req.encrypt && !req.store_url && e->origin.rfind("--", 0) != 0)
    req.encrypt = false;
  if (req.store_url || req.encrypt) req.store_options = store_options(cfg, key_file);
  req.mask = mask_spec(cfg);
  auto result = db::naming_lost_connection(
      "taking a snapshot of database " + util::quoted(source),
      "when the server is back, 'previewdb snapshot list' shows the snapshots; run it again",
      [&] { return snapshot::create_snapshot(conn, req); });
  util::log::info("snapshot " + result.id + " of " + source + " created (" + result.method + ")" +
                  (result.archive ? ", archive " + *result.archive : ""));
  if (result.masking) log_masking(*result.masking);
  warn_over(result.snapshots_of_source, source, "");
  if (req.store_url) {
    // The same warning for the store (the original scripts warned about the bucket).
    try {
      auto store = storage::open_store(*req.store_url, req.store_options);
      size_t n = 0;
      for (const auto& a : store->archives()) n += a.source == source;
      if (n > k_snapshot_warn_count) {
        util::log::warn(std::to_string(n) + " snapshot archives of '" + source + "' are in " +
                        store->describe() + "; remove old ones with 'previewdb snapshot prune " +
                        "--keep " + std::to_string(k_snapshot_warn_count) + " --store " +
                        store->describe() + "'");
      }
    } catch (const Error& e) {
      util::log::warn(std::string("could not count the archives in the store: ") + e.what());
    }
  }
  if (parsed->count("json")) {
    std::cout << nlohmann::json{{"id", result.id},
                                {"source", source},
                                {"method", result.method},
                                {"archive", result.archive ? nlohmann::json(*result.archive)
                                                           : nlohmann::json(nullptr)},
                                {"masked", result.masking.has_value()},
                                {"masking", result.masking ? masking_json(*result.masking)
                                                           : nlohmann::json(nullptr)}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << result.id << "\n";
  }
  return 0;
}

}  // namespace previewdb::commands
