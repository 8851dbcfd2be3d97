#include "core/scratch.hpp"

#include <chrono>

#include "core/lifecycle.hpp"
#include "core/metadata.hpp"
#include "db/dialect.hpp"
#include "util/log.hpp"
#include "util/time.hpp"

namespace previewdb::core {

ScratchDatabase::ScratchDatabase(db::Connection& conn, const std::string& purpose)
    : m_conn(conn), m_reg(Registry::open(conn)) {
  m_name = temp_database_name();
  m_lock.emplace(conn, build_lock_key(m_name), std::chrono::seconds(5), m_name);
  Metadata meta;
  // The registry's kinds are what a build becomes; this one never becomes anything: it stays
  // "building" under its temporary name, which is what lets a janitor drop it.
  meta.kind = Kind::personal;
  meta.created_at = util::to_iso8601(std::chrono::system_clock::now());
  meta.created_by = purpose;
  m_row = m_reg.begin_build(m_name, m_name, meta);
  try {
    conn.exec(db::dialect_of(conn).create_empty_database(m_name));
    m_reg.built(m_row, m_name);
  } catch (...) {
    cleanup();
    throw;
  }
}

ScratchDatabase::~ScratchDatabase() {
  cleanup();
}

void ScratchDatabase::cleanup() {
  if (m_done) return;
  m_done = true;
  drop_temporary(m_conn, m_name);
  try {
    m_reg.remove_row(m_row);
  } catch (const std::exception& e) {
    util::log::warn(std::string("could not update the registry: ") + e.what());
  }
}

}  // namespace previewdb::core
