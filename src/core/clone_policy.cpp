#include "core/clone_policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/strings.hpp"

namespace previewdb::core {

namespace {

// Measured with bench/clone_bench on PostgreSQL 15 (bench/README.md): on the development machine
// WAL_LOG won up to ~0.5 GB and FILE_COPY above. FILE_COPY pays for two checkpoints whatever the
// size; WAL_LOG writes every page to the WAL and slows down sharply once that exceeds
// max_wal_size. Only the starting point: samples decide once there are some.
const long long k_file_copy_threshold_bytes = 512LL * 1024 * 1024;
// The nearest samples an estimate uses: recent enough to follow the server, enough to be robust.
const size_t k_nearest = 5;
// Every k_explore_every-th clone tries the strategy expected to be slower.
const long long k_explore_every = 10;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 10 ? "%.2f s" : "%.1f s", s);
  return buf;
}

CloneStrategy other(CloneStrategy s) {
  return s == CloneStrategy::file_copy ? CloneStrategy::wal_log : CloneStrategy::file_copy;
}

size_t near_count(const std::vector<CloneSample>& samples, CloneStrategy strategy,
                  long long size_bytes) {
  return static_cast<size_t>(std::count_if(samples.begin(), samples.end(), [&](const auto& s) {
    return s.strategy == strategy && sample_is_near(s, size_bytes);
  }));
}

}  // namespace

std::string strategy_keyword(CloneStrategy s) {
  switch (s) {
    case CloneStrategy::wal_log:
      return "WAL_LOG";
    case CloneStrategy::file_copy:
      return "FILE_COPY";
    case CloneStrategy::automatic:
      break;
  }
  return "auto";
}

std::optional<CloneStrategy> strategy_from_keyword(const std::string& keyword) {
  if (keyword == "WAL_LOG") return CloneStrategy::wal_log;
  if (keyword == "FILE_COPY") return CloneStrategy::file_copy;
  return std::nullopt;
}

bool sample_is_near(const CloneSample& s, long long size_bytes) {
  if (s.size_bytes <= 0 || size_bytes <= 0 || s.seconds < 0) return false;
  return s.size_bytes * 2 >= size_bytes && s.size_bytes <= size_bytes * 2;
}

std::optional<double> expected_seconds(const std::vector<CloneSample>& samples,
                                       CloneStrategy strategy, long long size_bytes) {
  std::vector<const CloneSample*> near;
  for (const auto& s : samples) {
    if (s.strategy == strategy && sample_is_near(s, size_bytes)) near.push_back(&s);
  }
  if (near.empty()) return std::nullopt;
  // Nearest first (by size ratio); stable, so among equals the caller's order (newest first) wins.
  auto distance = [&](const CloneSample* s) {
    return std::abs(std::log(static_cast<double>(s->size_bytes) / static_cast<double>(size_bytes)));
  };
  std::stable_sort(near.begin(), near.end(),
                   [&](auto* a, auto* b) { return distance(a) < distance(b); });
  if (near.size() > k_nearest) near.resize(k_nearest);
  std::vector<double> scaled;
  for (const auto* s : near) {
    scaled.push_back(s->seconds * static_cast<double>(size_bytes) /
                     static_cast<double>(s->size_bytes));
  }
  std::sort(scaled.begin(), scaled.end());
  size_t n = scaled.size();
  return n % 2 ? scaled[n / 2] : (scaled[n / 2 - 1] + scaled[n / 2]) / 2;
}

CloneStrategy default_strategy(long long size_bytes, const ServerHints& hints) {
  long long threshold = k_file_copy_threshold_bytes;
  if (hints.max_wal_size_bytes > 0) threshold = std::min(threshold, hints.max_wal_size_bytes / 2);
  return size_bytes >= threshold ? CloneStrategy::file_copy : CloneStrategy::wal_log;
}

CloneChoice choose_clone_strategy(const std::vector<CloneSample>& samples, long long size_bytes,
                                  long long clone_number, const ServerHints& hints) {
  const std::string size = util::human_bytes(static_cast<double>(size_bytes));
  auto wal = expected_seconds(samples, CloneStrategy::wal_log, size_bytes);
  auto file = expected_seconds(samples, CloneStrategy::file_copy, size_bytes);
  CloneChoice c;
  if (!wal && !file) {
    c.strategy = default_strategy(size_bytes, hints);
    c.reason =
        "no clone of a similar size (" + size + ") recorded on this server yet: " +
        (c.strategy == CloneStrategy::file_copy ? "FILE_COPY from min(512 MB, max_wal_size / 2)"
                                                : "WAL_LOG below min(512 MB, max_wal_size / 2)");
    return c;
  }
  if (!wal || !file) {
    // One strategy has evidence at this size, the other none: learn what the other costs.
    CloneStrategy known = wal ? CloneStrategy::wal_log : CloneStrategy::file_copy;
    c.strategy = other(known);
    c.explored = true;
    c.reason = "trying " + strategy_keyword(c.strategy) + ": no " + strategy_keyword(c.strategy) +
               " clone within 2x of " + size + " recorded yet (" + strategy_keyword(known) +
               " expected " + seconds_text(wal ? *wal : *file) + ")";
    return c;
  }
  CloneStrategy faster = *file < *wal ? CloneStrategy::file_copy : CloneStrategy::wal_log;
  double best = std::min(*wal, *file), worse = std::max(*wal, *file);
  std::string evidence = "expected " + seconds_text(best) + " against " + seconds_text(worse) +
                         " for " + strategy_keyword(other(faster)) + " at " + size + ", from " +
                         std::to_string(near_count(samples, CloneStrategy::wal_log, size_bytes)) +
                         " WAL_LOG and " +
                         std::to_string(near_count(samples, CloneStrategy::file_copy, size_bytes)) +
                         " FILE_COPY clones within 2x of this size";
  if (clone_number > 0 && clone_number % k_explore_every == 0) {
    c.strategy = other(faster);
    c.explored = true;
    c.reason = "trying " + strategy_keyword(c.strategy) + " again (every " +
               std::to_string(k_explore_every) +
               "th clone re-checks the slower strategy): " + strategy_keyword(faster) + " " +
               evidence;
    return c;
  }
  c.strategy = faster;
  c.reason = evidence;
  return c;
}

}  // namespace previewdb::core
