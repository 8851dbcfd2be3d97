// The built binary as a util::ProcessSpec, for tests that stream its stdin/stdout
// (util::StreamingProcess) instead of running it to completion (run_cli).
#pragma once

#include <string>
#include <vector>

#include "harness/harness.hpp"
#include "util/subprocess.hpp"

namespace previewdb::test {

// The spec run_cli runs: the built binary, the environment isolated as for run_cli plus env, cwd.
util::ProcessSpec cli_spec(const std::vector<std::string>& args, const Env& env = {},
                           const std::string& cwd = {});

}  // namespace previewdb::test
