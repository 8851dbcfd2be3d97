// The few GitHub REST calls previewdb needs: a PR's labels, its changed files (paginated), its
// state, and its issue comments (listed with pagination, created, updated, deleted: previewdb's
// one report comment). The token is registered as a secret and only ever sent to the API's own
// origin.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "net/http.hpp"

namespace previewdb::net {

struct GitHubOptions {
  std::string api_url = "https://api.github.com";  // GITHUB_API_URL (GHES: https://host/api/v3)
  std::string token;                               // GITHUB_TOKEN; empty: anonymous
  std::string repository;                          // "owner/name"
  RetryPolicy retry;
  int per_page = 100;
  int max_pages = 100;  // GitHub lists at most 3000 files; a loop past this is a bug or hostile
};

struct PullState {
  long long number = 0;
  std::string state;  // "open" or "closed"
  bool merged = false;
  std::vector<std::string> labels;
  std::string head_ref, base_ref;
  bool open() const { return state == "open"; }
};

// An issue comment as GitHub returns it (the fields previewdb reads).
struct IssueComment {
  long long id = 0;
  std::string body;
  std::string user;  // user.login
};

class GitHubClient {
 public:
  // Throws Error(usage) when the repository is not "owner/name" or the API URL is not http(s).
  explicit GitHubClient(GitHubOptions options);

  std::vector<std::string> pr_labels(long long pr);  // GET /repos/{r}/issues/{n}/labels
  std::vector<std::string> pr_files(long long pr);   // GET /repos/{r}/pulls/{n}/files, all pages
  PullState pr_state(long long pr);                  // GET /repos/{r}/pulls/{n}
  // The names of the entries (files and folders) of `folder` on branch `ref`:
  // GET /repos/{r}/contents/{folder}?ref={ref}. nullopt when the folder does not exist there.
  // `pr` only names the pull request in messages.
  std::optional<std::vector<std::string>> folder_entries(const std::string& folder,
                                                         const std::string& ref, long long pr);

  // GET /repos/{r}/issues/{n}/comments, every page (oldest first, as GitHub lists them).
  std::vector<IssueComment> pr_comments(long long pr);
  // POST /repos/{r}/issues/{n}/comments with {"body": body}: the new comment.
  IssueComment create_comment(long long pr, const std::string& body);
  // PATCH /repos/{r}/issues/comments/{id} with {"body": body}. `pr` only names it in messages.
  IssueComment update_comment(long long id, const std::string& body, long long pr);
  // DELETE /repos/{r}/issues/comments/{id}; false when it was already gone (404).
  bool delete_comment(long long id, long long pr);

  int requests_made() const { return m_requests; }

 private:
  // Sends one request to the API (GET/POST/PATCH/DELETE, JSON body when not empty) and throws a
  // clear Error for a failed answer; a 404 is returned (not thrown) when allow_not_found.
  HttpResponse send(const std::string& method, const std::string& url, const std::string& body,
                    const std::string& what, long long pr, bool allow_not_found = false);
  // GETs path (or an absolute next-page URL) and returns every page's JSON array concatenated.
  std::vector<std::string> get_pages(const std::string& path, const std::string& what, long long pr,
                                     const char* field);
  // A 404 is returned (not thrown) when allow_not_found.
  HttpResponse get(const std::string& url, const std::string& what, long long pr,
                   bool allow_not_found = false);

  GitHubOptions m_options;
  std::string m_origin;
  int m_requests = 0;
};

}  // namespace previewdb::net
