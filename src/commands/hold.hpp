// The waiting half of `previewdb hold` and `previewdb ci --hold`: one behaviour for both.
#pragma once

#include "core/lifecycle.hpp"

namespace previewdb::commands {

// Prints "holding NAME" on stdout (flushed: the line a caller such as the Netlify build plugin
// waits for) and keeps `hold` until stdin closes; SIGTERM or SIGINT end the process and with it
// the hold's session, which the server then releases.
void keep_hold_until_stdin_closes(const core::DatabaseHold& hold);

}  // namespace previewdb::commands
