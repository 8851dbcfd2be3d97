#include <gtest/gtest.h>

#include "crypto/sha256.hpp"
#include "util/duration.hpp"
#include "util/error.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

using namespace previewdb;
using namespace std::chrono_literals;

TEST(Duration, UnitsAndBareNumbers) {
  EXPECT_EQ(util::parse_duration("30s", util::BareUnit::seconds, "x"), 30s);
  EXPECT_EQ(util::parse_duration("10m", util::BareUnit::seconds, "x"), 600s);
  EXPECT_EQ(util::parse_duration("12h", util::BareUnit::days, "x"), 12h);
  EXPECT_EQ(util::parse_duration("7d", util::BareUnit::days, "x"), 7 * 24h);
  EXPECT_EQ(util::parse_duration("7", util::BareUnit::days, "x"), 7 * 24h);
  EXPECT_EQ(util::parse_duration("90", util::BareUnit::seconds, "x"), 90s);
  EXPECT_EQ(util::parse_duration("1h30m", util::BareUnit::seconds, "x"), 90min);
}

TEST(Duration, RejectsGarbageWithTheFlagName) {
  for (const char* bad : {"", "abc", "7x", "-1", "d", "1.5h"}) {
    try {
      util::parse_duration(bad, util::BareUnit::days, "--older-than");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::usage);
      EXPECT_NE(std::string(e.what()).find("--older-than"), std::string::npos);
    }
  }
}

TEST(Redact, UrlsAndConninfo) {
  EXPECT_EQ(util::redact_url("postgresql://app:s3cr3t@db:5432/dev"),
            "postgresql://app:***@db:5432/dev");
  EXPECT_EQ(util::redact_url("host=db password=s3cr3t dbname=dev"),
            "host=db password=*** dbname=dev");
  EXPECT_EQ(util::redact_url("https://x-access-token:ghp_abc@github.com/o/r"),
            "https://x-access-token:***@github.com/o/r");
  EXPECT_EQ(util::redact_url("https://ghp_abcdef@github.com/o/r"), "https://***@github.com/o/r");
  EXPECT_EQ(util::redact_url("postgresql://app@db/dev"), "postgresql://app@db/dev");
}

TEST(Redact, RegisteredSecretsAreScrubbed) {
  util::register_secret("hunter2-very-secret");
  EXPECT_EQ(util::scrub("password is hunter2-very-secret!"), "password is ***!");
}

TEST(Strings, Utf8) {
  EXPECT_TRUE(util::is_valid_utf8("plain"));
  EXPECT_TRUE(util::is_valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(util::is_valid_utf8("caf\xe9"));
  EXPECT_FALSE(util::is_valid_utf8("\xc3"));
}

TEST(Strings, DidYouMean) {
  EXPECT_EQ(util::did_you_mean("snapshto", {"snapshot", "spawn", "list"}).value_or(""), "snapshot");
  EXPECT_FALSE(util::did_you_mean("zzzzzzzz", {"snapshot", "spawn"}).has_value());
}

TEST(Crypto, Sha256) {
  EXPECT_EQ(crypto::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Subprocess, CapturesAndPipes) {
  auto r = util::run_process({.argv = {"sh", "-c", "echo out; echo err >&2; exit 3"},
                              .capture_stdout = true,
                              .capture_stderr = true});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "out\n");
  EXPECT_EQ(r.err, "err\n");
  auto [a, b] = util::run_pipeline({.argv = {"printf", "a\\nb\\n"}},
                                   {.argv = {"wc", "-l"}, .capture_stdout = true});
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_EQ(util::trim(b.out), "2");
}

#include "util/workflow_commands.hpp"

TEST(WorkflowCommands, ErrorCommandEscapesPropertiesAndData) {
  // A file name with ':' or ',' cannot inject another property; a message cannot end the line.
  EXPECT_EQ(util::workflow::error_command("db/1:a,b.sql", 7, "migration 1 failed",
                                          "boom 100%\n::error::fake"),
            "::error file=db/1%3Aa%2Cb.sql,line=7,title=migration 1 failed::"
            "boom 100%25%0A::error::fake\n");
  EXPECT_EQ(util::workflow::error_command("f.sql", 0, "t", "m"), "::error file=f.sql,title=t::m\n");
}
