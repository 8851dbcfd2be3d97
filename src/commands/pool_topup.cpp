#include "commands/pool_topup.hpp"

#include "core/pool.hpp"
#include "util/log.hpp"

namespace previewdb::commands {

namespace {
// A bound on clones made at the end of one run (each is a full copy of the snapshot).
constexpr long long k_max_pool_size = 50;
}  // namespace

size_t pool_size_setting(const config::Config& cfg) {
  return static_cast<size_t>(cfg.get_int("pool_size", 0, k_max_pool_size));
}

void top_up_pool_at_end(db::Connection& maintenance, const std::string& source, size_t size,
                        core::CloneStrategy strategy, const std::string& created_by) {
  if (size == 0) return;
  try {
    auto r = core::top_up_pool(
        maintenance,
        {.source = source, .size = size, .strategy = strategy, .created_by = created_by});
    if (r.busy) {
      util::log::info("another previewdb is topping up the warm pool of " + source +
                      "; leaving it to that run");
    } else if (r.snapshot.empty()) {
      util::log::info("no warm pool for " + source + ": it has no snapshot yet");
    } else if (r.created || r.dropped) {
      util::log::info("warm pool of " + source + ": " + std::to_string(r.fresh) + " clone(s) of " +
                      r.snapshot + " ready (" + std::to_string(r.created) + " made, " +
                      std::to_string(r.dropped) + " stale dropped)");
    } else {
      util::log::debug("warm pool of " + source + ": " + std::to_string(r.fresh) + " ready");
    }
  } catch (const std::exception& e) {
    util::log::warn("could not top up the warm pool of " + source + ": " + e.what() +
                    " (the next run tries again)");
  }
}

}  // namespace previewdb::commands
