#include "util/wait_report.hpp"

#include "util/log.hpp"

namespace previewdb::util {

WaitReport::WaitReport(std::chrono::seconds every)
    : m_every(every), m_start(std::chrono::steady_clock::now()), m_next(m_start + every) {}

std::string WaitReport::line(const std::string& what, const std::string& who,
                             std::chrono::seconds waited) {
  std::string text = waited.count() == 0 ? "waiting for " + what
                                         : "still waiting after " + std::to_string(waited.count()) +
                                               "s for " + what;
  return who.empty() ? text : text + " (" + who + ")";
}

void WaitReport::tick(const std::string& what, const std::function<std::string()>& who) {
  auto now = std::chrono::steady_clock::now();
  if (m_announced && now < m_next) return;
  auto waited = m_announced ? std::chrono::duration_cast<std::chrono::seconds>(now - m_start)
                            : std::chrono::seconds(0);
  log::info(line(what, who ? who() : std::string(), waited));
  if (m_announced) {
    while (m_next <= now) m_next += m_every;
  }
  m_announced = true;
}

}  // namespace previewdb::util
