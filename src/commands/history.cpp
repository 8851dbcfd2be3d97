#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_history(const Args&) {
  throw Error(ExitCode::failure, "'previewdb history' is not implemented yet");
}

}  // namespace previewdb::commands
