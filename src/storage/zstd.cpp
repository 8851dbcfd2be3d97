#include "storage/zstd.hpp"

#include <zstd.h>

#include "util/error.hpp"

namespace previewdb::storage {

namespace {

void check(size_t rc, const char* what) {
  if (ZSTD_isError(rc))
    throw Error(ExitCode::failure, std::string(what) + ": " + ZSTD_getErrorName(rc));
}

}  // namespace

struct ZstdCompressor::Impl {
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> ctx{ZSTD_createCCtx(), &ZSTD_freeCCtx};
  std::string buf = std::string(ZSTD_CStreamOutSize(), '\0');
};

ZstdCompressor::ZstdCompressor(int level) : m_impl(std::make_unique<Impl>()) {
  if (level < 1 || level > zstd_max_level()) {
    throw usage_error("invalid compression level " + std::to_string(level),
                      "use a zstd level from 1 (fastest) to " + std::to_string(zstd_max_level()));
  }
  if (!m_impl->ctx) throw Error(ExitCode::failure, "cannot start zstd compression");
  check(ZSTD_CCtx_setParameter(m_impl->ctx.get(), ZSTD_c_compressionLevel, level),
        "zstd compression");
  check(ZSTD_CCtx_setParameter(m_impl->ctx.get(), ZSTD_c_checksumFlag, 1), "zstd compression");
}
ZstdCompressor::~ZstdCompressor() = default;

void ZstdCompressor::update(std::string_view input, std::string& out) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer o{m_impl->buf.data(), m_impl->buf.size(), 0};
    check(ZSTD_compressStream2(m_impl->ctx.get(), &o, &in, ZSTD_e_continue), "zstd compression");
    out.append(m_impl->buf.data(), o.pos);
  }
}

void ZstdCompressor::finish(std::string& out) {
  ZSTD_inBuffer in{nullptr, 0, 0};
  for (;;) {
    ZSTD_outBuffer o{m_impl->buf.data(), m_impl->buf.size(), 0};
    size_t left = ZSTD_compressStream2(m_impl->ctx.get(), &o, &in, ZSTD_e_end);
    check(left, "zstd compression");
    out.append(m_impl->buf.data(), o.pos);
    if (left == 0) return;
  }
}

struct ZstdDecompressor::Impl {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> ctx{ZSTD_createDCtx(), &ZSTD_freeDCtx};
  std::string buf = std::string(ZSTD_DStreamOutSize(), '\0');
  size_t last = 0;  // 0: the last call ended at a frame boundary
  bool any = false;
};

ZstdDecompressor::ZstdDecompressor() : m_impl(std::make_unique<Impl>()) {
  if (!m_impl->ctx) throw Error(ExitCode::failure, "cannot start zstd decompression");
}
ZstdDecompressor::~ZstdDecompressor() = default;

void ZstdDecompressor::update(std::string_view input, std::string& out) {
  ZSTD_inBuffer in{input.data(), input.size(), 0};
  if (input.empty()) return;
  m_impl->any = true;
  // Keep calling while input remains or the output buffer came back full (more may be pending).
  bool full = false;
  while (in.pos < in.size || full) {
    ZSTD_outBuffer o{m_impl->buf.data(), m_impl->buf.size(), 0};
    size_t rc = ZSTD_decompressStream(m_impl->ctx.get(), &o, &in);
    check(rc, "zstd decompression");
    m_impl->last = rc;
    out.append(m_impl->buf.data(), o.pos);
    full = o.pos == o.size;
  }
}

bool ZstdDecompressor::complete() const {
  return m_impl->any && m_impl->last == 0;
}

int zstd_max_level() {
  return ZSTD_maxCLevel();
}

}  // namespace previewdb::storage
