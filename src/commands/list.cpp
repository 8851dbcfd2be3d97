#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_list(const Args&) {
  throw Error(ExitCode::failure, "'previewdb list' is not implemented yet");
}

}  // namespace previewdb::commands
