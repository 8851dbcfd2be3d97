// The one error type: a message a user can act on, optional hints, and a stable exit code.
// Expected outcomes (not found, busy) are return values; this is for failures that end a command.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace previewdb {

// Exit codes are a contract (documented in README.md); never renumber.
enum class ExitCode : int {
  success = 0,
  failure = 1,         // anything not covered below (a command or query failed)
  usage = 2,           // bad flags, arguments, names, files or event JSON
  connection = 3,      // cannot connect to the server, or it is unsupported
  not_found = 4,       // the database, snapshot or migration named does not exist
  already_exists = 5,  // the database exists and neither --reuse nor --replace was given
  refused = 6,         // protected / unmanaged / no confirmation / changed migrations
  migration_failed = 7,
  lock_timeout = 8,
  pending = 9,  // something to review: `status --exit-code`, `lint` findings at --fail-on
};

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message, std::vector<std::string> hints = {})
      : std::runtime_error(message), m_code(code), m_hints(std::move(hints)) {}

  ExitCode code() const { return m_code; }
  const std::vector<std::string>& hints() const { return m_hints; }
  // Adds a "hint:" line; returns *this so that call sites can chain it before throwing.
  Error& with_hint(std::string hint) {
    m_hints.push_back(std::move(hint));
    return *this;
  }

 private:
  ExitCode m_code;
  std::vector<std::string> m_hints;
};

// Shorthand for the most common case: bad input from the user.
inline Error usage_error(const std::string& message, std::string hint = {}) {
  return Error(ExitCode::usage, message,
               hint.empty() ? std::vector<std::string>{} : std::vector<std::string>{hint});
}

}  // namespace previewdb
