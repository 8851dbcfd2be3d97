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

std::string add_mask_command(std::string_view secret) {
  return "::add-mask::" + escape_data(secret) + "\n";
}

std::string group_command(std::string_view title) {
  return "::group::" + escape_data(title) + "\n";
}

std::string endgroup_command() {
  return "::endgroup::\n";
}

std::string error_command(std::string_view file, int line, std::string_view title,
                          std::string_view message) {
  std::string props = "file=" + escape_property(file);
  if (line > 0) props += ",line=" + std::to_string(line);
  props += ",title=" + escape_property(title);
  return "::error " + props + "::" + escape_data(message) + "\n";
}

}  // namespace previewdb::util::workflow
