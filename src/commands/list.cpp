#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "commands/common.hpp"
#include "core/catalog.hpp"
#include "db/dialect.hpp"
#include "util/duration.hpp"
#include "util/strings.hpp"
#include "util/time.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::commands {

namespace {

std::string human_size(long long bytes) {
  return bytes < 0 ? "?" : util::human_bytes(static_cast<double>(bytes));
}

std::string kind_of(const core::DatabaseInfo& d, core::Group g) {
  if (d.meta) return core::to_string(d.meta->kind);
  switch (g) {
    case core::Group::production:
      return "production";
    case core::Group::development:
      return "development";
    default:
      return "other";
  }
}

}  // namespace

int run_list(const Args& args) {
  cxxopts::Options options(args[0],
                           "List every database, grouped as Production, Development, PR previews, "
                           "Personal, Snapshots, Warm pool, Other.");
  add_common_options(options);
  options.add_options()("json", "print one JSON array")(
      "exact-sizes",
      "measure every database's size now (slow with many databases) instead of showing the "
      "sizes previewdb cached, which are at most about 10 minutes old");
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto cfg = load_config(*parsed);
  auto conn = connect_maintenance(resolve_target(cfg), lock_timeout_setting(cfg));
  auto protection = make_protection(cfg);
  auto all = core::list_databases(conn, /*with_sizes=*/true,
                                  /*exact_sizes=*/parsed->count("exact-sizes") > 0);
  // A server without sizes (CockroachDB) shows "-", as the original system did; "?" stays for a
  // size PostgreSQL would not let us read.
  const bool sizes_exist = db::dialect_of(conn).database_sizes;

  if (parsed->count("json")) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& d : all) {
      auto g = protection.group_of(d);
      auto opt = [](const std::optional<std::string>& v) {
        return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
      };
      out.push_back(
          {{"name", d.name},
           {"kind", kind_of(d, g)},
           {"managed", d.managed()},
           {"created_at", d.meta ? nlohmann::json(d.meta->created_at) : nlohmann::json(nullptr)},
           {"created_by", d.meta ? nlohmann::json(d.meta->created_by) : nlohmann::json(nullptr)},
           {"pr_number", d.meta && d.meta->pr_number ? nlohmann::json(*d.meta->pr_number)
                                                     : nlohmann::json(nullptr)},
           {"branch", d.meta ? opt(d.meta->branch) : nlohmann::json(nullptr)},
           {"snapshot", d.meta ? opt(d.meta->snapshot) : nlohmann::json(nullptr)},
           {"repository", d.meta ? opt(d.meta->repository) : nlohmann::json(nullptr)},
           {"build_of", opt(d.build_target)},
           {"size_bytes",
            d.size_bytes >= 0 ? nlohmann::json(d.size_bytes) : nlohmann::json(nullptr)},
           // A cached size (measured at size_as_of) is an estimate; null: measured now.
           {"size_estimated", d.size_bytes >= 0 && d.size_as_of.has_value()},
           {"size_as_of", d.size_bytes >= 0 ? opt(d.size_as_of) : nlohmann::json(nullptr)},
           {"group", core::to_string(g)},
           {"protected", protection.reason(d.name, all).has_value()}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  // One row of cells per database; columns are as wide as their widest cell.
  using Row = std::vector<std::string>;
  const Row header = {"NAME", "CREATED", "AGE", "OWNER", "PR", "BRANCH", "SIZE"};
  std::map<core::Group, std::vector<Row>> groups;
  std::vector<size_t> width;
  for (const auto& h : header) width.push_back(h.size());
  auto now = std::chrono::system_clock::now();
  bool any_estimate = false;
  std::chrono::seconds oldest_size{0};
  for (const auto& d : all) {
    std::string created = "-", age = "-", owner = "-", pr = "-", branch = "-";
    if (d.meta) {
      created = d.meta->created_at;
      if (auto t = util::parse_iso8601(created)) {
        age = util::format_age(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
      }
      if (!d.meta->created_by.empty()) owner = d.meta->created_by;
      if (d.meta->pr_number) pr = "#" + std::to_string(*d.meta->pr_number);
      if (d.meta->branch) branch = *d.meta->branch;
    }
    // A registered build still under its temporary name: in progress, or left by an interrupted
    // run (the next spawn, snapshot or cleanup removes it once its builder is gone).
    std::string label = d.name + (protection.reason(d.name, all) ? " *" : "");
    if (d.build_target) label += " (build of " + *d.build_target + ", in progress or interrupted)";
    // A warm pool member: handed out by rename to the next spawn from its snapshot.
    if (d.meta && d.meta->kind == core::Kind::pool) {
      label += " (clone of " + d.meta->snapshot.value_or("?") + ")";
    }
    // "~": a cached size, not measured by this run.
    std::string size = sizes_exist ? human_size(d.size_bytes) : "-";
    if (sizes_exist && d.size_bytes >= 0 && d.size_age) {
      size = "~" + size;
      oldest_size = std::max(oldest_size, *d.size_age);
      any_estimate = true;
    }
    Row row = {label, created, age, owner, pr, branch, size};
    // Names, owners and branches are data anyone with CREATEDB can write: one line per row, and
    // nothing that a CI runner would read as a workflow command.
    for (auto& cell : row) cell = util::printable(cell);
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    groups[protection.group_of(d)].push_back(std::move(row));
  }
  auto print_row = [&](const Row& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      bool right = i + 1 == row.size();  // sizes align right
      std::string pad(width[i] - row[i].size(), ' ');
      line += "  " + (right ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : ""));
    }
    std::printf("%s\n", util::workflow::neutralize_commands(line).c_str());
  };
  bool first = true;
  for (auto g :
       {core::Group::production, core::Group::development, core::Group::pr_preview,
        core::Group::personal, core::Group::snapshot, core::Group::pool, core::Group::other}) {
    if (groups[g].empty()) continue;
    std::printf("%s%s (%zu)\n", first ? "" : "\n", core::to_string(g).c_str(), groups[g].size());
    first = false;
    print_row(header);
    for (const auto& row : groups[g]) print_row(row);
  }
  std::printf("\n* protected: never dropped or overwritten\n");
  if (any_estimate) {
    std::printf("~ size measured earlier (at most %s ago); --exact-sizes measures now\n",
                util::format_age(oldest_size).c_str());
  }
  return 0;
}

}  // namespace previewdb::commands
