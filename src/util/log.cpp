#include "util/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

#include "util/redact.hpp"

namespace previewdb::util::log {

namespace {
Level g_level = Level::normal;
std::mutex g_mutex;

void emit(std::string_view prefix, std::string_view message) {
  std::string line = std::string(prefix) + scrub(message) + "\n";
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

}  // namespace previewdb::util::log
