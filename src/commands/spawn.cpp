#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands/common.hpp"
#include "commands/pool_topup.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "util/dotenv.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"

namespace previewdb::commands {

namespace {

void update_env_file(const std::string& path, const std::string& url) {
  std::string text = util::read_file_if_exists(path).value_or("");
  // The URL may carry a password: owner-only.
  util::write_file_atomic(path, dotenv_point_at(text, url),
                          std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace

int run_spawn(const Args& args) {
  cxxopts::Options options(args[0],
                           "Create dev_<user>_<FEATURE> (or pr_<N> with --pr) from the latest "
                           "snapshot and print its URL.\n  previewdb spawn FEATURE [options]");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("pr", "create the preview of pull request N (pr_<N>, or as --name-template names it), "
       "as previewdb ci does", cxxopts::value<std::string>(), "N")
      ("name-template", "with --pr: name previews with {pr}, {repo}, {owner} (default pr_{pr})",
       cxxopts::value<std::string>(), "TEMPLATE")
      ("name", "explicit database name", cxxopts::value<std::string>(), "NAME")
      ("from", "clone the latest snapshot of this database (default dev)",
       cxxopts::value<std::string>(), "SOURCE")
      ("snapshot", "clone this snapshot id, or a file:// or s3:// archive",
       cxxopts::value<std::string>(), "ID")
      ("encryption-key-file", "the key of an encrypted archive (else PREVIEWDB_ENCRYPTION_KEY)",
       cxxopts::value<std::string>(), "FILE")
      ("branch", "git branch to record in the metadata", cxxopts::value<std::string>(), "B")
      ("reuse", "if it exists and is ours, return it")
      ("replace", "if it exists and is ours, re-create it from the snapshot")
      ("strategy", "clone strategy: auto, wal_log, file_copy", cxxopts::value<std::string>(), "S")
      ("update-env", "set DATABASE_URL in this dotenv file (cleanup --restore-env undoes it)",
       cxxopts::value<std::string>(), "FILE")
      ("json", "print the result as JSON")
      ("pool", "afterwards, keep N ready clones of the latest snapshot (the warm pool; default 0)",
       cxxopts::value<std::string>(), "N")
      ("feature", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  options.parse_positional({"feature"});
  options.positional_help("FEATURE");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  auto cfg = load_config(p);
  if (p.count("reuse") && p.count("replace")) {
    throw usage_error("--reuse and --replace cannot be used together",
                      "--reuse keeps an existing database, --replace re-creates it");
  }

  core::SpawnRequest req;
  std::string user = resolve_user(cfg);
  req.meta.created_by = user;
  std::vector<std::string> features;
  if (p.count("feature")) features = p["feature"].as<std::vector<std::string>>();
  if (features.size() > 1) {
    throw usage_error("spawn takes one FEATURE, got " + std::to_string(features.size()),
                      "quote a feature name with spaces? names use only a-z, 0-9, '_' and '-'");
  }
  if (p.count("pr")) {
    auto n = util::parse_uint(p["pr"].as<std::string>());
    if (!n || *n == 0) {
      throw usage_error("invalid --pr " + util::quoted(p["pr"].as<std::string>()),
                        "a pull request number is a positive integer, e.g. --pr 12");
    }
    req.meta.kind = core::Kind::pr;
    req.meta.pr_number = *n;
    // The same preview ci makes for this pull request: its name template and its repository
    // (recorded, so that another repository's preview of the same number is never reused).
    const char* github_repository = std::getenv("GITHUB_REPOSITORY");
    std::string repository = repository_of_checkout(github_repository ? github_repository : "");
    if (!repository.empty()) req.meta.repository = repository;
    if (!p.count("name")) {
      auto tmpl = cfg.get("name_template").value_or(config::Value{});
      std::string setting =
          tmpl.origin.rfind("--", 0) == 0 ? tmpl.origin : "name_template (" + tmpl.origin + ")";
      req.name = core::preview_database_name(tmpl.value, *n, repository, setting);
    }
  } else {
    req.meta.kind = core::Kind::personal;
  }
  if (p.count("name")) {
    req.name = p["name"].as<std::string>();
  } else if (!p.count("pr")) {
    if (features.empty()) {
      throw usage_error("spawn needs a FEATURE name, --pr N or --name NAME",
                        "for example: previewdb spawn checkout-flow");
    }
    req.name = core::personal_database_name(user, features[0]);
  }
  core::validate_name(req.name);
  if (p.count("branch")) req.meta.branch = p["branch"].as<std::string>();
  req.source = cfg.get_string("source");
  core::validate_name(req.source, "source database");
  if (p.count("snapshot")) req.snapshot = p["snapshot"].as<std::string>();
  if (req.snapshot && req.snapshot->find("://") != std::string::npos) {
    req.store_options =
        store_options(cfg, p.count("encryption-key-file")
                               ? std::optional(p["encryption-key-file"].as<std::string>())
                               : std::nullopt);
  }
  req.if_exists = p.count("reuse")     ? core::IfExists::reuse
                  : p.count("replace") ? core::IfExists::replace
                                       : core::IfExists::fail;
  req.strategy = core::parse_clone_strategy(cfg.get_string("strategy"));
  req.use_pool = true;
  // The clone's duration and the new database's size are recorded after the result is printed.
  req.defer_evidence = true;
  size_t pool_size = pool_size_setting(cfg);

  if (p.count("update-env")) {
    // Checked before anything is created: a spawn should not end with a database and an error.
    std::filesystem::path env_file = p["update-env"].as<std::string>();
    util::check_output_file(env_file, "--update-env file");
    util::read_file_if_exists(env_file);  // readable, a regular file, not too large
  }
  auto target = resolve_target(cfg);
  req.conninfo = target.conninfo;
  auto conn = connect_maintenance(target, lock_timeout_setting(cfg));
  auto result = db::naming_lost_connection(
      "creating database " + util::quoted(req.name),
      "when the server is back, 'previewdb list' shows what exists; run the same spawn again",
      [&] { return core::spawn(conn, req, make_protection(cfg)); });
  std::string url = db::url_for_database(target.conninfo, result.name, /*include_password=*/true);
  if (result.pooled) {
    util::log::info("created " + result.name + " from the warm pool (a clone of " +
                    result.snapshot + ")");
  } else if (result.created) {
    util::log::info(std::string(result.replaced ? "re-created " : "created ") + result.name +
                    " from " + result.snapshot + " (" + result.strategy + ")");
    if (!result.strategy_reason.empty()) {
      util::log::info("clone strategy " + result.strategy + ": " + result.strategy_reason);
    }
  } else {
    util::log::info("reusing existing " + result.name);
  }
  if (p.count("update-env")) {
    update_env_file(p["update-env"].as<std::string>(), url);
    util::log::info("set DATABASE_URL in " + p["update-env"].as<std::string>());
  }
  // Under GitHub Actions the URL's password is masked before the URL is printed.
  mask_in_ci(db::register_conninfo_secrets(url));
  if (p.count("json")) {
    nlohmann::json out{{"name", result.name},         {"url", url},
                       {"created", result.created},   {"replaced", result.replaced},
                       {"snapshot", result.snapshot}, {"strategy", result.strategy},
                       {"pooled", result.pooled}};
    // Why this clone strategy (null when nothing was cloned from a template).
    out["strategy_reason"] = result.strategy_reason.empty()
                                 ? nlohmann::json(nullptr)
                                 : nlohmann::json(result.strategy_reason);
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << url << "\n";
  }
  std::cout << std::flush;
  // After the result is out: the evidence for the next clone's strategy and the size `list`
  // shows (warnings at worst), then the warm pool for the next spawn (a warning at worst).
  core::record_spawn_evidence(conn, result);
  top_up_pool_at_end(conn, req.source, pool_size, req.strategy, user);
  return 0;
}

}  // namespace previewdb::commands
