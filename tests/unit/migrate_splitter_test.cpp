#include <gtest/gtest.h>

#include "migrate/lock.hpp"
#include "migrate/splitter.hpp"
#include "util/error.hpp"

using namespace previewdb;
using namespace previewdb::migrate;

TEST(MigrateSplitter, KeepsDollarQuotesCommentsAndStringsTogether) {
  std::string sql =
      "-- leading comment; not a statement\n"
      "CREATE TABLE a (id int); /* block ; comment */\n"
      "CREATE FUNCTION f() RETURNS trigger AS $body$\n"
      "BEGIN\n"
      "  RAISE NOTICE 'semi;colon';\n"
      "  RETURN NEW;\n"
      "END;\n"
      "$body$ LANGUAGE plpgsql;\n"
      "INSERT INTO a VALUES (E'it\\'s;');\n"
      "CREATE FUNCTION g() RETURNS int LANGUAGE sql\n"
      "BEGIN ATOMIC\n"
      "  SELECT 1;\n"
      "  SELECT 2;\n"
      "END;\n";
  auto r = split_statements(sql);
  ASSERT_FALSE(r.error);
  ASSERT_EQ(r.statements.size(), 4u);
  EXPECT_EQ(r.statements[0].sql, "CREATE TABLE a (id int)");
  EXPECT_EQ(r.statements[0].line, 2);
  EXPECT_EQ(r.statements[1].line, 3);
  EXPECT_NE(r.statements[1].sql.find("RETURN NEW;"), std::string::npos);
  EXPECT_EQ(r.statements[2].line, 9);
  EXPECT_EQ(r.statements[3].line, 10);
  EXPECT_NE(r.statements[3].sql.find("SELECT 2;"), std::string::npos);
}

TEST(MigrateSplitter, LinesAreOffsetByTheSectionStart) {
  auto r = split_statements("\n\nSELECT 1;\nSELECT 2;", 10);
  ASSERT_EQ(r.statements.size(), 2u);
  EXPECT_EQ(r.statements[0].line, 12);
  EXPECT_EQ(r.statements[1].line, 13);
}

TEST(MigrateSplitter, CommentOnlyTextHasNoStatements) {
  EXPECT_TRUE(split_statements("-- nothing\n/* here */\n").statements.empty());
  EXPECT_TRUE(split_statements("").statements.empty());
}

TEST(MigrateSplitter, SyntaxErrorNamesTheLine) {
  auto r = split_statements("CREATE TABLE a (id int);\n\nCRATE TABLE b (id int);\n");
  ASSERT_TRUE(r.error);
  EXPECT_EQ(r.error->line, 3);
  EXPECT_NE(r.error->message.find("syntax error"), std::string::npos);
  EXPECT_EQ(r.statements.size(), 2u);  // the scanner still splits it
}

TEST(MigrateSplitter, DetectsStatementsThatCannotRunInATransaction) {
  auto r = split_statements(
      "CREATE INDEX CONCURRENTLY i ON t (a);\n"
      "DROP INDEX CONCURRENTLY IF EXISTS j;\n"
      "VACUUM ANALYZE t;\n"
      "ANALYZE t;\n"
      "ALTER SYSTEM SET work_mem = '8MB';\n"
      "CREATE DATABASE x;\n"
      "REINDEX INDEX CONCURRENTLY i;\n"
      "CREATE INDEX k ON t (a);\n"
      "SELECT 'concurrently';\n");
  ASSERT_EQ(r.statements.size(), 9u);
  std::vector<bool> expected = {true, true, true, false, true, true, true, false, false};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r.statements[i].no_transaction, expected[i]) << r.statements[i].sql;
  }
}

TEST(MigrateSplitter, ChoosesTheMode) {
  Migration m;
  m.statements = split_statements("BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n").statements;
  choose_mode(m);
  EXPECT_EQ(m.mode, Mode::own_transaction);

  m.statements =
      split_statements("BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;\n").statements;
  choose_mode(m);
  EXPECT_EQ(m.mode, Mode::autocommit);
  EXPECT_EQ(m.mode_reason, "the file manages its own transactions (BEGIN at line 1)");

  m.statements =
      split_statements("SELECT 1;\nCREATE UNIQUE INDEX CONCURRENTLY i ON t (a);").statements;
  choose_mode(m);
  EXPECT_EQ(m.mode, Mode::autocommit);
  EXPECT_EQ(m.mode_reason,
            "CREATE UNIQUE INDEX CONCURRENTLY at line 2 cannot run inside a transaction");

  m.statements = split_statements("SELECT 1;").statements;
  choose_mode(m, "dbmate option transaction:false");
  EXPECT_EQ(m.mode, Mode::autocommit);
  choose_mode(m);
  EXPECT_EQ(m.mode, Mode::transaction);
}

TEST(MigrateSplitter, CharacterPositionsToBytes) {
  std::string s = "é;x";  // é is two bytes
  EXPECT_EQ(byte_offset_of_char(s, 1), 0u);
  EXPECT_EQ(byte_offset_of_char(s, 2), 2u);
  EXPECT_EQ(line_of_offset("a\nb\nc", 4), 3);
}

TEST(MigrateLock, RecognisesPoolerUrls) {
  EXPECT_TRUE(looks_like_pooler("postgresql://u@db.example.com:6432/app"));
  EXPECT_TRUE(looks_like_pooler("postgresql://u@ep-x-pooler.eu-central-1.aws.neon.tech/app"));
  EXPECT_TRUE(looks_like_pooler("postgresql://u@h/app?pgbouncer=true"));
  EXPECT_FALSE(looks_like_pooler("postgresql://u:pooler6432@db.example.com:5432/app"));
  EXPECT_EQ(parse_lock_mode("table"), LockMode::table);
  EXPECT_EQ(parse_lock_mode("auto"), LockMode::automatic);
  EXPECT_THROW(parse_lock_mode("flock"), Error);
}
