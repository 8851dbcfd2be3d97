// Backups in a store without a server (issue 12): the encryption member of a manifest, the
// archive decoder (decrypt, then decompress), backup prune's plan (the retention `backup --keep`
// applies, per database), the warning over 5, and a manifest not to be trusted in a listing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "backup/backup.hpp"
#include "storage/encryption.hpp"
#include "storage/store.hpp"
#include "storage/zstd.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/time.hpp"

using namespace previewdb;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

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

storage::EncryptionKey key(char c) {
  return storage::parse_encryption_key(std::string(64, c), "test");
}

}  // namespace

TEST(BackupManifest, EncryptionKeyIdRoundTrips) {
  backup::Manifest m;
  m.name = "bak_shop_1";
  m.database = "shop";
  m.sha256 = std::string(64, '0');
  auto plain = nlohmann::json::parse(backup::to_json(m));
  EXPECT_TRUE(plain["encryption"].is_null());
  EXPECT_EQ(backup::parse_manifest(backup::to_json(m))->encryption_key_id, std::nullopt);
  m.encryption_key_id = key('1').id;
  auto j = nlohmann::json::parse(backup::to_json(m));
  EXPECT_EQ(j["encryption"]["cipher"], "AES-256-GCM");
  EXPECT_EQ(j["encryption"]["key_id"], key('1').id);
  EXPECT_EQ(backup::parse_manifest(backup::to_json(m))->encryption_key_id, key('1').id);
  // An encryption member that cannot be read is not "unencrypted": not a manifest at all.
  j["encryption"] = "yes";
  EXPECT_EQ(backup::parse_manifest(j.dump()), std::nullopt);
}

TEST(BackupManifest, CheckKeyNeedsTheKeyItWasWrittenWith) {
  backup::Manifest m;
  m.name = "bak_shop_1";
  backup::check_key(m, std::nullopt, "file://x");  // not encrypted: nothing needed
  m.encryption_key_id = key('1').id;
  backup::check_key(m, key('1'), "file://x");
  try {
    backup::check_key(m, std::nullopt, "file://x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_THAT(e.what(), HasSubstr("is encrypted"));
  }
  try {
    backup::check_key(m, key('2'), "file://x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr(key('1').id));
    EXPECT_THAT(e.what(), HasSubstr(key('2').id));
  }
}

TEST(BackupDecoder, DecryptsThenDecompressesAndNoticesTruncation) {
  std::string data;
  for (long long i = 0; i < 300000; ++i) data += std::to_string(i * 7919 % 100003) + ",";
  storage::ZstdCompressor zstd(3);
  std::string packed;
  zstd.update(data, packed);
  zstd.finish(packed);
  storage::Encryptor enc(key('1'), 4096);
  std::string sealed;
  enc.update(packed, sealed);
  enc.finish(sealed);
  backup::Manifest m;
  m.name = "bak_shop_1";
  m.encryption_key_id = key('1').id;

  auto decode = [&](const std::string& stored) {
    backup::ArchiveDecoder d(m, key('1'), "test");
    std::string out;
    for (size_t i = 0; i < stored.size(); i += 1000) d.update(stored.substr(i, 1000), out);
    d.finish(out);
    return out;
  };
  EXPECT_EQ(decode(sealed), data);
  try {
    decode(sealed.substr(0, sealed.size() - 1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr("truncated"));
  }
  std::string flipped = sealed;
  flipped[sealed.size() / 2] ^= 1;
  EXPECT_THROW(decode(flipped), Error);
  // Unencrypted: zstd only, and a stream cut short is noticed at the end.
  backup::Manifest plain;
  plain.name = "bak_shop_2";
  backup::ArchiveDecoder d(plain, std::nullopt, "test");
  std::string out;
  d.update(packed.substr(0, packed.size() - 10), out);
  EXPECT_THROW(d.finish(out), Error);
}

TEST(BackupPrune, IsRetentionForEveryDatabase) {
  std::vector<backup::BackupInfo> all = {
      info("shop", "2026-11-01T00:00:00Z"),  info("shop", "2026-11-02T00:00:00Z", "kept"),
      info("other", "2026-11-02T12:00:00Z"), info("shop", "2026-11-03T00:00:00Z"),
      info("other", "2026-11-03T12:00:00Z"), info("shop", "2026-11-04T00:00:00Z")};
  backup::BackupInfo invalid;
  invalid.name = "bak_shop_planted";
  invalid.invalid = "fails its HMAC check";
  all.insert(all.begin(), invalid);
  auto now = *util::parse_iso8601("2026-11-06T00:00:00Z");
  EXPECT_THAT(
      backup::plan_prune(all, std::nullopt, {1, std::nullopt}, now),
      UnorderedElementsAre("bak_other_2026-11-02T12:00:00Z", "bak_shop_2026-11-01T00:00:00Z",
                           "bak_shop_2026-11-03T00:00:00Z"));
  EXPECT_THAT(backup::plan_prune(all, std::string("other"), {1, std::nullopt}, now),
              ElementsAre("bak_other_2026-11-02T12:00:00Z"));
  // The same as backup --keep's plan for one database.
  EXPECT_EQ(backup::plan_prune(all, std::string("shop"), {2, std::nullopt}, now),
            backup::plan_retention(all, "shop", {2, std::nullopt}, now));
  EXPECT_THAT(backup::plan_prune(all, std::nullopt, {7, std::nullopt}, now), ElementsAre());
}

TEST(BackupPrune, WarnsOverFiveOrOverWhatRetentionKeeps) {
  std::vector<backup::BackupInfo> all;
  for (int i = 0; i < 6; ++i) all.push_back(info("shop", "2026-11-0" + std::to_string(i + 1)));
  all.push_back(info("other", "2026-11-01"));
  using Crowded = std::vector<std::pair<std::string, std::size_t>>;
  EXPECT_EQ(backup::crowded_databases(all, 3), (Crowded{{"shop", 6}}));
  EXPECT_EQ(backup::crowded_databases(all, 5), (Crowded{{"shop", 6}}));
  EXPECT_EQ(backup::crowded_databases(all, 7), Crowded{});
  all.pop_back();
  all.resize(5);
  EXPECT_EQ(backup::crowded_databases(all, 1), Crowded{});
}

TEST(BackupList, AManifestNotToBeTrustedMarksThatBackupOnly) {
  util::TempDir dir;
  auto store = storage::open_store("file://" + dir.path().string());
  backup::Manifest good;
  good.name = "bak_shop_1";
  good.database = "shop";
  good.created_at = "2026-11-01T00:00:00Z";
  good.sha256 = std::string(64, '0');
  storage::write_object_text(*store, "bak_shop_1.dump.zst", "x");
  storage::write_object_text(*store, "bak_shop_1.json", backup::to_json(good));
  storage::write_object_text(*store, "bak_shop_2.dump.zst", "x");
  storage::write_object_text(*store, "bak_shop_2.json", "{ not json");
  storage::write_object_text(*store, "bak_shop_3.dump.zst", "x");  // incomplete: no manifest
  auto all = backup::list_backups(*store);
  ASSERT_EQ(all.size(), 3u);
  for (const auto& b : all) {
    if (b.name == "bak_shop_1") {
      EXPECT_TRUE(b.manifest && !b.invalid);
    } else if (b.name == "bak_shop_2") {
      EXPECT_FALSE(b.manifest);
      ASSERT_TRUE(b.invalid);
      EXPECT_THAT(*b.invalid, HasSubstr("bak_shop_2.json"));
    } else {
      EXPECT_FALSE(b.manifest);
      EXPECT_FALSE(b.invalid);
    }
  }
  try {
    backup::read_manifest(*store, "bak_shop_2");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
  }
  try {
    backup::read_manifest(*store, "bak_shop_3");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::pending);
  }
}
