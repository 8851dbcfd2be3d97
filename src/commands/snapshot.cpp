#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_snapshot(const Args&) {
  throw Error(ExitCode::failure, "'previewdb snapshot' is not implemented yet");
}

}  // namespace previewdb::commands
