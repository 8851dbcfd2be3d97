#include "net/github.hpp"

#include <nlohmann/json.hpp>

#include "util/error.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"

using nlohmann::json;

namespace previewdb::net {

namespace {

bool valid_repository(const std::string& r) {
  auto parts = util::split(r, '/');
  if (parts.size() != 2) return false;
  for (const auto& p : parts) {
    if (p.empty() || p == "." || p == "..") return false;
    for (char c : p) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        return false;
      }
    }
  }
  return true;
}

std::string api_message(const std::string& body) {
  try {
    json doc = json::parse(body);
    if (doc.is_object()) {
      for (const char* key : {"message", "error"}) {
        if (doc.contains(key) && doc[key].is_string()) return doc[key].get<std::string>();
      }
    }
  } catch (const json::exception&) {
  }
  return {};
}

}  // namespace

GitHubClient::GitHubClient(GitHubOptions options) : m_options(std::move(options)) {
  while (!m_options.api_url.empty() && m_options.api_url.back() == '/')
    m_options.api_url.pop_back();
  m_origin = origin_of(m_options.api_url);
  if (m_origin.rfind("https://", 0) != 0 && m_origin.rfind("http://", 0) != 0) {
    throw usage_error("the GitHub API URL " + util::quoted(util::redact_url(m_options.api_url)) +
                          " is not an http(s) URL",
                      "set GITHUB_API_URL to https://api.github.com or https://HOST/api/v3");
  }
  if (!valid_repository(m_options.repository)) {
    throw usage_error(
        "the GitHub repository " + util::quoted(m_options.repository) +
            " is not of the form owner/name",
        "set GITHUB_REPOSITORY (GitHub Actions sets it), or REPOSITORY_URL on Netlify");
  }
  if (!m_options.token.empty()) util::register_secret(m_options.token);
}

HttpResponse GitHubClient::get(const std::string& url, const std::string& what, long long pr,
                               bool allow_not_found) {
  return send("GET", url, "", what, pr, allow_not_found);
}

HttpResponse GitHubClient::send(const std::string& method, const std::string& url,
                                const std::string& body, const std::string& what, long long pr,
                                bool allow_not_found) {
  // Never send the token to another origin, whatever a Link header says.
  if (origin_of(url) != m_origin) {
    throw Error(ExitCode::failure, "the GitHub API pointed " + what + " at " +
                                       util::quoted(util::redact_url(url)) + ", outside " +
                                       m_origin + "; refusing to follow it");
  }
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.body = body;
  req.headers = {{"Accept", "application/vnd.github+json"}, {"X-GitHub-Api-Version", "2022-11-28"}};
  if (!body.empty()) req.headers.emplace_back("Content-Type", "application/json");
  if (!m_options.token.empty())
    req.headers.emplace_back("Authorization", "Bearer " + m_options.token);
  ++m_requests;
  HttpResponse r = http_send(req, m_options.retry);
  if (r.status >= 200 && r.status < 300) return r;
  if (r.status == 404 && allow_not_found) return r;

  bool write = method != "GET";
  std::string subject = "pull request #" + std::to_string(pr) + " of " + m_options.repository;
  std::string reason = "HTTP " + std::to_string(r.status);
  if (auto m = api_message(r.body); !m.empty()) reason += " " + util::scrub(m);
  std::string doing = write ? "writing " : "reading ";
  if (r.status == 401) {
    throw Error(ExitCode::failure,
                "the GitHub API rejected the token while " + doing + what + " of " + subject +
                    " (" + reason + ")",
                {"check GITHUB_TOKEN: it must be a valid, unexpired token; in a workflow pass "
                 "'github-token: ${{ secrets.GITHUB_TOKEN }}'"});
  }
  if (r.status == 403) {
    throw Error(
        ExitCode::failure,
        "the GitHub API refused " + std::string(write ? "to write " : "to show ") + what + " of " +
            subject + " (" + reason + ")",
        {write ? "the token needs write access to pull requests ('permissions: pull-requests: "
                 "write'); a pull request from a fork gets a read-only token"
               : "the token needs read access to pull requests ('permissions: pull-requests: "
                 "read'); if the rate limit is exhausted, retry later or pass a token"});
  }
  if (r.status == 404) {
    throw Error(ExitCode::failure, "the GitHub API does not know " + subject + " (" + reason + ")",
                {"check the repository (GITHUB_REPOSITORY, or REPOSITORY_URL on Netlify) and the "
                 "PR number; for a private repository the token needs read access to it"});
  }
  throw Error(ExitCode::failure,
              "the GitHub API failed to " + std::string(write ? "write " : "return ") + what +
                  " of " + subject + " (" + reason + ", after " + std::to_string(r.attempts) +
                  (r.attempts == 1 ? " try)" : " tries)"));
}

std::vector<std::string> GitHubClient::get_pages(const std::string& path, const std::string& what,
                                                 long long pr, const char* field) {
  std::vector<std::string> out;
  std::string url = m_options.api_url + path + "?per_page=" + std::to_string(m_options.per_page);
  for (int page = 1;; ++page) {
    if (page > m_options.max_pages) {
      throw Error(ExitCode::failure, "the GitHub API returned more than " +
                                         std::to_string(m_options.max_pages) + " pages of " + what +
                                         " for pull request #" + std::to_string(pr));
    }
    HttpResponse r = get(url, what, pr);
    json doc;
    try {
      doc = json::parse(r.body);
    } catch (const json::exception& e) {
      throw Error(ExitCode::failure, "the GitHub API returned invalid JSON for " + what +
                                         " of pull request #" + std::to_string(pr) + ": " +
                                         e.what());
    }
    if (!doc.is_array()) {
      throw Error(ExitCode::failure, "the GitHub API returned " + what + " of pull request #" +
                                         std::to_string(pr) + " that is not a JSON array");
    }
    for (const auto& item : doc) {
      if (item.is_object() && item.contains(field) && item[field].is_string()) {
        out.push_back(item[field].get<std::string>());
      }
    }
    auto link = r.header("link");
    auto next = link ? next_link(*link) : std::nullopt;
    if (!next) break;
    url = *next;
  }
  return out;
}

std::vector<std::string> GitHubClient::pr_labels(long long pr) {
  return get_pages("/repos/" + m_options.repository + "/issues/" + std::to_string(pr) + "/labels",
                   "the labels", pr, "name");
}

std::vector<std::string> GitHubClient::pr_files(long long pr) {
  return get_pages("/repos/" + m_options.repository + "/pulls/" + std::to_string(pr) + "/files",
                   "the changed files", pr, "filename");
}

PullState GitHubClient::pr_state(long long pr) {
  HttpResponse r =
      get(m_options.api_url + "/repos/" + m_options.repository + "/pulls/" + std::to_string(pr),
          "the state", pr);
  PullState s;
  s.number = pr;
  try {
    json doc = json::parse(r.body);
    if (doc.is_object()) {
      if (doc.contains("state") && doc["state"].is_string()) s.state = doc["state"];
      if (doc.contains("merged") && doc["merged"].is_boolean())
        s.merged = doc["merged"];
      else if (doc.contains("merged_at") && doc["merged_at"].is_string())
        s.merged = true;
      if (doc.contains("labels") && doc["labels"].is_array()) {
        for (const auto& l : doc["labels"]) {
          if (l.is_object() && l.contains("name") && l["name"].is_string())
            s.labels.push_back(l["name"]);
        }
      }
      for (auto [key, dest] : {std::pair{"head", &s.head_ref}, std::pair{"base", &s.base_ref}}) {
        if (doc.contains(key) && doc[key].is_object() && doc[key].contains("ref") &&
            doc[key]["ref"].is_string()) {
          *dest = doc[key]["ref"];
        }
      }
    }
  } catch (const json::exception& e) {
    throw Error(ExitCode::failure, "the GitHub API returned invalid JSON for pull request #" +
                                       std::to_string(pr) + ": " + e.what());
  }
  if (s.state != "open" && s.state != "closed") {
    throw Error(ExitCode::failure, "the GitHub API returned no state for pull request #" +
                                       std::to_string(pr) + " of " + m_options.repository);
  }
  return s;
}

std::optional<std::vector<std::string>> GitHubClient::folder_entries(const std::string& folder,
                                                                     const std::string& ref,
                                                                     long long pr) {
  std::string what = "the files of " + util::quoted(folder) + " on " + util::quoted(ref);
  HttpResponse r = get(m_options.api_url + "/repos/" + m_options.repository + "/contents/" +
                           util::url_encode(folder, true) + "?ref=" + util::url_encode(ref),
                       what, pr, true);
  if (r.status == 404) return std::nullopt;
  std::vector<std::string> out;
  try {
    json doc = json::parse(r.body);
    // A file instead of a folder comes back as one object: not a migrations folder.
    if (!doc.is_array()) return std::nullopt;
    for (const auto& item : doc) {
      if (item.is_object() && item.contains("name") && item["name"].is_string()) {
        out.push_back(item["name"].get<std::string>());
      }
    }
  } catch (const json::exception& e) {
    throw Error(ExitCode::failure,
                "the GitHub API returned invalid JSON for " + what + ": " + e.what());
  }
  return out;
}

namespace {

IssueComment comment_from(const json& item) {
  IssueComment c;
  if (item.contains("id") && item["id"].is_number_integer()) c.id = item["id"].get<long long>();
  if (item.contains("body") && item["body"].is_string()) c.body = item["body"].get<std::string>();
  if (item.contains("user") && item["user"].is_object() && item["user"].contains("login") &&
      item["user"]["login"].is_string()) {
    c.user = item["user"]["login"].get<std::string>();
  }
  return c;
}

json parse_body(const HttpResponse& r, const std::string& what, long long pr) {
  try {
    return json::parse(r.body);
  } catch (const json::exception& e) {
    throw Error(ExitCode::failure, "the GitHub API returned invalid JSON for " + what +
                                       " of pull request #" + std::to_string(pr) + ": " + e.what());
  }
}

}  // namespace

std::vector<IssueComment> GitHubClient::pr_comments(long long pr) {
  const std::string what = "the comments";
  std::vector<IssueComment> out;
  std::string url = m_options.api_url + "/repos/" + m_options.repository + "/issues/" +
                    std::to_string(pr) + "/comments?per_page=" + std::to_string(m_options.per_page);
  for (int page = 1;; ++page) {
    if (page > m_options.max_pages) {
      throw Error(ExitCode::failure, "the GitHub API returned more than " +
                                         std::to_string(m_options.max_pages) + " pages of " + what +
                                         " for pull request #" + std::to_string(pr));
    }
    HttpResponse r = get(url, what, pr);
    json doc = parse_body(r, what, pr);
    if (!doc.is_array()) {
      throw Error(ExitCode::failure, "the GitHub API returned " + what + " of pull request #" +
                                         std::to_string(pr) + " that is not a JSON array");
    }
    for (const auto& item : doc) {
      if (item.is_object()) out.push_back(comment_from(item));
    }
    auto link = r.header("link");
    auto next = link ? next_link(*link) : std::nullopt;
    if (!next) break;
    url = *next;
  }
  return out;
}

IssueComment GitHubClient::create_comment(long long pr, const std::string& body) {
  HttpResponse r = send("POST",
                        m_options.api_url + "/repos/" + m_options.repository + "/issues/" +
                            std::to_string(pr) + "/comments",
                        json{{"body", body}}.dump(-1, ' ', false, json::error_handler_t::replace),
                        "a comment", pr);
  return comment_from(parse_body(r, "the new comment", pr));
}

IssueComment GitHubClient::update_comment(long long id, const std::string& body, long long pr) {
  HttpResponse r = send("PATCH",
                        m_options.api_url + "/repos/" + m_options.repository + "/issues/comments/" +
                            std::to_string(id),
                        json{{"body", body}}.dump(-1, ' ', false, json::error_handler_t::replace),
                        "comment " + std::to_string(id), pr);
  return comment_from(parse_body(r, "the updated comment", pr));
}

bool GitHubClient::delete_comment(long long id, long long pr) {
  HttpResponse r = send("DELETE",
                        m_options.api_url + "/repos/" + m_options.repository + "/issues/comments/" +
                            std::to_string(id),
                        "", "comment " + std::to_string(id), pr, /*allow_not_found=*/true);
  return r.status != 404;
}

}  // namespace previewdb::net
