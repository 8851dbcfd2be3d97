#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_cleanup(const Args&) {
  throw Error(ExitCode::failure, "'previewdb cleanup' is not implemented yet");
}

}  // namespace previewdb::commands
