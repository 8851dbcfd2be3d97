// `previewdb doctor`: a step-by-step check of a server, meant for a cluster previewdb has never
// been verified on (CockroachDB, docs/COCKROACHDB.md). On throwaway names
// (previewdb_doctor_<random>) it runs what previews need through the same code as the commands:
// the server's dialect, the migration lock, a snapshot, a spawn from it, a tiny migration, and
// the cleanup, which always runs (after a failed step and after SIGINT too).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/protection.hpp"
#include "db/connection.hpp"
#include "storage/store.hpp"

namespace previewdb::doctor {

struct Options {
  std::string conninfo;                  // the server (the migrate step connects on its own)
  std::optional<std::string> store_url;  // where a CockroachDB BACKUP goes (s3://BUCKET/PREFIX)
  storage::StoreOptions store_options;
  std::chrono::milliseconds lock_timeout{std::chrono::seconds(30)};
  std::string suffix;  // the random part of the throwaway names
};

enum class Status { ok, failed, skipped };
std::string to_string(Status status);  // "ok", "failed", "skipped"

struct Step {
  std::string name;  // "server", "lock", "snapshot", "spawn", "migrate", "cleanup"
  Status status = Status::ok;
  std::string detail;  // what was done or found, or why it failed
  long long duration_ms = 0;
};

struct Report {
  std::string server;   // "PostgreSQL 15.18", "CockroachDB v23.1.11"
  std::string dialect;  // the dialect's name
  std::vector<Step> steps;
  bool ok() const;
};

// Runs the steps on `maintenance` (connected by the caller: that is the "connect" step), calling
// on_step as each ends. A failed step skips the ones that need it; cleanup drops every database
// the run made, and only those. Never throws for a failed step: the report says it.
Report run(db::Connection& maintenance, const Options& options, const core::Protection& protection,
           const std::function<void(const Step&)>& on_step);

// One line per step for people: "ok      lock      advisory lock (12 ms)".
std::string format_step(const Step& step);
nlohmann::json to_json(const Report& report);

}  // namespace previewdb::doctor
