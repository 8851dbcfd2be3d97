// Work to do before dying of SIGINT, SIGTERM or SIGHUP (dropping a scratch database): while an
// InterruptGuard lives, those signals are blocked in this thread and taken by a thread of its
// own, which runs the callback (where a signal handler could do nothing useful: no allocation,
// no libpq) and then ends the process with 128 + the signal's number, as the signal would.
#pragma once

#include <functional>
#include <thread>

namespace previewdb::util {

class InterruptGuard {
 public:
  // Create it before any other thread starts (threads inherit the blocked signals), and do not
  // start child processes while it lives: they would inherit the mask too.
  explicit InterruptGuard(std::function<void(int signal)> on_interrupt);
  ~InterruptGuard();  // restores the signal mask; no callback after this returns
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

 private:
  std::function<void(int)> m_on_interrupt;
  std::thread m_thread;
};

}  // namespace previewdb::util
