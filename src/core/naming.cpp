#include "core/naming.hpp"

#include "util/error.hpp"
#include "util/strings.hpp"

namespace previewdb::core {

namespace {
bool allowed(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
const char* k_allowed_text =
    "use only lowercase letters a-z, digits 0-9, '_' and '-', at most 63 bytes";
}  // namespace

void validate_name(std::string_view name, std::string_view what) {
  std::string label(what);
  if (name.empty()) throw usage_error(label + " is empty", k_allowed_text);
  if (name.size() > k_max_name_bytes) {
    throw usage_error(label + " " + util::quoted(name) + " is " + std::to_string(name.size()) +
                          " bytes long; PostgreSQL allows at most 63",
                      std::string("choose a shorter name; ") + k_allowed_text);
  }
  if (name[0] == '-') {
    // A leading '-' reads as a flag to every tool the name is passed to (psql, pg_dump, createdb).
    throw usage_error("invalid " + label + " " + util::quoted(name) + ": it starts with '-'",
                      std::string("start the name with a letter or digit; ") + k_allowed_text);
  }
  for (unsigned char c : name) {
    if (!allowed(c)) {
      std::string what_char;
      if (c >= 'A' && c <= 'Z')
        what_char = "uppercase letter '" + std::string(1, static_cast<char>(c)) + "'";
      else if (c >= 0x80)
        what_char = "non-ASCII character";
      else if (c < 0x20 || c == 0x7f)
        what_char = "control character";
      else
        what_char = "character '" + std::string(1, static_cast<char>(c)) + "'";
      throw usage_error(
          "invalid " + label + " " + util::quoted(name) + ": it contains a " + what_char,
          k_allowed_text);
    }
  }
}

std::string pr_database_name(long long pr_number) {
  if (pr_number <= 0) {
    throw usage_error("invalid pull request number " + std::to_string(pr_number),
                      "a pull request number is a positive integer, e.g. --pr 12");
  }
  return "pr_" + std::to_string(pr_number);
}

namespace {
std::string name_part(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) {
    char n = static_cast<char>(std::tolower(c));
    out += allowed(static_cast<unsigned char>(n)) && c < 0x80 ? n : '_';
  }
  return out;
}
}  // namespace

std::string preview_database_name(std::string_view name_template, long long pr_number,
                                  std::string_view repository, std::string_view setting) {
  std::string pr = pr_database_name(pr_number).substr(3);  // validates the number
  if (name_template.empty()) return "pr_" + pr;
  std::string tmpl(name_template);
  const std::string hint =
      "use {pr} (required), {repo} and {owner}, e.g. " + std::string(setting) + " 'pr_{repo}_{pr}'";
  if (tmpl.find("{pr}") == std::string::npos) {
    throw usage_error("invalid " + std::string(setting) + " " + util::quoted(tmpl) +
                          ": it has no {pr}, so every pull request would get the same database",
                      hint);
  }
  auto slash = repository.find('/');
  std::string out;
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] != '{') {
      out += tmpl[i++];
      continue;
    }
    auto close = tmpl.find('}', i);
    std::string key = close == std::string::npos ? tmpl.substr(i) : tmpl.substr(i, close - i + 1);
    if (key == "{pr}") {
      out += pr;
    } else if (key == "{repo}" || key == "{owner}") {
      if (repository.empty() || slash == std::string_view::npos) {
        throw usage_error(std::string(setting) + " " + util::quoted(tmpl) + " uses " + key +
                              " but the repository is not known",
                          "run in GitHub Actions, set GITHUB_REPOSITORY=owner/name, or give the "
                          "clone an 'origin' remote");
      }
      out +=
          name_part(key == "{repo}" ? repository.substr(slash + 1) : repository.substr(0, slash));
    } else {
      throw usage_error("invalid " + std::string(setting) + " " + util::quoted(tmpl) +
                            ": unknown placeholder " + util::quoted(key),
                        hint);
    }
    i += key.size();
  }
  validate_name(out, "database name from " + std::string(setting) + " " + util::quoted(tmpl));
  return out;
}

std::string personal_database_name(std::string_view user, std::string_view feature) {
  validate_name(feature, "feature name");
  std::string name = "dev_" + std::string(user) + "_" + std::string(feature);
  validate_name(name, "database name");
  return name;
}

std::string normalise_user(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) {
    char n = static_cast<char>(std::tolower(c));
    if (!allowed(static_cast<unsigned char>(n)) || c >= 0x80) n = '_';
    if (n == '_' && !out.empty() && out.back() == '_') continue;
    out += n;
  }
  while (!out.empty() && (out.front() == '_' || out.front() == '-')) out.erase(out.begin());
  while (!out.empty() && (out.back() == '_' || out.back() == '-')) out.pop_back();
  if (out.size() > 32) out.resize(32);
  if (out.empty()) {
    throw usage_error("cannot derive a user name from " + util::quoted(raw),
                      "pass --user NAME or set PREVIEWDB_USER");
  }
  return out;
}

}  // namespace previewdb::core
