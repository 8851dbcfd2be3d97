// Says what a wait is for and on whom: once when it starts, then every `every` while it lasts.
// One wording for every wait (advisory locks, the migration lock): "waiting for X (who)", then
// "still waiting after 20s for X (who)".
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace previewdb::util {

class WaitReport {
 public:
  explicit WaitReport(std::chrono::seconds every = std::chrono::seconds(10));
  // Call after each failed attempt. Logs a line when one is due; `who` (empty: nobody known) is
  // asked only then.
  void tick(const std::string& what, const std::function<std::string()>& who);
  // The text of the line tick() would print, for tests: waited 0 is the first line.
  static std::string line(const std::string& what, const std::string& who,
                          std::chrono::seconds waited);

 private:
  std::chrono::seconds m_every;
  std::chrono::steady_clock::time_point m_start;
  std::chrono::steady_clock::time_point m_next;
  bool m_announced = false;
};

}  // namespace previewdb::util
