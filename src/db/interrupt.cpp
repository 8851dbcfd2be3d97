#include "db/interrupt.hpp"

#include <atomic>
#include <csignal>

namespace previewdb::db {

namespace {

std::atomic<int> g_signal{0};
std::atomic<PGcancel*> g_cancel{nullptr};
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int sig) {
  g_signal.store(sig);
  if (PGcancel* c = g_cancel.load()) {
    char buf[256];
    PQcancel(c, buf, sizeof buf);
  }
}

}  // namespace

InterruptScope::InterruptScope() {
  g_signal.store(0);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptScope::~InterruptScope() {
  watch(nullptr);
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

void InterruptScope::watch(Connection* conn) {
  PGcancel* next = conn ? PQgetCancel(conn->raw()) : nullptr;
  PGcancel* old = g_cancel.exchange(next);
  if (old) PQfreeCancel(old);
}

int InterruptScope::received() {
  return g_signal.load();
}

}  // namespace previewdb::db
