// util::run_pipeline: when the consumer cannot be started (its fork fails), the producer already
// running is killed and reaped, not left behind as a zombie or a running orphan.
//
// The second fork is made to fail for real: a child process of the test switches to a uid no
// other process uses and sets RLIMIT_NPROC to 2 (itself and the producer), so the kernel refuses
// the consumer's fork with EAGAIN. Needs root (setuid, and root ignores RLIMIT_NPROC itself).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "harness/harness.hpp"
#include "util/error.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;

TEST(SubprocessReap, ProducerIsReapedWhenTheConsumerCannotFork) {
  if (::geteuid() != 0) GTEST_SKIP() << test::k_skip_root << "needs root to setuid and limit forks";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A uid of its own: RLIMIT_NPROC counts every process of the real uid.
    uid_t uid = 61000 + static_cast<uid_t>(::getpid() % 1000);
    if (::setgid(uid) != 0 || ::setuid(uid) != 0) _exit(10);
    rlimit limit{2, 2};
    if (::setrlimit(RLIMIT_NPROC, &limit) != 0) _exit(11);
    util::ProcessSpec producer, consumer;
    producer.argv = {"/bin/sleep", "30"};
    consumer.argv = {"/bin/cat"};
    consumer.capture_stdout = true;
    try {
      util::run_pipeline(producer, consumer);
      _exit(12);  // the consumer was started: the limit did not bite
    } catch (const Error& e) {
      if (std::string(e.what()).find("fork() failed") == std::string::npos) _exit(13);
    }
    // No child left: the producer was killed and reaped (a zombie or a running sleep would be
    // returned by waitpid as 0 with WNOHANG).
    int status = 0;
    if (::waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD) _exit(0);
    _exit(14);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10/11: could not set up the limit; 12: the limit did not bite; 13: another error; "
         "14: the producer was left behind";
}
