// The pure parts of restore and rollback: names of kept originals, which backup rollback picks,
// what a restore source is, the temporaries a store sweeps.
#include <gtest/gtest.h>

#include "backup/restore.hpp"
#include "core/swap.hpp"
#include "storage/store.hpp"

using namespace previewdb;

namespace {

backup::BackupInfo info(const std::string& name, const std::string& db, const std::string& created,
                        std::optional<backup::HistoryHead> head) {
  backup::BackupInfo b;
  b.name = name;
  backup::Manifest m;
  m.name = name;
  m.database = db;
  m.created_at = created;
  m.history_head = std::move(head);
  b.manifest = m;
  return b;
}

backup::HistoryHead head(const std::string& id, const std::string& at) {
  return {id, "m" + id, at};
}

TEST(RestoreNames, TheKeptOriginalIsNamedAfterTheDatabaseAndTime) {
  EXPECT_EQ(core::before_restore_name("shop", "20261121_120000"),
            "shop_before_restore_20261121_120000");
  EXPECT_TRUE(core::is_before_restore_name("shop_before_restore_20261121_120000"));
  EXPECT_TRUE(core::is_before_restore_name("pr_12_before_restore_20261121_120000"));
  EXPECT_FALSE(core::is_before_restore_name("shop_before_restore_2026112_120000"));
  EXPECT_FALSE(core::is_before_restore_name("shop_before_restore_20261121-120000"));
  EXPECT_FALSE(core::is_before_restore_name("shop"));
  EXPECT_FALSE(core::is_before_restore_name("_before_restore_20261121_120000x"));
}

TEST(RestoreNames, LongNamesAreCutWithAHashAndStayDistinct) {
  std::string a(63, 'a'), b = std::string(62, 'a') + "b";
  auto na = core::before_restore_name(a, "20261121_120000");
  auto nb = core::before_restore_name(b, "20261121_120000");
  EXPECT_LE(na.size(), 63u);
  EXPECT_LE(nb.size(), 63u);
  EXPECT_NE(na, nb);
  EXPECT_TRUE(core::is_before_restore_name(na)) << na;
  // A multibyte character is never cut in half.
  std::string u;
  for (int i = 0; i < 30; ++i) u += "\xc3\xa9";  // é x30 = 60 bytes
  auto nu = core::before_restore_name(u, "20261121_120000");
  EXPECT_LE(nu.size(), 63u);
  size_t cont = 0;
  for (unsigned char c : nu.substr(0, nu.find('_'))) cont += (c & 0xC0) == 0x80;
  EXPECT_EQ(cont * 2, nu.find('_'));  // whole two-byte characters only
}

TEST(RollbackPolicy, PicksTheNewestBackupWhoseHeadPrecedesTheCurrentOne) {
  std::vector<backup::BackupInfo> all = {
      info("b0", "shop", "2026-11-01T00:00:00Z", std::nullopt),
      info("b1", "shop", "2026-11-02T00:00:00Z", head("0001", "2026-11-01T12:00:00Z")),
      info("b2", "shop", "2026-11-03T00:00:00Z", head("0002", "2026-11-02T12:00:00Z")),
      info("other", "other", "2026-11-04T00:00:00Z", head("0001", "2026-11-01T12:00:00Z")),
      info("b3", "shop", "2026-11-05T00:00:00Z", head("0003", "2026-11-04T12:00:00Z")),
  };
  EXPECT_EQ(backup::choose_rollback(all, "shop", head("0003", "2026-11-04T12:00:00Z")), "b2");
  EXPECT_EQ(backup::choose_rollback(all, "shop", head("0004", "2026-11-06T12:00:00Z")), "b3");
  EXPECT_EQ(backup::choose_rollback(all, "shop", head("0001", "2026-11-01T12:00:00Z")), "b0");
  // Nothing migrated: nothing to roll back.
  EXPECT_EQ(backup::choose_rollback(all, "shop", std::nullopt), std::nullopt);
  // Only backups at the current head: none precedes.
  std::vector<backup::BackupInfo> same = {
      info("s", "shop", "2026-11-02T00:00:00Z", head("0001", "2026-11-01T12:00:00Z"))};
  EXPECT_EQ(backup::choose_rollback(same, "shop", head("0001", "2026-11-01T12:00:00Z")),
            std::nullopt);
  // Same finish time: the id decides; incomplete backups (no manifest) never count.
  std::vector<backup::BackupInfo> tie = {
      info("t1", "shop", "2026-11-02T00:00:00Z", head("0001", "2026-11-01T12:00:00Z")),
      backup::BackupInfo{"broken", std::nullopt, 0, {}}};
  EXPECT_EQ(backup::choose_rollback(tie, "shop", head("0002", "2026-11-01T12:00:00Z")), "t1");
}

TEST(RestoreSources, AreClassifiedByTheirFileNames) {
  EXPECT_EQ(backup::classify_path("x/bak_shop_20261121_120000.dump.zst"),
            backup::SourceKind::backup);
  EXPECT_EQ(backup::classify_path("seed.sql"), backup::SourceKind::sql);
  EXPECT_EQ(backup::classify_path("/b/seed.sql.gz"), backup::SourceKind::sql_gz);
  EXPECT_EQ(backup::classify_path("shop.dump"), backup::SourceKind::archive);
  EXPECT_EQ(backup::classify_path("shop.tar"), backup::SourceKind::archive);
}

TEST(RestoreSources, TheArchivesPgDumpVersionIsReadFromItsList) {
  EXPECT_EQ(backup::archive_dump_major(";\n; Archive created at 2026-11-21\n"
                                       ";     Dumped from database version: 15.4\n"
                                       ";     Dumped by pg_dump version: 16.2 (Debian)\n"),
            16);
  EXPECT_EQ(backup::archive_dump_major("; nothing here\n"), std::nullopt);
}

TEST(StoreSweep, OnlyWriterTemporariesCarryAPid) {
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop_20261121_120000.dump.zst.partial-4242"), 4242);
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop.json.partial-17"), 17);
  EXPECT_EQ(storage::stale_partial_pid("bak_shop.json.partial-17"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop.json.partial-"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop.json.partial-17x"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop.json.partial-0"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".bak_shop.json.partial--1"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".partial-12"), std::nullopt);
  EXPECT_EQ(storage::stale_partial_pid(".gitignore"), std::nullopt);
}

}  // namespace
