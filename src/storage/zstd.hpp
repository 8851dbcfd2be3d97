// Streaming zstd compression (libzstd) for archives written to a store: the only module that
// includes zstd.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace previewdb::storage {

class ZstdCompressor {
 public:
  // level: 1..19 (Error(usage) otherwise).
  explicit ZstdCompressor(int level);
  ~ZstdCompressor();
  // Compresses input and appends what is ready to out.
  void update(std::string_view input, std::string& out);
  // Ends the frame: appends the rest to out.
  void finish(std::string& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

class ZstdDecompressor {
 public:
  ZstdDecompressor();
  ~ZstdDecompressor();
  // Decompresses input and appends the output to out; throws Error(failure) naming zstd's reason
  // when the data is corrupt.
  void update(std::string_view input, std::string& out);
  // True when the input so far ended exactly at the end of a frame (a truncated file does not).
  bool complete() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

// The valid compression levels, for messages.
int zstd_max_level();

}  // namespace previewdb::storage
