#include "util/interrupt.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

namespace previewdb::util {

namespace {

// SIGUSR2 only tells the waiting thread that the guard is going away.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR2}) sigaddset(&set, s);
  return set;
}

}  // namespace

InterruptGuard::InterruptGuard(std::function<void(int)> on_interrupt)
    : m_on_interrupt(std::move(on_interrupt)) {
  sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  m_thread = std::thread([this, set] {
    int signal = 0;
    if (sigwait(&set, &signal) != 0 || signal == SIGUSR2) return;
    try {
      m_on_interrupt(signal);
    } catch (...) {
      // Dying anyway: the janitor of the next run removes what is left.
    }
    _exit(128 + signal);
  });
}

InterruptGuard::~InterruptGuard() {
  pthread_kill(m_thread.native_handle(), SIGUSR2);
  m_thread.join();
  sigset_t set = handled_signals();
  // A SIGINT that arrived after the thread stopped waiting is delivered (and kills) now.
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

}  // namespace previewdb::util
