#include "ci/outputs.hpp"

#include "crypto/random.hpp"
#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::ci {

namespace {

std::string bool_text(bool b) {
  return b ? "true" : "false";
}

// GitHub's own toolkit uses "ghadelimiter_<uuid>"; 16 random bytes are as unguessable.
std::string random_delimiter() {
  return "ghadelimiter_" + crypto::random_hex(16);
}

std::string heredoc_entries(const std::vector<std::pair<std::string, std::string>>& pairs,
                            const std::function<std::string()>& make_delimiter,
                            std::string_view file) {
  std::string out;
  for (const auto& [key, value] : pairs) {
    // Keys are ours, but a key with a newline or "<<" would break the format: refuse it.
    if (key.empty() || key.find_first_of("\r\n=<") != std::string::npos) {
      throw Error(ExitCode::failure, "invalid " + std::string(file) + " key " + util::quoted(key));
    }
    std::string delim;
    for (int attempt = 0; attempt < 8; ++attempt) {
      delim = make_delimiter ? make_delimiter() : random_delimiter();
      if (value.find(delim) == std::string::npos && key.find(delim) == std::string::npos) break;
      delim.clear();
    }
    if (delim.empty()) {
      throw Error(ExitCode::failure, "cannot write " + std::string(file) + " key " +
                                         util::quoted(key) +
                                         ": the value contains every delimiter tried");
    }
    out += key + "<<" + delim + "\n" + value + "\n" + delim + "\n";
  }
  return out;
}

std::string escape_cell_text(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += "<br>";
    else if (c == '\r')
      continue;
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '`')
      out += "\\`";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::string markdown_cell(std::string_view s) {
  return escape_cell_text(s);
}

std::string to_string(Reason r) {
  switch (r) {
    case Reason::migrations_changed:
      return "migrations-changed";
    case Reason::label:
      return "label";
    case Reason::forced:
      return "forced";
    case Reason::no_changes:
      return "no-changes";
    case Reason::closed:
      return "closed";
    case Reason::base_branch:
      return "base-branch";
  }
  return "no-changes";
}

namespace {
std::string applied_text(const Facts& f) {
  return f.migrations_applied ? std::to_string(*f.migrations_applied) : "unknown";
}
}  // namespace

std::vector<std::pair<std::string, std::string>> output_pairs(const Facts& f) {
  std::vector<std::pair<std::string, std::string>> out = {
      {"preview", bool_text(f.preview)},
      {"reason", to_string(f.reason)},
      {"database-name", f.database_name},
      {"database-url", f.database_url},
      {"created", bool_text(f.created)},
      {"reset", bool_text(f.reset)},
      {"migrations-applied", applied_text(f)},
      {"snapshot", f.snapshot},
      {"behind", std::to_string(f.behind.size())},
      {"behind-migrations", util::join(f.behind, "\n")},
      {"snapshots-pruned", std::to_string(f.snapshots_pruned)},
  };
  if (f.error) {
    out.emplace_back("error", *f.error);
    out.emplace_back("exit-code", std::to_string(f.exit_code));
  }
  return out;
}

std::string github_output_text(const std::vector<std::pair<std::string, std::string>>& pairs,
                               const std::function<std::string()>& make_delimiter) {
  return heredoc_entries(pairs, make_delimiter, "GITHUB_OUTPUT");
}

std::string github_env_text(const std::vector<std::pair<std::string, std::string>>& vars,
                            const std::function<std::string()>& make_delimiter) {
  return heredoc_entries(vars, make_delimiter, "GITHUB_ENV");
}

std::string step_summary_markdown(const Facts& f) {
  std::string title = f.dry_run ? "### previewdb (plan, nothing changed)\n\n" : "### previewdb\n\n";
  std::string out = title + "| | |\n|---|---|\n";
  auto row = [&](std::string_view k, std::string_view v) {
    out += "| " + markdown_cell(k) + " | " + markdown_cell(v) + " |\n";
  };
  row("preview", bool_text(f.preview));
  row("reason", to_string(f.reason));
  if (!f.database_name.empty()) row("database", f.database_name);
  if (!f.database_url.empty()) row("url", f.database_url);
  if (f.preview) {
    row("created", bool_text(f.created));
    row("reset", bool_text(f.reset));
    row("migrations applied", applied_text(f));
  }
  if (f.dropped) row("dropped", "true");
  if (!f.snapshot.empty()) row("snapshot", f.snapshot);
  if (f.reason == Reason::base_branch) row("snapshots pruned", std::to_string(f.snapshots_pruned));
  if (!f.behind.empty()) {
    row("behind the base branch", util::join(f.behind, ", "));
  }
  if (f.error) {
    row("failed", *f.error);
    row("exit code", std::to_string(f.exit_code));
  }
  if (!f.message.empty()) out += "\n" + markdown_cell(f.message) + "\n";
  if (!f.behind.empty()) {
    out += "\nThe preview carries " + std::to_string(f.behind.size()) +
           " migration(s) merged to the base branch after this branch was created; merge the base "
           "branch into the pull request to test them together.\n";
  }
  if (f.error) {
    out += "\n**The run failed** (exit code " + std::to_string(f.exit_code) +
           "): " + markdown_cell(*f.error) + "\n";
  }
  if (f.report) out += "\n" + *f.report;
  return out;
}

std::string dotenv_text(const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  for (const auto& [key, value] : vars) {
    bool plain = value.find_first_of(" \t\r\n\"'\\$#`") == std::string::npos;
    if (plain) {
      out += key + "=" + value + "\n";
      continue;
    }
    std::string q;
    for (char c : value) {
      if (c == '\n')
        q += "\\n";
      else if (c == '\r')
        q += "\\r";
      else if (c == '"' || c == '\\' || c == '$' || c == '`')
        q += std::string("\\") + c;
      else
        q += c;
    }
    out += key + "=\"" + q + "\"\n";
  }
  return out;
}

nlohmann::json to_json(const Facts& f) {
  nlohmann::json j{
      {"preview", f.preview},
      {"reason", to_string(f.reason)},
      {"database-name", f.database_name},
      {"database-url", f.database_url},
      {"created", f.created},
      {"reset", f.reset},
      {"migrations-applied",
       f.migrations_applied ? nlohmann::json(*f.migrations_applied) : nlohmann::json(nullptr)},
      {"snapshot", f.snapshot},
      {"dropped", f.dropped},
      {"dry_run", f.dry_run},
      {"message", f.message},
      {"behind", f.behind.size()},
      {"behind_migrations", f.behind},
      {"snapshots_pruned", f.snapshots_pruned},
      {"pooled", f.pooled},
  };
  if (f.error) {
    j["error"] = *f.error;
    j["exit_code"] = f.exit_code;
  }
  if (f.report || !f.report_comment.empty()) {  // the no-op path may still remove a comment
    j["report"] = {{"findings", f.report_findings},
                   {"comment", f.report_comment.empty() ? nlohmann::json(nullptr)
                                                        : nlohmann::json(f.report_comment)}};
  }
  return j;
}

}  // namespace previewdb::ci
