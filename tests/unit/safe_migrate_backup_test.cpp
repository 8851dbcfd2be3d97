// safe-migrate's choice of backup kind (issue 10): template snapshot or verified archive.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dryrun/safe_migrate.hpp"
#include "util/error.hpp"

using namespace previewdb;
using namespace previewdb::dryrun;
using ::testing::HasSubstr;

TEST(SafeMigrateBackup, TemplateWhenNothingStandsInTheWay) {
  auto c = choose_backup({});
  EXPECT_EQ(c.kind, BackupKind::template_copy);
  EXPECT_THAT(c.reason, HasSubstr("idle"));
}

TEST(SafeMigrateBackup, ArchiveWhenTheRoleMayNotCreateDatabases) {
  BackupFacts f;
  f.can_create = false;
  f.role = "deploy";
  auto c = choose_backup(f);
  EXPECT_EQ(c.kind, BackupKind::archive);
  EXPECT_THAT(c.reason, HasSubstr("role \"deploy\" may not create databases"));
}

TEST(SafeMigrateBackup, ArchiveWhenClonesLiveElsewhereOrTheTargetIsBusyOrAStoreIsNamed) {
  BackupFacts other;
  other.same_server = false;
  EXPECT_EQ(choose_backup(other).kind, BackupKind::archive);
  EXPECT_THAT(choose_backup(other).reason, HasSubstr("another server"));
  BackupFacts busy;
  busy.sessions = {"101", "102"};
  EXPECT_EQ(choose_backup(busy).kind, BackupKind::archive);
  EXPECT_THAT(choose_backup(busy).reason, HasSubstr("2 other session(s) (pids 101, 102)"));
  BackupFacts store;
  store.store_given = true;
  EXPECT_EQ(choose_backup(store).kind, BackupKind::archive);
  EXPECT_THAT(choose_backup(store).reason, HasSubstr("--backup-store"));
}

TEST(SafeMigrateBackup, ForcedKindsWin) {
  BackupFacts f;
  f.wanted = BackupKind::archive;
  f.wanted_origin = "--backup";
  EXPECT_EQ(choose_backup(f).kind, BackupKind::archive);
  EXPECT_THAT(choose_backup(f).reason, HasSubstr("asked for by --backup"));
  // A busy target with template forced: the snapshot copies it with pg_dump | pg_restore.
  BackupFacts busy;
  busy.wanted = BackupKind::template_copy;
  busy.sessions = {"7"};
  busy.store_given = true;
  EXPECT_EQ(choose_backup(busy).kind, BackupKind::template_copy);
}

TEST(SafeMigrateBackup, TemplateForcedWhereImpossibleIsRefused) {
  BackupFacts f;
  f.wanted = BackupKind::template_copy;
  f.can_create = false;
  f.role = "deploy";
  try {
    choose_backup(f);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::refused);
    EXPECT_THAT(e.what(), HasSubstr("cannot take a template backup"));
  }
}

TEST(SafeMigrateBackup, ParsesKinds) {
  EXPECT_EQ(parse_backup_kind("auto", "default"), BackupKind::automatic);
  EXPECT_EQ(parse_backup_kind("Template", "--backup"), BackupKind::template_copy);
  EXPECT_EQ(parse_backup_kind("archive", "--backup"), BackupKind::archive);
  EXPECT_EQ(to_string(BackupKind::archive), "archive");
  try {
    parse_backup_kind("tape", "PREVIEWDB_SAFE_MIGRATE_BACKUP");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_THAT(e.what(), HasSubstr("PREVIEWDB_SAFE_MIGRATE_BACKUP"));
  }
}
