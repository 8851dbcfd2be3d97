#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_local(const Args&) {
  throw Error(ExitCode::failure, "'previewdb local' is not implemented yet");
}

}  // namespace previewdb::commands
