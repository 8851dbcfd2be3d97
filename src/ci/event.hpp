// Which CI runs us and what it tells us about the pull request: GitHub Actions (the event JSON at
// GITHUB_EVENT_PATH), Netlify (CONTEXT, REVIEW_ID, ...), or generic (everything from flags).
// Everything here takes plain values (an environment map, file contents); nothing reads getenv.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace previewdb::ci {

using Env = std::map<std::string, std::string>;

enum class Provider { github, netlify, generic };

std::string to_string(Provider p);  // "github", "netlify", "generic"
// "github" (or "github-actions"), "netlify", "generic"; throws Error(usage) naming --provider.
Provider parse_provider(std::string_view text);
// The override when given, else GITHUB_ACTIONS=true -> github, NETLIFY=true -> netlify, else
// generic.
Provider detect_provider(const Env& env, const std::optional<std::string>& override_name);

// What a CI run knows about the pull request it builds. Fields it does not know stay empty.
struct Event {
  Provider provider = Provider::generic;
  std::string name;                    // GitHub event name ("pull_request"), Netlify CONTEXT
  std::optional<long long> pr_number;  // nullopt: not a pull request build (push, production)
  std::string action;                  // "opened", "synchronize", "labeled", "closed", ...
  std::optional<std::vector<std::string>> labels;  // nullopt: the event does not say
  std::string head_ref, head_sha, base_ref, base_sha;
  bool merged = false;
  bool fork = false;           // head repository differs from the base repository
  std::string repository;      // "owner/name" when known
  std::string default_branch;  // repository.default_branch ("main", "master") when the event says
  std::string pushed_branch;   // push events: the branch pushed to ("refs/heads/" removed)
  bool closed() const { return action == "closed"; }
  // The head may be someone else's code: pull_request_target (runs with the base's secrets) or a
  // fork. Then previewdb.json comes from the base branch and commands only from the workflow.
  bool untrusted_head() const { return name == "pull_request_target" || fork; }
};

// Parses a GitHub webhook payload (the file at GITHUB_EVENT_PATH). For pull_request and
// pull_request_target the PR fields are required; other events (push, schedule, ...) give an
// Event without a PR number. `origin` names the input in messages (the file's path).
// Malformed or truncated JSON, or a PR event without a number -> Error(usage) with a hint.
Event parse_github_event(std::string_view event_name, std::string_view json_text,
                         std::string_view origin);

// The GitHub Actions event: GITHUB_EVENT_NAME, GITHUB_EVENT_PATH (read here), GITHUB_REPOSITORY.
Event github_event(const Env& env);

// The Netlify build: CONTEXT (deploy-preview, branch-deploy, production, dev), REVIEW_ID,
// PULL_REQUEST, BRANCH, HEAD, COMMIT_REF, REPOSITORY_URL (owner/name only; it may carry a token).
// REVIEW_ID that is not a positive number in a deploy preview -> Error(usage).
Event netlify_event(const Env& env);

// Labels as users write them in PREVIEWDB_LABELS: a JSON array of strings, or a comma list.
// Throws Error(usage) naming `origin` for a malformed JSON array.
std::vector<std::string> parse_labels(std::string_view text, std::string_view origin);

// "owner/name" from a clone URL (https://[token@]github.com/o/r(.git), git@github.com:o/r.git,
// ssh://git@github.com/o/r). nullopt when the URL has no such path. The URL is never echoed in
// errors unredacted.
std::optional<std::string> repository_from_url(std::string_view url);

// A PR number given as text (--pr, REVIEW_ID): a positive integer, else Error(usage) naming `what`.
long long parse_pr_number(std::string_view text, std::string_view what);

}  // namespace previewdb::ci
