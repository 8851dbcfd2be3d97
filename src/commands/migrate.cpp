#include "commands/commands.hpp"
#include "util/error.hpp"

namespace previewdb::commands {

int run_migrate(const Args&) {
  throw Error(ExitCode::failure, "'previewdb migrate' is not implemented yet");
}

}  // namespace previewdb::commands
