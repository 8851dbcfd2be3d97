#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_status(const Args&) {
  throw Error(ExitCode::failure, "'previewdb status' is not implemented yet");
}

}  // namespace previewdb::commands
