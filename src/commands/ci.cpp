#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_ci(const Args&) {
  throw Error(ExitCode::failure, "'previewdb ci' is not implemented yet");
}

}  // namespace previewdb::commands
