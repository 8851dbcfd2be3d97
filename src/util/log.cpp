#include "util/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

#include "util/redact.hpp"
#include "util/workflow_commands.hpp"

namespace previewdb::util::log {

namespace {
Level g_level = Level::normal;
std::mutex g_mutex;

void emit(std::string_view prefix, std::string_view message, bool is_command = false) {
  // Data inside a message (a file or branch name with a newline) must never start a workflow
  // command line: only command() may.
  std::string text = scrub(message);
  if (!is_command) text = workflow::neutralize_commands(text);
  std::string line = std::string(prefix) + text + "\n";
  std::lock_guard lock(g_mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}
}  // namespace

void set_level(Level l) {
  g_level = l;
}
Level level() {
  return g_level;
}

void info(std::string_view m) {
  if (g_level >= Level::normal) emit("previewdb: ", m);
}
void warn(std::string_view m) {
  emit("previewdb: warning: ", m);
}
void debug(std::string_view m) {
  if (g_level >= Level::verbose) emit("previewdb: debug: ", m);
}
void raw_err(std::string_view m) {
  emit("", m);
}
void command(std::string_view m) {
  emit("", m, /*is_command=*/true);
}

}  // namespace previewdb::util::log
