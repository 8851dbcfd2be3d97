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

// A running child whose stdin and/or stdout this process streams (pg_dump | compressor,
// decompressor | pg_restore). Its stderr is always captured (kept in result().err). Waits for
// the child (killing it first when still running) on destruction.
class StreamingProcess {
 public:
  // feed_stdin: a pipe to the child's stdin (else /dev/null). read_stdout: a pipe from its stdout
  // (else to this process's stderr). Throws Error when the program cannot be started.
  StreamingProcess(const ProcessSpec& spec, bool feed_stdin, bool read_stdout);
  ~StreamingProcess();
  StreamingProcess(const StreamingProcess&) = delete;
  StreamingProcess& operator=(const StreamingProcess&) = delete;

  // Up to `size` bytes of the child's stdout; 0 at end of stream.
  size_t read(char* buf, size_t size);
  // Writes all bytes to the child's stdin; false when the child closed it (exited or stopped
  // reading): the rest of the stream is then unwanted.
  bool write(const char* data, size_t size);
  void close_stdin();
  // Closes stdin, drains stderr and waits. Idempotent.
  const ProcessResult& wait();
  pid_t pid() const { return m_pid; }

 private:
  void drain_stderr(bool block);
  pid_t m_pid = -1;
  int m_in = -1, m_out = -1, m_err = -1;
  bool m_waited = false;
  ProcessResult m_result;
};

// Finds a program on PATH; nullopt when absent.
std::optional<std::string> find_program(const std::string& name);

}  // namespace previewdb::util
