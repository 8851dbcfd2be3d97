// Which CREATE DATABASE ... STRATEGY to clone with, chosen from what this server has shown: every
// clone's duration and size is recorded (registry.clone_samples), and the strategy expected to be
// faster at the size at hand wins. Pure functions over plain values, so the policy is testable
// without a server; lifecycle reads the samples and records the outcome.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace previewdb::core {

enum class CloneStrategy { automatic, wal_log, file_copy };

// "WAL_LOG" / "FILE_COPY" (the SQL keyword); "auto" for automatic.
std::string strategy_keyword(CloneStrategy s);
// The inverse of strategy_keyword for the two real strategies; nullopt for anything else.
std::optional<CloneStrategy> strategy_from_keyword(const std::string& keyword);

// One clone on this server: its strategy, the template's size and how long CREATE DATABASE took.
struct CloneSample {
  CloneStrategy strategy = CloneStrategy::wal_log;
  long long size_bytes = 0;
  double seconds = 0;
};

// What the server says before any sample exists.
struct ServerHints {
  // WAL_LOG writes every page to the WAL: beyond max_wal_size that forces checkpoints mid-copy.
  long long max_wal_size_bytes = 1024LL * 1024 * 1024;
};

struct CloneChoice {
  CloneStrategy strategy = CloneStrategy::wal_log;
  std::string reason;     // one line for people: why this strategy
  bool explored = false;  // chosen to learn, not because it is expected to be faster
};

// Samples count for a size when within 2x of it (size / 2 ..size * 2).
bool sample_is_near(const CloneSample& s, long long size_bytes);
// The expected duration of a clone of size_bytes with strategy, from the (at most 5) nearest
// samples of that strategy within 2x: the median of their per-byte times scaled to size_bytes.
// nullopt without such a sample.
std::optional<double> expected_seconds(const std::vector<CloneSample>& samples,
                                       CloneStrategy strategy, long long size_bytes);
// The strategy before any evidence: FILE_COPY from min(512 MB, max_wal_size / 2), else WAL_LOG.
CloneStrategy default_strategy(long long size_bytes, const ServerHints& hints);
// The choice for a clone of size_bytes. `clone_number` is this clone's sequence number on the
// server (the samples recorded so far + 1): every 10th clone tries the strategy expected to be
// slower, so a server that changes is noticed. A strategy with no sample within 2x of this size
// is tried once the other has one; with none at all the default applies.
CloneChoice choose_clone_strategy(const std::vector<CloneSample>& samples, long long size_bytes,
                                  long long clone_number, const ServerHints& hints);

}  // namespace previewdb::core
