#include "util/workflow_commands.hpp"

namespace previewdb::util::workflow {

namespace {
std::string escape(std::string_view s, bool property) {
  std::string out;
  for (char c : s) {
    if (c == '%') {
      out += "%25";
    } else if (c == '\r') {
      out += "%0D";
    } else if (c == '\n') {
      out += "%0A";
    } else if (property && c == ':') {
      out += "%3A";
    } else if (property && c == ',') {
      out += "%2C";
    } else {
      out += c;
    }
  }
  return out;
}
}  // namespace

std::string escape_data(std::string_view s) {
  return escape(s, false);
}
std::string escape_property(std::string_view s) {
  return escape(s, true);
}

std::string neutralize_commands(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    size_t first = line.find_first_not_of(" \t\r\f\v");
    if (first != std::string_view::npos && line.substr(first, 2) == "::") {
      // The runner trims leading blanks before it looks for "::": escape the colons themselves.
      out += std::string(line.substr(0, first)) + "%3A%3A" + std::string(line.substr(first + 2));
    } else {
      out += line;
    }
    if (nl == std::string_view::npos) break;
    out += '\n';
    pos = nl + 1;
  }
  return out;
}

std::string add_mask_command(std::string_view secret) {
  return "::add-mask::" + escape_data(secret) + "\n";
}

std::string group_command(std::string_view title) {
  return "::group::" + escape_data(title) + "\n";
}

std::string endgroup_command() {
  return "::endgroup::\n";
}

std::string annotation_command(std::string_view kind, std::string_view file, int line,
                               std::string_view title, std::string_view message) {
  std::string props = "file=" + escape_property(file);
  if (line > 0) props += ",line=" + std::to_string(line);
  props += ",title=" + escape_property(title);
  return "::" + std::string(kind) + " " + props + "::" + escape_data(message) + "\n";
}

std::string error_command(std::string_view file, int line, std::string_view title,
                          std::string_view message) {
  return annotation_command("error", file, line, title, message);
}

}  // namespace previewdb::util::workflow
