// Child processes (pg_dump, pg_restore, initdb, pg_ctl, users' commands) without a shell.
// Secrets reach children through the environment, never through argv. Children are killed
// (SIGKILL, PR_SET_PDEATHSIG) when previewdb dies; what they fork themselves (a server that
// pg_ctl starts) is not.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace previewdb::util {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH when it has no '/'
  // Changes to this process's environment: a value sets, nullopt removes.
  std::map<std::string, std::optional<std::string>> env;
  std::string cwd;                // empty: inherit
  bool capture_stdout = false;    // else inherited
  bool capture_stderr = false;    // else inherited
  bool stdout_to_stderr = false;  // keep stdout clean for results: child output goes to stderr
  std::optional<uid_t> uid;       // drop privileges to this user in the child (root only)
  std::optional<gid_t> gid;
};

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
  bool ok() const { return exit_code == 0; }
};

// Runs to completion. Throws Error when the program cannot be started (names it).
ProcessResult run_process(const ProcessSpec& spec);

// Runs producer | consumer (e.g. pg_dump | pg_restore). Both results are returned.
std::pair<ProcessResult, ProcessResult> run_pipeline(const ProcessSpec& producer,
                                                     const ProcessSpec& consumer);

// Finds a program on PATH; nullopt when absent.
std::optional<std::string> find_program(const std::string& name);

}  // namespace previewdb::util
