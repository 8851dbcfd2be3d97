// Backups without a server (issue 9, backup section): pg_dump/pg_restore version choice and
// refusal, names and labels, manifests, retention, zstd streaming and the store's objects.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "backup/backup.hpp"
#include "storage/store.hpp"
#include "storage/zstd.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/time.hpp"

using namespace previewdb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(BackupTools, ParsesTheMajorVersion) {
  EXPECT_EQ(backup::parse_tool_major("pg_dump (PostgreSQL) 15.4 (Debian 15.4-1)\n"), 15);
  EXPECT_EQ(backup::parse_tool_major("pg_restore (PostgreSQL) 17.0"), 17);
  EXPECT_EQ(backup::parse_tool_major("pg_dump (PostgreSQL) 9.6.24"), 9);
  EXPECT_EQ(backup::parse_tool_major("pg_dump (PostgreSQL) 18beta1"), 18);
  EXPECT_EQ(backup::parse_tool_major("no version here"), std::nullopt);
  EXPECT_EQ(backup::parse_tool_major(""), std::nullopt);
}

TEST(BackupTools, ClientMustBeAtLeastTheServer) {
  std::vector<backup::PgTool> tools = {{"/usr/bin/pg_dump", 15, "15.4"},
                                       {"/usr/lib/postgresql/16/bin/pg_dump", 16, "16.2"},
                                       {"/usr/lib/postgresql/17/bin/pg_dump", 17, "17.0"}};
  // The first acceptable one in order of preference (PATH first).
  EXPECT_EQ(backup::choose_tool(tools, 14)->major, 15);
  EXPECT_EQ(backup::choose_tool(tools, 15)->major, 15);
  EXPECT_EQ(backup::choose_tool(tools, 16)->path, "/usr/lib/postgresql/16/bin/pg_dump");
  EXPECT_EQ(backup::choose_tool(tools, 17)->major, 17);
  // A newer server than every client: refused.
  EXPECT_EQ(backup::choose_tool(tools, 18), std::nullopt);
  EXPECT_EQ(backup::choose_tool({}, 15), std::nullopt);
}

TEST(BackupTools, RefusesWithAHintWhenNoClientIsNewEnough) {
  util::TempDir empty_root;
  try {
    backup::find_tool("pg_dump", 99, empty_root.path());
    FAIL() << "a pg_dump for PostgreSQL 99 was found";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr("no pg_dump of PostgreSQL 99 or newer"));
    ASSERT_FALSE(e.hints().empty());
    EXPECT_THAT(e.hints()[0], HasSubstr("postgresql-client-99"));
  }
}

TEST(BackupTools, UsesAnInstalledNewerClientFromTheLibRoot) {
  // A fake lib root with a "PostgreSQL 99" pg_dump: chosen when PATH's is too old.
  util::TempDir root;
  fs::create_directories(root.path() / "99" / "bin");
  fs::path tool = root.path() / "99" / "bin" / "pg_dump";
  {
    std::ofstream f(tool);
    f << "#!/bin/sh\necho 'pg_dump (PostgreSQL) 99.1'\n";
  }
  fs::permissions(tool, fs::perms::owner_all);
  auto chosen = backup::find_tool("pg_dump", 99, root.path());
  EXPECT_EQ(chosen.path, tool);
  EXPECT_EQ(chosen.major, 99);
}

TEST(BackupNames, NamesAndLabels) {
  EXPECT_EQ(backup::backup_name("shop", "20261121_120000"), "bak_shop_20261121_120000");
  EXPECT_EQ(backup::backup_name("my db/x", "20261121_120000"), "bak_my_db_x_20261121_120000");
  EXPECT_TRUE(backup::valid_label("before-major-refactor"));
  EXPECT_TRUE(backup::valid_label("v1.2_rc"));
  EXPECT_FALSE(backup::valid_label(""));
  EXPECT_FALSE(backup::valid_label(".hidden"));
  EXPECT_FALSE(backup::valid_label("-x"));
  EXPECT_FALSE(backup::valid_label("a/b"));
  EXPECT_FALSE(backup::valid_label(std::string(64, 'a')));
}

TEST(BackupManifest, RoundTrips) {
  backup::Manifest m;
  m.name = "bak_shop_20261121_120000";
  m.database = "shop";
  m.server_version = "15.4";
  m.pg_dump_version = "pg_dump (PostgreSQL) 15.4";
  m.pg_dump_major = 15;
  m.created_at = "2026-11-21T12:00:00Z";
  m.size_raw = 1000;
  m.size_compressed = 300;
  m.sha256 = std::string(64, 'a');
  m.level = 3;
  m.history_head = backup::HistoryHead{"0002", "add_users", "2026-11-20T10:00:00Z"};
  m.duration_ms = 42;
  m.label = "before";
  auto back = backup::parse_manifest(backup::to_json(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->size_raw, 1000u);
  EXPECT_EQ(back->sha256, m.sha256);
  EXPECT_EQ(back->history_head->id, "0002");
  EXPECT_EQ(back->label, "before");
  EXPECT_FALSE(back->verified_at);
  EXPECT_FALSE(backup::parse_manifest("{}"));
  EXPECT_FALSE(backup::parse_manifest("not json"));
  EXPECT_FALSE(backup::parse_manifest(R"({"format":"previewdb-backup-1","name":1})"));
}

namespace {

backup::BackupInfo info(const std::string& db, const std::string& created,
                        std::optional<std::string> label = std::nullopt) {
  backup::BackupInfo b;
  b.name = "bak_" + db + "_" + created;
  backup::Manifest m;
  m.name = b.name;
  m.database = db;
  m.created_at = created;
  m.label = label;
  b.manifest = m;
  return b;
}

}  // namespace

TEST(BackupRetention, KeepsTheNewestNAndEveryNamedOne) {
  std::vector<backup::BackupInfo> all = {
      info("shop", "2026-11-01T00:00:00Z"), info("shop", "2026-11-02T00:00:00Z", "kept"),
      info("shop", "2026-11-03T00:00:00Z"), info("other", "2026-11-03T12:00:00Z"),
      info("shop", "2026-11-04T00:00:00Z"), info("shop", "2026-11-05T00:00:00Z")};
  backup::BackupInfo incomplete;
  incomplete.name = "bak_shop_x";
  all.insert(all.begin(), incomplete);
  auto now = *util::parse_iso8601("2026-11-06T00:00:00Z");
  EXPECT_THAT(backup::plan_retention(all, "shop", {2, std::nullopt}, now),
              ElementsAre("bak_shop_2026-11-01T00:00:00Z", "bak_shop_2026-11-03T00:00:00Z"));
  EXPECT_THAT(backup::plan_retention(all, "shop", {7, std::nullopt}, now), ElementsAre());
  // keep-days: older than 2.5 days goes, but never the newest one.
  EXPECT_THAT(backup::plan_retention(all, "shop", {7, std::chrono::hours(60)}, now),
              ElementsAre("bak_shop_2026-11-01T00:00:00Z", "bak_shop_2026-11-03T00:00:00Z"));
  auto later = *util::parse_iso8601("2027-01-01T00:00:00Z");
  EXPECT_THAT(backup::plan_retention(all, "shop", {7, std::chrono::hours(24)}, later),
              ElementsAre("bak_shop_2026-11-01T00:00:00Z", "bak_shop_2026-11-03T00:00:00Z",
                          "bak_shop_2026-11-04T00:00:00Z"));
  EXPECT_THAT(backup::plan_retention(all, "other", {1, std::nullopt}, now), ElementsAre());
}

TEST(BackupResolve, ByNameFileOrLabel) {
  std::vector<backup::BackupInfo> all = {info("shop", "1", "before"), info("shop", "2"),
                                         info("shop", "3", "before")};
  EXPECT_EQ(backup::resolve_backup(all, "bak_shop_2"), "bak_shop_2");
  EXPECT_EQ(backup::resolve_backup(all, "bak_shop_2.dump.zst"), "bak_shop_2");
  EXPECT_EQ(backup::resolve_backup(all, "before"), "bak_shop_3");
  EXPECT_EQ(backup::resolve_backup(all, "nope"), std::nullopt);
}

TEST(Zstd, StreamsRoundTripAndNoticesTruncation) {
  std::string data;
  for (int i = 0; i < 200000; ++i) data += std::to_string(i * 7919 % 1000) + ",";
  storage::ZstdCompressor c(3);
  std::string packed;
  for (size_t i = 0; i < data.size(); i += 70000) c.update(data.substr(i, 70000), packed);
  c.finish(packed);
  EXPECT_LT(packed.size(), data.size() / 2);
  storage::ZstdDecompressor d;
  std::string unpacked;
  for (size_t i = 0; i < packed.size(); i += 4096) d.update(packed.substr(i, 4096), unpacked);
  EXPECT_TRUE(d.complete());
  EXPECT_EQ(unpacked, data);

  storage::ZstdDecompressor cut;
  std::string partial;
  cut.update(packed.substr(0, packed.size() - 10), partial);
  EXPECT_FALSE(cut.complete());
  EXPECT_THROW(storage::ZstdCompressor(0), Error);
  EXPECT_THROW(storage::ZstdCompressor(23), Error);
}

TEST(StoreObjects, PrivateFolderAtomicWritesAndListing) {
  util::TempDir tmp;
  fs::path dir = tmp.path() / "backups";
  auto store = storage::open_store(storage::store_url_from(dir.string()));
  {
    auto w = store->create_object("a.dump.zst");
    w->write("hello");
    // Not committed yet: nothing under its name, and no object listed.
    EXPECT_FALSE(fs::exists(dir / "a.dump.zst"));
    EXPECT_TRUE(store->list_objects().empty());
  }
  // Dropped without commit: no leftover at all.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // .gitignore
  storage::write_object_text(*store, "a.json", "{}");
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir / "a.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(util::read_file(dir / ".gitignore"), HasSubstr("*"));
  auto objects = store->list_objects();
  ASSERT_EQ(objects.size(), 1u);
  EXPECT_EQ(objects[0].name, "a.json");
  EXPECT_EQ(storage::read_object_text(*store, "a.json"), "{}");
  EXPECT_EQ(storage::read_object_text(*store, "b.json"), std::nullopt);
  EXPECT_THROW(store->create_object("../escape"), Error);
  EXPECT_THROW(store->create_object(".hidden"), Error);
  EXPECT_TRUE(store->remove_object("a.json"));
  EXPECT_FALSE(store->remove_object("a.json"));
  EXPECT_EQ(storage::store_url_from("file:///x"), "file:///x");
  EXPECT_EQ(storage::store_url_from("./backups"), "file://./backups");
}
