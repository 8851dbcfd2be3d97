// The command line: the command table, help, and the one place errors become exit codes.
#pragma once

namespace previewdb::cli {

// Runs `previewdb <command> ...`; returns the process exit status. Never throws.
int run(int argc, char** argv);

}  // namespace previewdb::cli
