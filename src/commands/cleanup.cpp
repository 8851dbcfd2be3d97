#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "commands/common.hpp"
#include "core/catalog.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "core/pool.hpp"
#include "net/github.hpp"
#include "util/dotenv.hpp"
#include "util/duration.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

namespace {

void restore_env_file(const std::string& path) {
  auto text = util::read_file_if_exists(path);
  if (!text) {
    throw usage_error("cannot restore " + util::quoted(path) + ": no such file");
  }
  std::vector<std::string> restored;
  std::string out = dotenv_restore(*text, restored);
  if (restored.empty()) {
    util::log::warn(path + " has no " + k_previous_database_url_key +
                    "; DATABASE_URL left as it is");
    return;
  }
  util::write_file_atomic(path, out,
                          std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  util::log::info("restored " + util::join(restored, " and ") + " in " + path);
}

struct Skip {
  std::string name;
  std::string reason;
};

// --closed-prs: the GitHub client, from --repo or GITHUB_REPOSITORY, GITHUB_TOKEN and
// GITHUB_API_URL. Checked before any SQL, so a missing token is a usage error, not a half-run.
net::GitHubClient closed_prs_client(const cxxopts::ParseResult& p) {
  auto env = config::process_env();
  auto get = [&](const char* key) {
    auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  };
  net::GitHubOptions o;
  o.repository = p.count("repo") ? p["repo"].as<std::string>() : get("GITHUB_REPOSITORY");
  o.token = get("GITHUB_TOKEN");
  if (auto api = get("GITHUB_API_URL"); !api.empty()) o.api_url = api;
  if (o.repository.empty()) {
    throw usage_error("--closed-prs needs the GitHub repository",
                      "pass --repo owner/name or set GITHUB_REPOSITORY (GitHub Actions sets it)");
  }
  if (o.token.empty()) {
    throw usage_error(
        "--closed-prs needs GITHUB_TOKEN to ask GitHub which pull requests are closed",
        "in a workflow: 'env: GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}' with "
        "'permissions: pull-requests: read'");
  }
  return net::GitHubClient(std::move(o));  // validates owner/name and the API URL
}

}  // namespace

int run_cleanup(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Drop preview and personal databases.\n"
      "  previewdb cleanup [NAME|FEATURE...] [--pr N] [--older-than 7d] [--pattern REGEX]\n"
      "                    [--closed-prs [--repo OWNER/NAME]]\n"
      "--older-than, --pattern and --closed-prs combine: a database must match all of them.\n"
      "Only databases previewdb created (unless --include-unmanaged); protected ones never.\n"
      "Snapshots are dropped by 'previewdb snapshot prune', warm pool members only by --pool.");
  add_common_options(options);
  // clang-format off
  // clang-format off
  options.add_options()
      ("pr", "the preview of pull request N (repeatable)", cxxopts::value<std::vector<std::string>>(), "N")
      ("older-than", "created longer ago than this: 7d, 12h, 30m (a bare number means days)",
       cxxopts::value<std::string>(), "AGE")
      ("pattern", "names matching this regular expression", cxxopts::value<std::string>(), "REGEX")
      ("closed-prs", "previews (pr_<N>) whose pull request is closed on GitHub (needs GITHUB_TOKEN)")
      ("pool", "every member of the warm pool (ready clones kept by ci/spawn --pool)")
      ("repo", "the GitHub repository: asked by --closed-prs; previews recorded for another "
       "repository are left alone (default $GITHUB_REPOSITORY)",
       cxxopts::value<std::string>(), "OWNER/NAME")
      ("dry-run", "show what would be dropped, drop nothing")
      ("y,yes", "do not ask for confirmation (needed without a terminal)")
      ("include-unmanaged", "also drop databases previewdb did not create")
      ("restore-env", "put back the DATABASE_URL that 'spawn --update-env' replaced in FILE",
       cxxopts::value<std::string>(), "FILE")
      ("json", "print the result as JSON")
      ("names", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  // clang-format on
  options.parse_positional({"names"});
  options.positional_help("[NAME|FEATURE...]");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  auto cfg = load_config(p);

  std::vector<std::string> names =
      p.count("names") ? p["names"].as<std::vector<std::string>>() : std::vector<std::string>{};
  std::vector<long long> prs;
  if (p.count("pr")) {
    for (const auto& s : p["pr"].as<std::vector<std::string>>()) {
      auto n = util::parse_uint(s);
      if (!n || *n == 0) {
        throw usage_error("invalid --pr " + util::quoted(s),
                          "a pull request number is a positive integer, e.g. --pr 12");
      }
      prs.push_back(*n);
    }
  }
  std::optional<std::chrono::seconds> older_than;
  if (p.count("older-than")) {
    older_than = util::parse_duration(p["older-than"].as<std::string>(), util::BareUnit::days,
                                      "--older-than");
  }
  std::optional<std::regex> pattern;
  if (p.count("pattern")) {
    try {
      pattern = std::regex(p["pattern"].as<std::string>(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw usage_error(
          "invalid --pattern " + util::quoted(p["pattern"].as<std::string>()) + ": " + e.what(),
          "use an ECMAScript regular expression, e.g. --pattern '^pr_'");
    }
  }
  std::optional<net::GitHubClient> github;
  if (p.count("closed-prs")) github = closed_prs_client(p);
  // The repository this cleanup acts for (--repo, else GITHUB_REPOSITORY): previews recorded for
  // another repository on the same server are never selected, nor asked about.
  std::optional<std::string> repo_scope;
  if (p.count("repo")) {
    repo_scope = p["repo"].as<std::string>();
  } else if (auto env = config::process_env(); env.count("GITHUB_REPOSITORY")) {
    if (!env["GITHUB_REPOSITORY"].empty()) repo_scope = env["GITHUB_REPOSITORY"];
  }
  std::string name_template = cfg.get("name_template").value_or(config::Value{}).value;
  bool filtered = older_than || pattern || github;
  bool pool = p.count("pool") > 0;
  bool has_selector = !names.empty() || !prs.empty() || filtered || pool;
  if (!has_selector && !p.count("restore-env")) {
    throw usage_error(
        "cleanup needs something to select: NAME, FEATURE, --pr, --older-than, "
        "--pattern, --closed-prs or --pool",
        "for example: previewdb cleanup --older-than 7d --dry-run");
  }
  // Names given explicitly are checked before any SQL: a bad one is a usage error.
  std::string user;
  std::vector<std::string> explicit_names;
  for (const auto& n : names) {
    if (n.rfind("dev_", 0) == 0 || n.rfind("pr_", 0) == 0) {
      core::validate_name(n);
      explicit_names.push_back(n);
    } else {
      core::validate_name(n, "name");
      explicit_names.push_back(n);  // resolved below: a database of that name, else a feature
    }
  }
  for (auto n : prs) {
    explicit_names.push_back(core::preview_database_name(
        name_template, n, repo_scope.value_or(""), "name_template (PREVIEWDB_NAME_TEMPLATE)"));
  }

  bool dry = p.count("dry-run") > 0;
  bool include_unmanaged = p.count("include-unmanaged") > 0;
  nlohmann::json out = {{"dry_run", dry},
                        {"dropped", nlohmann::json::array()},
                        {"would_drop", nlohmann::json::array()},
                        {"skipped", nlohmann::json::array()}};
  int exit_code = 0;

  if (has_selector) {
    auto conn = connect_maintenance(resolve_target(cfg), lock_timeout_setting(cfg));
    auto protection = make_protection(cfg);
    // Leftovers of interrupted builds (registered, builder gone) go first; a previewdb_tmp_* that
    // previewdb did not create is never touched.
    const std::string again =
        "when the server is back, 'previewdb list' shows what is left; run "
        "the same cleanup again";
    auto all = db::naming_lost_connection("listing the databases to clean up", again, [&] {
      if (!p.count("dry-run")) core::remove_stale_temporaries(conn);
      return core::list_databases(conn);
    });
    std::set<std::string> existing;
    for (const auto& d : all) existing.insert(d.name);

    std::vector<std::string> selected;
    std::vector<Skip> skipped;
    std::set<std::string> explicitly;
    for (auto name : explicit_names) {
      if (!existing.count(name) && name.rfind("dev_", 0) != 0 && name.rfind("pr_", 0) != 0) {
        if (user.empty()) user = resolve_user(cfg);
        std::string personal = core::personal_database_name(user, name);
        if (existing.count(personal)) name = personal;
      }
      if (!existing.count(name)) {
        skipped.push_back({name, "does not exist"});
        continue;
      }
      explicitly.insert(name);
      selected.push_back(name);
    }
    auto now = std::chrono::system_clock::now();
    std::map<long long, net::PullState> pr_states;  // one API call per pull request
    std::set<std::string> pool_selected;
    if (pool) {
      for (const auto& d : core::pool_members(all)) {
        pool_selected.insert(d.name);
        if (!explicitly.count(d.name)) selected.push_back(d.name);
      }
    }
    for (const auto& d : all) {
      if (explicitly.count(d.name) || core::is_temp_database_name(d.name)) continue;
      if (!filtered) continue;
      // Warm pool members are previewdb's stock, not anyone's database: only --pool drops them.
      if (d.meta && d.meta->kind == core::Kind::pool) continue;
      // The filters combine with AND; an unmanaged database has no age and no pull request.
      bool name_ok = !pattern || std::regex_search(d.name, *pattern);
      bool age_ok = true;
      if (older_than) {
        auto t = d.meta ? util::parse_iso8601(d.meta->created_at) : std::nullopt;
        age_ok = t && now - *t > *older_than;
      }
      bool match = name_ok && age_ok;
      if (match && github) {
        // Only pr_<N> previews that say which PR they belong to. GitHub is asked last, so the
        // cheap filters keep the number of calls down; an API failure (401, 404, 5xx after
        // retries) ends the run before anything is dropped.
        // Legacy previews (no repository recorded) only under their pr_<N> name.
        match = d.meta && d.meta->kind == core::Kind::pr && d.meta->pr_number &&
                (d.meta->repository ? d.meta->repository == repo_scope
                                    : d.name == core::pr_database_name(*d.meta->pr_number));
        if (match) {
          long long n = *d.meta->pr_number;
          auto it = pr_states.find(n);
          if (it == pr_states.end()) it = pr_states.emplace(n, github->pr_state(n)).first;
          match = !it->second.open();
          util::log::debug("pull request #" + std::to_string(n) + " is " + it->second.state);
          if (match) {
            util::log::info(d.name + ": pull request #" + std::to_string(n) + " is closed" +
                            (it->second.merged ? " (merged)" : ""));
          }
        }
      }
      if (match) selected.push_back(d.name);
    }

    std::vector<std::string> to_drop;
    for (const auto& name : selected) {
      auto it = std::find_if(all.begin(), all.end(), [&](auto& d) { return d.name == name; });
      if (auto why = protection.reason(name, all)) {
        skipped.push_back({name, "protected: " + *why});
        if (explicitly.count(name)) exit_code = static_cast<int>(ExitCode::refused);
      } else if (it->meta && it->meta->kind == core::Kind::snapshot) {
        skipped.push_back({name, "a snapshot; use 'previewdb snapshot prune'"});
        if (explicitly.count(name)) exit_code = static_cast<int>(ExitCode::refused);
      } else if (it->meta && it->meta->kind == core::Kind::pool && !pool_selected.count(name)) {
        skipped.push_back({name, "a member of the warm pool; use 'previewdb cleanup --pool'"});
        if (explicitly.count(name)) exit_code = static_cast<int>(ExitCode::refused);
      } else if (repo_scope && it->meta && it->meta->repository &&
                 *it->meta->repository != *repo_scope) {
        skipped.push_back({name, "the preview of another repository (" + *it->meta->repository +
                                     "); this cleanup is for " + *repo_scope});
        if (explicitly.count(name)) exit_code = static_cast<int>(ExitCode::refused);
      } else if (!it->managed() && !include_unmanaged) {
        skipped.push_back({name,
                           "unmanaged (not created by previewdb); --include-unmanaged to "
                           "drop it anyway"});
        if (explicitly.count(name)) exit_code = static_cast<int>(ExitCode::refused);
      } else {
        to_drop.push_back(name);
      }
    }
    for (const auto& s : skipped) {
      util::log::info("skipping " + s.name + ": " + s.reason);
      out["skipped"].push_back({{"name", s.name}, {"reason", s.reason}});
    }
    if (to_drop.empty()) {
      util::log::info("nothing to drop");
      // Only explicit names, and none of them exists: that is "not found".
      if (exit_code == 0 && !filtered && !pool && explicitly.empty()) {
        exit_code = static_cast<int>(ExitCode::not_found);
      }
    } else {
      for (const auto& n : to_drop) {
        auto it = std::find_if(all.begin(), all.end(), [&](auto& d) { return d.name == n; });
        std::string detail =
            it->meta
                ? " (" + core::to_string(it->meta->kind) +
                      (it->meta->pr_number ? " #" + std::to_string(*it->meta->pr_number) : "") +
                      ", created " + it->meta->created_at + " by " +
                      (it->meta->created_by.empty() ? "?" : it->meta->created_by) + ")"
                : " (unmanaged)";
        util::log::info(std::string(dry ? "would drop " : "will drop ") + n + detail);
      }
      if (dry) {
        for (const auto& n : to_drop) out["would_drop"].push_back(n);
        util::log::info("dry run: nothing was dropped");
      } else {
        confirm("drop " + std::to_string(to_drop.size()) + " database(s)", p.count("yes") > 0);
        for (const auto& n : to_drop) {
          auto seen = std::find_if(all.begin(), all.end(), [&](auto& d) { return d.name == n; });
          std::optional<core::Metadata> seen_meta = seen->meta;
          auto seen_oid = seen->oid;
          // Under the name lock: is it still the database chosen above, and still selected?
          auto still_wanted = [&](const core::DatabaseInfo& current) -> std::optional<std::string> {
            if (current.oid != seen_oid || current.meta.has_value() != seen_meta.has_value()) {
              return "it was re-created since it was selected";
            }
            if (current.meta && current.meta->kind == core::Kind::snapshot) {
              return "a snapshot; use 'previewdb snapshot prune'";
            }
            if (current.meta && current.meta->kind == core::Kind::pool && !pool_selected.count(n)) {
              return "a member of the warm pool; use 'previewdb cleanup --pool'";
            }
            if (older_than && !explicitly.count(n)) {
              auto t = current.meta ? util::parse_iso8601(current.meta->created_at) : std::nullopt;
              if (!t || std::chrono::system_clock::now() - *t <= *older_than) {
                return "no longer older than " + p["older-than"].as<std::string>();
              }
            }
            return std::nullopt;
          };
          auto r = db::naming_lost_connection("dropping database " + util::quoted(n), again, [&] {
            return core::drop_database(conn, n, protection, include_unmanaged, repo_scope,
                                       still_wanted);
          });
          if (r.outcome == core::DropOutcome::dropped) {
            out["dropped"].push_back(n);
            if (!p.count("json"))
              std::cout << util::workflow::neutralize_commands(util::printable(n)) << "\n";
          } else if (r.outcome != core::DropOutcome::absent) {
            util::log::warn("kept " + n + ": " + r.reason);
            out["skipped"].push_back({{"name", n}, {"reason", r.reason}});
            if (explicitly.count(n)) exit_code = static_cast<int>(ExitCode::refused);
          }
        }
        util::log::info("dropped " + std::to_string(out["dropped"].size()) + " database(s)");
      }
    }
  }
  if (p.count("restore-env") && !dry) restore_env_file(p["restore-env"].as<std::string>());
  if (p.count("json")) std::cout << out.dump(2) << "\n";
  return exit_code;
}

}  // namespace previewdb::commands
