// previewdb doctor: declared apart from commands.hpp so that only cli.cpp sees it.
#pragma once

#include "commands/commands.hpp"

namespace previewdb::commands {

// doctor [--url URL] [--store s3://...] [--json]: a step-by-step check of a server on throwaway
// names (commands/doctor.cpp, src/doctor/).
int run_doctor(const Args& args);

}  // namespace previewdb::commands
