// The dialect table and CockroachDB's statement builders. No CockroachDB server can run here
// (docs/COCKROACHDB.md): every CockroachDB statement below is checked against the statement
// CockroachDB's documentation shows, quoted with its URL next to it. Where previewdb quotes an
// identifier the documentation leaves bare (bank -> "bank"), the expected text says so: quoted and
// bare are the same name for a lowercase identifier.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/protection.hpp"
#include "db/dialect.hpp"
#include "storage/cockroach_url.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const db::Dialect& crdb() {
  return db::cockroach_dialect();
}
const db::Dialect& pg() {
  return db::postgres_dialect(150000);
}

}  // namespace

TEST(DialectTable, WhatDiffersBetweenPostgresAndCockroach) {
  EXPECT_TRUE(pg().template_databases);
  EXPECT_TRUE(pg().advisory_locks);
  EXPECT_TRUE(pg().transactional_ddl);
  EXPECT_TRUE(pg().database_sizes);
  EXPECT_FALSE(crdb().template_databases);  // BACKUP/RESTORE instead
  EXPECT_FALSE(crdb().clone_strategy);
  EXPECT_TRUE(crdb().comment_on_database);  // COMMENT ON DATABASE exists there too
  EXPECT_FALSE(crdb().advisory_locks);      // the lease row
  EXPECT_FALSE(crdb().transactional_ddl);   // a statement at a time
  EXPECT_FALSE(crdb().database_sizes);      // "-" in list, as the original system showed
  EXPECT_EQ(db::dialect_for({db::ServerKind::cockroach, "v23.1.11"}, 130000).name,
            std::string("CockroachDB"));
}

TEST(DialectTable, DropDatabase) {
  // PostgreSQL keeps WITH (FORCE): the statement previewdb always ran.
  EXPECT_EQ(pg().drop_database("pr_12", true), "DROP DATABASE IF EXISTS \"pr_12\" WITH (FORCE)");
  EXPECT_EQ(pg().drop_database("pr_12", false), "DROP DATABASE \"pr_12\" WITH (FORCE)");
  // https://www.cockroachlabs.com/docs/stable/drop-database, Synopsis:
  //   DROP DATABASE [IF EXISTS] database_name [CASCADE | RESTRICT]
  // (no WITH (FORCE) in CockroachDB's grammar).
  EXPECT_EQ(crdb().drop_database("pr_12", true), "DROP DATABASE IF EXISTS \"pr_12\" CASCADE");
  EXPECT_EQ(crdb().drop_database("pr_12", false), "DROP DATABASE \"pr_12\" CASCADE");
  EXPECT_EQ(crdb().drop_database("a\"b", true), "DROP DATABASE IF EXISTS \"a\"\"b\" CASCADE");
}

TEST(DialectTable, CreateEmptyDatabase) {
  EXPECT_EQ(pg().create_empty_database("previewdb_tmp_1"),
            "CREATE DATABASE \"previewdb_tmp_1\" TEMPLATE template0");
  // https://www.cockroachlabs.com/docs/stable/create-database: CREATE DATABASE [IF NOT EXISTS]
  // name; CockroachDB has no template databases.
  EXPECT_EQ(crdb().create_empty_database("previewdb_tmp_1"), "CREATE DATABASE \"previewdb_tmp_1\"");
}

TEST(DialectTable, SessionSettings) {
  using std::chrono::milliseconds;
  // PostgreSQL: what set_limits always ran (client_connection_check_interval from 14 on).
  EXPECT_EQ(pg().session_settings(milliseconds(5000), 150000),
            (std::vector<std::string>{"SELECT set_config('lock_timeout', '5000ms', false), "
                                      "set_config('statement_timeout', '0', false)",
                                      "SET client_connection_check_interval = '1s'"}));
  EXPECT_EQ(db::postgres_dialect(130000).session_settings(milliseconds(5000), 130000).size(), 1u);
  // https://www.cockroachlabs.com/docs/stable/session-variables: statement_timeout ("0" = no
  // timeout) and lock_timeout are session variables; client_connection_check_interval is not one.
  auto c = crdb().session_settings(milliseconds(5000), 130000);
  EXPECT_EQ(
      c, (std::vector<std::string>{"SET statement_timeout = '0'", "SET lock_timeout = '5000ms'"}));
  for (const auto& s : c) EXPECT_THAT(s, Not(HasSubstr("client_connection_check_interval")));
}

TEST(CockroachStatements, Backup) {
  // https://www.cockroachlabs.com/docs/stable/backup, "Back up a database":
  //   BACKUP DATABASE bank INTO 's3://{BUCKET NAME}?AWS_ACCESS_KEY_ID={KEY
  //   ID}&AWS_SECRET_ACCESS_KEY={SECRET ACCESS KEY}' AS OF SYSTEM TIME '-10s';
  // (previewdb takes the backup now: no AS OF SYSTEM TIME, the snapshot must hold what is there.)
  EXPECT_EQ(db::cockroach::backup_database(
                "bank",
                "s3://acme/bank?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"
                "&AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"),
            "BACKUP DATABASE \"bank\" INTO 's3://acme/bank?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"
            "&AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY'");
}

TEST(CockroachStatements, RestoreUnderANewName) {
  // https://www.cockroachlabs.com/docs/v22.2/restore, "Restore with new_db_name" (with the
  // recommended FROM LATEST IN collectionURI form, same page, "Restore the most recent backup"):
  //   RESTORE DATABASE movr FROM LATEST IN 's3://...' WITH new_db_name = 'new_movr';
  EXPECT_EQ(db::cockroach::restore_database("movr", "s3://acme/movr?AUTH=implicit", "new_movr"),
            "RESTORE DATABASE \"movr\" FROM LATEST IN 's3://acme/movr?AUTH=implicit' WITH "
            "new_db_name = 'new_movr'");
}

TEST(CockroachStatements, ShowBackups) {
  // https://www.cockroachlabs.com/docs/stable/show-backup, "View a list of the available full
  // backup subdirectories":
  //   SHOW BACKUPS IN 's3://{bucket name}?AWS_ACCESS_KEY_ID={key ID}&AWS_SECRET_ACCESS_KEY={secret
  //   access key}';
  EXPECT_EQ(db::cockroach::show_backups("s3://test/backup-test?AUTH=implicit"),
            "SHOW BACKUPS IN 's3://test/backup-test?AUTH=implicit'");
}

TEST(CockroachStatements, LiteralsAreQuoted) {
  EXPECT_EQ(db::quote_string("it's"), "'it''s'");
  EXPECT_EQ(db::quote_string("a\\b"), "E'a\\\\b'");
  EXPECT_EQ(db::quote_identifier("we\"ird"), "\"we\"\"ird\"");
  EXPECT_EQ(db::cockroach::show_backups("s3://b/x'; DROP DATABASE dev; --"),
            "SHOW BACKUPS IN 's3://b/x''; DROP DATABASE dev; --'");
}

TEST(CockroachStorageUrl, CredentialsInTheQueryPercentEncoded) {
  storage::StoreOptions o;
  o.s3_region = "eu-west-1";
  // AWS's documentation example key pair; the secret has '/' and '+', which must be encoded.
  o.s3_credentials = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
  // https://www.cockroachlabs.com/docs/stable/use-cloud-storage: Amazon S3, scheme s3, host the
  // bucket, parameters AUTH (implicit or specified), AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
  // AWS_SESSION_TOKEN, AWS_ENDPOINT, AWS_REGION; "The location parameters often contain special
  // characters that need to be URI-encoded".
  EXPECT_EQ(storage::cockroach_storage_url("s3://acme-backups/previewdb/", "snap_dev_1", o),
            "s3://acme-backups/previewdb/snap_dev_1?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"
            "&AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
            "&AWS_REGION=eu-west-1");
  o.s3_credentials.session_token = "FwoGZXIvYXdzE+token/x";
  o.s3_endpoint = "http://minio.local:9000";
  EXPECT_EQ(storage::cockroach_storage_url("s3://acme-backups", "", o),
            "s3://acme-backups?AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"
            "&AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYEXAMPLEKEY"
            "&AWS_SESSION_TOKEN=FwoGZXIvYXdzE%2Btoken%2Fx"
            "&AWS_ENDPOINT=http%3A%2F%2Fminio.local%3A9000&AWS_REGION=eu-west-1");
}

TEST(CockroachStorageUrl, ImplicitAuthWithoutCredentials) {
  storage::StoreOptions o;
  // https://www.cockroachlabs.com/docs/stable/cloud-storage-authentication, "Amazon S3 implicit
  // authentication": s3://{bucket name}/{path}?AUTH=implicit
  EXPECT_EQ(storage::cockroach_storage_url("s3://acme/previewdb", "snap_dev_1", o),
            "s3://acme/previewdb/snap_dev_1?AUTH=implicit&AWS_REGION=us-east-1");
}

TEST(CockroachStorageUrl, OnlyS3) {
  storage::StoreOptions o;
  for (const char* bad : {"file:///var/backups", "s3://", "s3://bucket/x?AUTH=implicit"}) {
    try {
      storage::cockroach_storage_url(bad, "", o);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage) << bad;
    }
  }
}

TEST(CockroachStorageUrl, SecretsAreRedactedFromTheStatement) {
  storage::StoreOptions o;
  o.s3_credentials = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                      "sessiontoken/with+chars"};
  std::string sql = db::cockroach::backup_database(
      "dev", storage::cockroach_storage_url("s3://acme/p", "snap_dev_1", o));
  for (const std::string& shown : {util::redact_url(sql), util::scrub(sql)}) {
    EXPECT_THAT(shown, Not(HasSubstr("wJalrXUtnFEMI"))) << shown;
    EXPECT_THAT(shown, Not(HasSubstr("sessiontoken"))) << shown;
    EXPECT_THAT(shown, HasSubstr("BACKUP DATABASE \"dev\" INTO 's3://acme/p/snap_dev_1")) << shown;
  }
  // The key's name is a secret parameter wherever a URL is shown.
  EXPECT_TRUE(util::is_secret_key("AWS_SECRET_ACCESS_KEY"));
  EXPECT_TRUE(util::is_secret_key("AWS_SESSION_TOKEN"));
}

TEST(Protection, CockroachNamesAreBuiltIn) {
  // The original system protected system and defaultdb; previewdb does on every server.
  core::Protection p;
  EXPECT_TRUE(p.reason("system", {}).has_value());
  EXPECT_TRUE(p.reason("defaultdb", {}).has_value());
  EXPECT_TRUE(p.is_builtin("postgres"));
  EXPECT_FALSE(p.reason("previewdb_doctor_ab12cd34", {}).has_value());
}
