#include "util/dotenv.hpp"

#include <sstream>
#include <vector>

#include "util/strings.hpp"

namespace previewdb::util {

namespace {

// The key a line defines, or "" for comments/blank lines.
std::string line_key(const std::string& line) {
  std::string t = trim(line);
  if (t.rfind("export ", 0) == 0) t = trim(t.substr(7));
  if (t.empty() || t[0] == '#') return "";
  auto eq = t.find('=');
  return eq == std::string::npos ? "" : trim(t.substr(0, eq));
}

std::string line_value(const std::string& line) {
  std::string t = trim(line);
  std::string v = trim(t.substr(t.find('=') + 1));
  if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
    char q = v.front();
    v = v.substr(1, v.size() - 2);
    if (q == '"') {
      std::string out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) {
          char n = v[++i];
          out += n == 'n' ? '\n' : n;
        } else {
          out += v[i];
        }
      }
      v = out;
    }
  }
  return v;
}

}  // namespace

std::string dotenv_quote(const std::string& value) {
  bool plain = !value.empty();
  for (char c : value) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string("-_.:/@%?&=+,~").find(c) != std::string::npos)) {
      plain = false;
    }
  }
  if (plain) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::optional<std::string> dotenv_get(const std::string& text, const std::string& key) {
  for (const auto& line : split(text, '\n')) {
    if (line_key(line) == key) return line_value(line);
  }
  return std::nullopt;
}

std::string dotenv_set(const std::string& text, const std::string& key,
                       const std::optional<std::string>& value) {
  std::vector<std::string> lines = text.empty() ? std::vector<std::string>{} : split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  bool done = false;
  std::vector<std::string> out;
  for (const auto& line : lines) {
    if (line_key(line) == key) {
      if (!done && value) out.push_back(key + "=" + dotenv_quote(*value));
      done = true;
      continue;
    }
    out.push_back(line);
  }
  if (!done && value) out.push_back(key + "=" + dotenv_quote(*value));
  return out.empty() ? "" : join(out, "\n") + "\n";
}

}  // namespace previewdb::util
