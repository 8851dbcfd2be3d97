// Progress and diagnostics on stderr; stdout is for results. Every line passes through scrub(),
// and no line but command()s can start a GitHub workflow command.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::util::log {

enum class Level { quiet = 0, normal = 1, verbose = 2 };

void set_level(Level level);
Level level();

void info(std::string_view message);     // "previewdb: message" unless quiet
void warn(std::string_view message);     // "previewdb: warning: message", always
void debug(std::string_view message);    // only with --verbose
void raw_err(std::string_view message);  // as is (scrubbed), no prefix, always
// A workflow command line ("::group::..."), already escaped by util::workflow: the one kind of
// line that may start with "::" (every other line's "::" is neutralised).
void command(std::string_view message);

}  // namespace previewdb::util::log
