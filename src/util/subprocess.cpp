#include "util/subprocess.hpp"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

#include "util/error.hpp"
#include "util/strings.hpp"

extern char** environ;

namespace previewdb::util {

namespace {

std::vector<std::string> build_env(const std::map<std::string, std::optional<std::string>>& delta) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : delta) {
    if (v)
      env[k] = *v;
    else
      env.erase(k);
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

class Pipe {
 public:
  Pipe() {
    if (::pipe2(m_fd, O_CLOEXEC) != 0) {
      throw Error(ExitCode::failure, std::string("pipe() failed: ") + std::strerror(errno));
    }
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  int read_end() const { return m_fd[0]; }
  int write_end() const { return m_fd[1]; }
  void close_read() {
    if (m_fd[0] >= 0) ::close(m_fd[0]);
    m_fd[0] = -1;
  }
  void close_write() {
    if (m_fd[1] >= 0) ::close(m_fd[1]);
    m_fd[1] = -1;
  }

 private:
  int m_fd[2] = {-1, -1};
};

// Everything the child needs, prepared before fork() so the child only calls async-signal-safe
// functions.
struct Prepared {
  std::string program;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::vector<char*> argv;
  std::vector<char*> envp;

  explicit Prepared(const ProcessSpec& spec) {
    if (spec.argv.empty()) throw Error(ExitCode::failure, "internal: empty argv");
    const std::string& name = spec.argv[0];
    if (name.find('/') != std::string::npos) {
      program = name;
    } else if (auto found = find_program(name)) {
      program = *found;
    } else {
      throw Error(ExitCode::failure, "cannot run " + util::quoted(name) + ": not found on PATH",
                  {"install it (scripts/install-deps.sh installs PostgreSQL's client and server "
                   "programs) or add its directory to PATH"});
    }
    args = spec.argv;
    env = build_env(spec.env);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
};

pid_t spawn(const ProcessSpec& spec, Prepared& p, int in_fd, int out_fd, int err_fd) {
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0)
    throw Error(ExitCode::failure, std::string("fork() failed: ") + std::strerror(errno));
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    if (in_fd >= 0) ::dup2(in_fd, 0);
    if (out_fd >= 0) ::dup2(out_fd, 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) _exit(126);
    if (spec.gid && ::setgid(*spec.gid) != 0) _exit(126);
    if (spec.uid) {
      ::setgroups(0, nullptr);
      if (::setuid(*spec.uid) != 0) _exit(126);
    }
    // Die with previewdb: a killed previewdb must not leave pg_dump & co. running. Set after the
    // uid change, which clears it; a parent already gone before this line is checked for.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) _exit(126);
    ::execve(p.program.c_str(), p.argv.data(), p.envp.data());
    _exit(127);
  }
  return pid;
}

void wait_for(pid_t pid, ProcessResult& r) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return;
  }
  if (WIFEXITED(status))
    r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    r.signal = WTERMSIG(status);
}

// Reads the given fds until EOF on all of them, without deadlocking on a full pipe.
void drain(std::vector<std::pair<int, std::string*>> fds) {
  while (!fds.empty()) {
    std::vector<pollfd> pfds;
    for (auto& [fd, _] : fds) pfds.push_back({fd, POLLIN, 0});
    if (::poll(pfds.data(), pfds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (size_t i = pfds.size(); i-- > 0;) {
      if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t n = ::read(pfds[i].fd, buf, sizeof buf);
      if (n > 0) {
        fds[i].second->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds.erase(fds.begin() + static_cast<long>(i));
      }
    }
  }
}

}  // namespace

std::optional<std::string> find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  for (const auto& dir : split(path ? path : "/usr/local/bin:/usr/bin:/bin", ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate)) {
      return candidate;
    }
  }
  return std::nullopt;
}

ProcessResult run_process(const ProcessSpec& spec) {
  Prepared p(spec);
  Pipe out_pipe, err_pipe;
  int out_fd = spec.capture_stdout ? out_pipe.write_end() : spec.stdout_to_stderr ? 2 : -1;
  int err_fd = spec.capture_stderr ? err_pipe.write_end() : -1;
  pid_t pid = spawn(spec, p, -1, out_fd, err_fd);
  out_pipe.close_write();
  err_pipe.close_write();
  ProcessResult r;
  std::vector<std::pair<int, std::string*>> fds;
  if (spec.capture_stdout) fds.emplace_back(out_pipe.read_end(), &r.out);
  if (spec.capture_stderr) fds.emplace_back(err_pipe.read_end(), &r.err);
  drain(fds);
  wait_for(pid, r);
  if (r.exit_code == 127 && !spec.capture_stderr) {
    // exec failed after fork; the lookup above makes this rare (permissions, bad interpreter).
  }
  return r;
}

std::pair<ProcessResult, ProcessResult> run_pipeline(const ProcessSpec& producer,
                                                     const ProcessSpec& consumer) {
  Prepared pp(producer), pc(consumer);
  Pipe link, perr, cout_pipe, cerr;
  int p_err = producer.capture_stderr ? perr.write_end() : -1;
  int c_out = consumer.capture_stdout ? cout_pipe.write_end() : 2;
  int c_err = consumer.capture_stderr ? cerr.write_end() : -1;
  pid_t p_pid = spawn(producer, pp, -1, link.write_end(), p_err);
  pid_t c_pid = -1;
  try {
    c_pid = spawn(consumer, pc, link.read_end(), c_out, c_err);
  } catch (...) {
    // The producer is already running: stop and reap it rather than leave a zombie behind.
    ::kill(p_pid, SIGKILL);
    ProcessResult ignored;
    wait_for(p_pid, ignored);
    throw;
  }
  link.close_read();
  link.close_write();
  perr.close_write();
  cout_pipe.close_write();
  cerr.close_write();
  ProcessResult a, b;
  std::vector<std::pair<int, std::string*>> fds;
  if (producer.capture_stderr) fds.emplace_back(perr.read_end(), &a.err);
  if (consumer.capture_stdout) fds.emplace_back(cout_pipe.read_end(), &b.out);
  if (consumer.capture_stderr) fds.emplace_back(cerr.read_end(), &b.err);
  drain(fds);
  wait_for(p_pid, a);
  wait_for(c_pid, b);
  return {a, b};
}

StreamingProcess::StreamingProcess(const ProcessSpec& spec, bool feed_stdin, bool read_stdout) {
  // A reader that goes away must show up as a failed write, not kill this process.
  ::signal(SIGPIPE, SIG_IGN);
  Prepared p(spec);
  Pipe in, out, err;
  int null_fd = feed_stdin ? -1 : ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  m_pid = spawn(spec, p, feed_stdin ? in.read_end() : null_fd, read_stdout ? out.write_end() : 2,
                err.write_end());
  if (null_fd >= 0) ::close(null_fd);
  in.close_read();
  out.close_write();
  err.close_write();
  if (feed_stdin) {
    m_in = ::dup(in.write_end());
    ::fcntl(m_in, F_SETFD, FD_CLOEXEC);
  }
  if (read_stdout) {
#ifdef F_SETPIPE_SZ
    // Bulk streams (a dump of gigabytes): a larger pipe means fewer wake-ups; best effort.
    (void)::fcntl(out.read_end(), F_SETPIPE_SZ, 1 << 20);
#endif
    m_out = ::dup(out.read_end());
    ::fcntl(m_out, F_SETFD, FD_CLOEXEC);
  }
  m_err = ::dup(err.read_end());
  ::fcntl(m_err, F_SETFD, FD_CLOEXEC);
  ::fcntl(m_err, F_SETFL, ::fcntl(m_err, F_GETFL) | O_NONBLOCK);
}

StreamingProcess::~StreamingProcess() {
  if (!m_waited && m_pid > 0) {
    ::kill(m_pid, SIGKILL);
    try {
      wait();
    } catch (...) {
    }
  }
  if (m_out >= 0) ::close(m_out);
}

void StreamingProcess::drain_stderr(bool block) {
  if (m_err < 0) return;
  for (;;) {
    if (block) {
      pollfd pfd{m_err, POLLIN, 0};
      if (::poll(&pfd, 1, -1) < 0 && errno == EINTR) continue;
    }
    char buf[4096];
    ssize_t n = ::read(m_err, buf, sizeof buf);
    if (n > 0) {
      // Keep the end: the reason a tool failed is in its last lines.
      m_result.err.append(buf, static_cast<size_t>(n));
      if (m_result.err.size() > (1u << 20)) m_result.err.erase(0, m_result.err.size() - (1u << 19));
      continue;
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      ::close(m_err);
      m_err = -1;
    }
    if (n < 0 && errno == EINTR) continue;
    return;
  }
}

size_t StreamingProcess::read(char* buf, size_t size) {
  if (m_out < 0) return 0;
  for (;;) {
    pollfd pfds[2] = {{m_out, POLLIN, 0}, {m_err, POLLIN, 0}};
    if (::poll(pfds, m_err >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      throw Error(ExitCode::failure, std::string("poll() failed: ") + std::strerror(errno));
    }
    if (m_err >= 0 && pfds[1].revents) drain_stderr(false);
    if (!pfds[0].revents) continue;
    ssize_t n = ::read(m_out, buf, size);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    throw Error(ExitCode::failure,
                std::string("read from a child failed: ") + std::strerror(errno));
  }
}

bool StreamingProcess::write(const char* data, size_t size) {
  if (m_in < 0) return false;
  while (size > 0) {
    pollfd pfds[2] = {{m_in, POLLOUT, 0}, {m_err, POLLIN, 0}};
    if (::poll(pfds, m_err >= 0 ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      throw Error(ExitCode::failure, std::string("poll() failed: ") + std::strerror(errno));
    }
    if (m_err >= 0 && pfds[1].revents) drain_stderr(false);
    if (pfds[0].revents & (POLLERR | POLLHUP)) {
      close_stdin();
      return false;
    }
    if (!(pfds[0].revents & POLLOUT)) continue;
    ssize_t n = ::write(m_in, data, size);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      close_stdin();
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

void StreamingProcess::close_stdin() {
  if (m_in >= 0) ::close(m_in);
  m_in = -1;
}

const ProcessResult& StreamingProcess::wait() {
  if (m_waited) return m_result;
  close_stdin();
  if (m_out >= 0) {
    ::close(m_out);
    m_out = -1;
  }
  if (m_err >= 0) ::fcntl(m_err, F_SETFL, ::fcntl(m_err, F_GETFL) & ~O_NONBLOCK);
  while (m_err >= 0) drain_stderr(true);
  wait_for(m_pid, m_result);
  m_waited = true;
  return m_result;
}

}  // namespace previewdb::util
