// GitHub Actions workflow commands ("::group::", "::error file=...::", "::add-mask::"), escaped as
// the runner expects (actions/toolkit escapeData / escapeProperty) so that no value can end the
// command line or start another command. Knows GitHub's syntax, nothing of previewdb.
#pragma once

#include <string>
#include <string_view>

namespace previewdb::util::workflow {

std::string escape_data(std::string_view s);      // %, CR, LF
std::string escape_property(std::string_view s);  // also ':' and ','

// Text with no line that the runner would read as a workflow command: a line whose first
// non-blank characters are "::" gets them written "%3A%3A". For everything printed that is not
// meant as a command (log lines, messages quoting data such as file or branch names).
std::string neutralize_commands(std::string_view text);

std::string add_mask_command(std::string_view secret);  // "::add-mask::<escaped>\n"
std::string group_command(std::string_view title);      // "::group::<escaped>\n"
std::string endgroup_command();                         // "::endgroup::\n"
// "::<kind> file=F,line=N,title=T::message\n" for kind error, warning or notice; line omitted
// when <= 0.
std::string annotation_command(std::string_view kind, std::string_view file, int line,
                               std::string_view title, std::string_view message);
// "::error file=F,line=N,title=T::message\n"; line omitted when <= 0.
std::string error_command(std::string_view file, int line, std::string_view title,
                          std::string_view message);

}  // namespace previewdb::util::workflow
