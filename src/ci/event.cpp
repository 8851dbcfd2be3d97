#include "ci/event.hpp"

#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/files.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

using nlohmann::json;

namespace previewdb::ci {

namespace {

std::string env_or(const Env& env, const char* key, std::string fallback = {}) {
  auto it = env.find(key);
  return it == env.end() ? fallback : it->second;
}

// A string member, or "" when absent or null; any other type is hostile input.
std::string string_at(const json& obj, const char* key, std::string_view where,
                      std::string_view origin) {
  if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return {};
  if (!obj[key].is_string()) {
    throw usage_error(
        std::string(origin) + ": \"" + std::string(where) + key + "\" must be a string",
        "pass the unmodified event payload that GitHub Actions provides");
  }
  return obj[key].get<std::string>();
}

const json& object_at(const json& obj, const char* key) {
  static const json k_null;
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_object()) return k_null;
  return obj[key];
}

}  // namespace

std::string to_string(Provider p) {
  switch (p) {
    case Provider::github:
      return "github";
    case Provider::netlify:
      return "netlify";
    case Provider::generic:
      return "generic";
  }
  return "generic";
}

Provider parse_provider(std::string_view text) {
  std::string t = util::to_lower(util::trim(text));
  if (t == "github" || t == "github-actions" || t == "gha") return Provider::github;
  if (t == "netlify") return Provider::netlify;
  if (t == "generic" || t == "none") return Provider::generic;
  throw usage_error("unknown --provider " + util::quoted(text),
                    "use one of: github, netlify, generic");
}

Provider detect_provider(const Env& env, const std::optional<std::string>& override_name) {
  if (override_name) return parse_provider(*override_name);
  if (env_or(env, "GITHUB_ACTIONS") == "true") return Provider::github;
  if (env_or(env, "NETLIFY") == "true") return Provider::netlify;
  return Provider::generic;
}

long long parse_pr_number(std::string_view text, std::string_view what) {
  auto n = util::parse_uint(util::trim(text));
  if (!n || *n <= 0) {
    throw usage_error(std::string(what) +
                          " must be a pull request number (a positive integer), not " +
                          util::quoted(text),
                      "for example --pr 12");
  }
  return *n;
}

Event parse_github_event(std::string_view event_name, std::string_view json_text,
                         std::string_view origin) {
  Event ev;
  ev.provider = Provider::github;
  ev.name = std::string(event_name);
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::exception& e) {
    throw usage_error("cannot parse the GitHub event " + util::quoted(origin) + ": " + e.what(),
                      "GITHUB_EVENT_PATH must point at the event JSON written by GitHub Actions "
                      "(it looks truncated or is not JSON); use --provider generic --pr N to run "
                      "without it");
  }
  if (!doc.is_object()) {
    throw usage_error("the GitHub event " + util::quoted(origin) + " is not a JSON object",
                      "GITHUB_EVENT_PATH must point at the event JSON written by GitHub Actions");
  }
  ev.action = string_at(doc, "action", "", origin);
  ev.repository = string_at(object_at(doc, "repository"), "full_name", "repository.", origin);
  ev.default_branch =
      string_at(object_at(doc, "repository"), "default_branch", "repository.", origin);
  if (event_name == "push") {
    std::string ref = string_at(doc, "ref", "", origin);
    if (ref.rfind("refs/heads/", 0) == 0) ev.pushed_branch = ref.substr(11);
  }

  bool pr_event = event_name == "pull_request" || event_name == "pull_request_target";
  const json& pr = object_at(doc, "pull_request");
  if (!pr_event && pr.is_null()) return ev;  // push, schedule, workflow_dispatch: no PR
  if (pr.is_null()) {
    throw usage_error("the " + std::string(event_name) + " event " + util::quoted(origin) +
                          " has no \"pull_request\" object",
                      "run on pull_request events, or pass --pr N");
  }

  // The number: top-level "number" (webhook) or pull_request.number; a positive integer.
  const json* number = nullptr;
  if (doc.contains("number"))
    number = &doc["number"];
  else if (pr.contains("number"))
    number = &pr["number"];
  if (!number || !number->is_number_integer() || number->get<long long>() <= 0) {
    throw usage_error("the GitHub event " + util::quoted(origin) +
                          " has no valid pull request number (\"number\")",
                      "pass the unmodified pull_request event, or give the number with --pr N");
  }
  ev.pr_number = number->get<long long>();

  if (pr.contains("labels") && pr["labels"].is_array()) {
    std::vector<std::string> labels;
    for (const auto& l : pr["labels"]) {
      if (l.is_object() && l.contains("name") && l["name"].is_string()) {
        labels.push_back(l["name"].get<std::string>());
      }
    }
    ev.labels = std::move(labels);
  }
  if (pr.contains("merged") && pr["merged"].is_boolean()) ev.merged = pr["merged"].get<bool>();
  const json& head = object_at(pr, "head");
  const json& base = object_at(pr, "base");
  ev.head_ref = string_at(head, "ref", "pull_request.head.", origin);
  ev.head_sha = string_at(head, "sha", "pull_request.head.", origin);
  ev.base_ref = string_at(base, "ref", "pull_request.base.", origin);
  ev.base_sha = string_at(base, "sha", "pull_request.base.", origin);
  std::string head_repo = string_at(object_at(head, "repo"), "full_name", "head.repo.", origin);
  std::string base_repo = string_at(object_at(base, "repo"), "full_name", "base.repo.", origin);
  if (ev.repository.empty()) ev.repository = base_repo;
  // A deleted fork shows as head.repo = null; anything not the base repository is a fork.
  ev.fork = head_repo.empty() || (!base_repo.empty() && head_repo != base_repo);
  return ev;
}

Event github_event(const Env& env) {
  std::string name = env_or(env, "GITHUB_EVENT_NAME");
  std::string path = env_or(env, "GITHUB_EVENT_PATH");
  Event ev;
  ev.provider = Provider::github;
  ev.name = name;
  ev.repository = env_or(env, "GITHUB_REPOSITORY");
  if (path.empty()) {
    if (name == "pull_request" || name == "pull_request_target") {
      throw usage_error("GITHUB_EVENT_PATH is not set for a " + name + " event",
                        "run inside GitHub Actions, or pass --provider generic --pr N");
    }
    return ev;
  }
  std::string text = util::read_file(path);
  Event parsed = parse_github_event(name, text, path);
  if (parsed.repository.empty()) parsed.repository = ev.repository;
  return parsed;
}

Event netlify_event(const Env& env) {
  Event ev;
  ev.provider = Provider::netlify;
  ev.name = env_or(env, "CONTEXT");
  ev.head_ref = env_or(env, "HEAD", env_or(env, "BRANCH"));
  ev.head_sha = env_or(env, "COMMIT_REF");
  if (auto repo = repository_from_url(env_or(env, "REPOSITORY_URL"))) ev.repository = *repo;
  bool preview = ev.name == "deploy-preview" || env_or(env, "PULL_REQUEST") == "true";
  if (ev.name == "production") preview = false;  // production never builds a preview
  if (!preview) return ev;
  std::string review = env_or(env, "REVIEW_ID");
  if (review.empty()) {
    throw usage_error(
        "Netlify deploy preview without REVIEW_ID (the pull request number)",
        "Netlify sets REVIEW_ID for deploy previews; pass --pr N to give it yourself");
  }
  ev.pr_number = parse_pr_number(review, "REVIEW_ID");
  return ev;
}

std::vector<std::string> parse_labels(std::string_view text, std::string_view origin) {
  std::vector<std::string> out;
  std::string t = util::trim(text);
  if (t.empty()) return out;
  if (t.front() == '[') {
    json doc;
    try {
      doc = json::parse(t);
    } catch (const json::exception& e) {
      throw usage_error(std::string(origin) + " is not a valid JSON array: " + e.what(),
                        "write a JSON array of strings ([\"preview-db\"]) or a comma list "
                        "(preview-db,bug)");
    }
    for (const auto& item : doc) {
      if (!item.is_string()) {
        throw usage_error(std::string(origin) + " must contain only strings",
                          "for example [\"preview-db\", \"bug\"]");
      }
      out.push_back(item.get<std::string>());
    }
    return out;
  }
  for (auto& part : util::split(t, ',')) {
    std::string label = util::trim(part);
    if (!label.empty()) out.push_back(label);
  }
  return out;
}

std::optional<std::string> repository_from_url(std::string_view url) {
  std::string u(util::trim(url));
  if (u.empty()) return std::nullopt;
  std::string path;
  if (auto scheme = u.find("://"); scheme != std::string::npos) {
    auto slash = u.find('/', scheme + 3);
    if (slash == std::string::npos) return std::nullopt;
    path = u.substr(slash + 1);
  } else if (auto colon = u.find(':'); colon != std::string::npos) {
    path = u.substr(colon + 1);  // scp-like: git@github.com:owner/name.git
  } else {
    return std::nullopt;
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.size() > 4 && path.compare(path.size() - 4, 4, ".git") == 0)
    path.resize(path.size() - 4);
  auto parts = util::split(path, '/');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) return std::nullopt;
  for (const auto& p : parts) {
    for (char c : p) {
      bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      if (!ok) return std::nullopt;
    }
  }
  return parts[0] + "/" + parts[1];
}

}  // namespace previewdb::ci
