#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_spawn(const Args&) {
  throw Error(ExitCode::failure, "'previewdb spawn' is not implemented yet");
}

}  // namespace previewdb::commands
