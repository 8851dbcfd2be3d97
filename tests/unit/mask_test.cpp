// PII masking (src/mask, docs/MASKING.md): the rules file's parsing and its errors, the SQL each
// function builds (identifiers quoted, values and keys as parameters), the checks that refuse a
// rule a column cannot take, the personal-data names --require-rules looks for, and the HMAC
// pads the SQL uses (checked against OpenSSL's HMAC).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crypto/hmac.hpp"
#include "mask/mask.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string error_of(const std::string& text) {
  try {
    mask::parse_rules(text, "rules.json");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    return e.what();
  }
  return "";
}

mask::ColumnInfo text_column() {
  mask::ColumnInfo c;
  c.type = "text";
  c.category = 'S';
  c.type_name = "text";
  return c;
}

}  // namespace

TEST(MaskRules, ParsesEveryFieldAndDefaults) {
  auto rules = mask::parse_rules(R"([
    {"table": "users", "column": "email", "function": "hash"},
    {"database": "prod", "schema": "crm", "table": "people", "column": "phone",
     "function": "partial", "params": {"prefix": 2, "suffix": 3, "padding": "#"}},
    {"table": "users", "column": "note", "function": "fixed", "params": {"value": "redacted"}}
  ])",
                                 "rules.json");
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_EQ(rules[0].schema, "public");
  EXPECT_FALSE(rules[0].database);
  EXPECT_EQ(rules[0].function, mask::Function::hash);
  EXPECT_EQ(rules[1].database, "prod");
  EXPECT_EQ(rules[1].label(), "crm.people.phone");
  EXPECT_EQ(rules[1].prefix, 2);
  EXPECT_EQ(rules[1].suffix, 3);
  EXPECT_EQ(rules[1].padding, "#");
  EXPECT_EQ(rules[2].value, "redacted");
  EXPECT_EQ(rules[2].index, 2u);
}

TEST(MaskRules, AcceptsNeonAndAnonymizerSpellings) {
  auto rules = mask::parse_rules(R"json({"rules": [
    {"database_name": "neondb", "schema_name": "public", "table_name": "users",
     "column_name": "email", "masking_function": "anon.fake_email()"}]
})json",
                                 "rules.json");
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0].function, mask::Function::fake_email);
  EXPECT_EQ(rules[0].database, "neondb");
}

TEST(MaskRules, ErrorsNameTheFileTheRuleAndTheField) {
  EXPECT_THAT(error_of("[{"), HasSubstr("cannot parse the masking rules \"rules.json\""));
  EXPECT_THAT(error_of(R"({"a": 1})"), HasSubstr("must be a JSON array"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "hash"}, 3])"),
              HasSubstr("rule 1: must be an object"));
  EXPECT_THAT(error_of(R"([{"table": "t", "function": "hash"}])"),
              HasSubstr("\"rules.json\", rule 0, \"column\": missing"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "rot13"}])"),
              HasSubstr("rule 0, \"function\": unknown function \"rot13\""));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "hash", "colour": 1}])"),
              HasSubstr("rule 0, \"colour\": unknown field"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "fixed"}])"),
              HasSubstr("\"params.value\": missing"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "partial",
                            "params": {"prefix": -1}}])"),
              HasSubstr("\"params.prefix\": must be a whole number"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "hash",
                            "params": {"value": 1}}])"),
              HasSubstr("\"params.value\": not a parameter of hash"));
  EXPECT_THAT(error_of(R"([{"table": "", "column": "c", "function": "hash"}])"),
              HasSubstr("\"table\": \"\" is not a PostgreSQL name"));
  EXPECT_THAT(error_of(R"([{"table": "t", "column": "c", "function": "hash"},
                          {"table": "t", "column": "c", "function": "null"}])"),
              HasSubstr("rule 1, \"column\": public.t.c already has a rule (rule 0)"));
}

TEST(MaskRules, TablesForExcludeData) {
  EXPECT_EQ(mask::parse_table("audit_log", "--exclude-data").label(), "public.audit_log");
  EXPECT_EQ(mask::parse_table("crm.audit", "--exclude-data").label(), "crm.audit");
  EXPECT_THROW(mask::parse_table("a.b.c", "--exclude-data"), Error);
  EXPECT_THROW(mask::parse_table("", "--exclude-data"), Error);
}

TEST(MaskRules, HashOfTheRulesChangesWithThem) {
  auto a = mask::parse_rules(R"([{"table": "t", "column": "c", "function": "hash"}])", "a");
  auto b = mask::parse_rules(R"([{"table": "t", "column": "c", "function": "null"}])", "b");
  EXPECT_EQ(mask::spec_hash(a, {}), mask::spec_hash(a, {}));
  EXPECT_NE(mask::spec_hash(a, {}), mask::spec_hash(b, {}));
  EXPECT_NE(mask::spec_hash(a, {}), mask::spec_hash(a, {mask::parse_table("t", "x")}));
  EXPECT_EQ(mask::spec_hash(a, {}).size(), 64u);
}

TEST(MaskRules, SaltIsRequiredByKeyedFunctionsOnly) {
  mask::Spec spec;
  spec.origin = "rules.json";
  spec.rules = mask::parse_rules(R"([{"table": "t", "column": "c", "function": "null"}])", "r");
  EXPECT_NO_THROW(mask::check_salt(spec));
  spec.rules = mask::parse_rules(R"([{"table": "t", "column": "c", "function": "hash"}])", "r");
  try {
    mask::check_salt(spec);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("PREVIEWDB_MASK_SALT is not set"));
    EXPECT_THAT(std::string(e.what()), HasSubstr("public.t.c: hash"));
  }
  spec.salt = "s3cret";
  EXPECT_NO_THROW(mask::check_salt(spec));
}

TEST(MaskRules, PersonalLookingNames) {
  for (const char* n : {"email", "Email", "phone", "first_name", "last_name", "name", "address",
                        "street", "ip", "ip_address", "ssn", "birth_date", "dob", "user_email"}) {
    EXPECT_TRUE(mask::looks_personal(n)) << n;
  }
  for (const char* n : {"id", "created_at", "total", "status", "shipping", "zipper_count"}) {
    EXPECT_FALSE(mask::looks_personal(n)) << n;
  }
}

TEST(MaskSql, HmacPadsMatchOpenSslHmac) {
  // sha256(okey || sha256(ikey || m)) is HMAC-SHA-256(key, m) (RFC 2104), short and long keys.
  for (std::string key : {std::string("salt"), std::string(100, 'k')}) {
    auto [inner, outer] = mask::hmac_pads(key);
    auto unhex = [](const std::string& h) {
      std::string out;
      for (size_t i = 0; i < h.size(); i += 2) {
        out += static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16));
      }
      return out;
    };
    std::string m = "alice@example.com";
    std::string mac = crypto::sha256_raw(unhex(outer) + crypto::sha256_raw(unhex(inner) + m));
    EXPECT_EQ(crypto::to_hex(mac), crypto::hmac_sha256_hex(key, m));
  }
}

TEST(MaskSql, IdentifiersQuotedValuesAsParameters) {
  auto rules = mask::parse_rules(R"([
    {"schema": "we\"ird", "table": "us\"ers", "column": "e;mail", "function": "fixed",
     "params": {"value": "x'); DROP TABLE users; --"}}])",
                                 "r");
  auto st = mask::build_update(rules[0], text_column(), "salt");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->sql, R"(UPDATE "we""ird"."us""ers" SET "e;mail" = $1 WHERE "e;mail" IS NOT NULL)");
  ASSERT_EQ(st->params.size(), 1u);
  EXPECT_EQ(st->params[0], "x'); DROP TABLE users; --");
}

TEST(MaskSql, HashUsesCoreFunctionsAndNeverTheSaltInText) {
  auto rules =
      mask::parse_rules(R"([{"table": "users", "column": "email", "function": "hash"}])", "r");
  auto c = text_column();
  c.max_length = 40;
  auto st = mask::build_update(rules[0], c, "my-salt");
  ASSERT_TRUE(st);
  EXPECT_THAT(st->sql, HasSubstr("sha256(decode($2, 'hex') || sha256(decode($1, 'hex') || "
                                 "convert_to(\"email\"::text, 'UTF8')))"));
  EXPECT_THAT(st->sql, HasSubstr("left(encode("));
  EXPECT_THAT(st->sql, HasSubstr(", 40)"));
  EXPECT_THAT(st->sql, Not(HasSubstr("my-salt")));
  EXPECT_THAT(st->sql, Not(HasSubstr("pgcrypto")));
  EXPECT_THAT(st->sql, Not(HasSubstr("hmac(")));
  auto uuid = c;
  uuid.category = 'U';
  uuid.type_name = "uuid";
  uuid.max_length = -1;
  EXPECT_THAT(mask::build_update(rules[0], uuid, "s")->sql, HasSubstr("::uuid"));
}

TEST(MaskSql, EveryFunctionBuildsOrIsANoOp) {
  for (const char* f : {"null", "fake_email", "fake_name", "fake_phone", "partial", "shuffle"}) {
    auto rules = mask::parse_rules(
        std::string(R"([{"table": "t", "column": "c", "function": ")") + f + "\"}]", "r");
    auto st = mask::build_update(rules[0], text_column(), "s");
    ASSERT_TRUE(st) << f;
    EXPECT_THAT(st->sql, HasSubstr("UPDATE \"public\".\"t\" SET \"c\" = ")) << f;
  }
  auto keep = mask::parse_rules(R"([{"table": "t", "column": "c", "function": "keep"}])", "r");
  EXPECT_FALSE(mask::build_update(keep[0], text_column(), "s"));
}

TEST(MaskChecks, RefusesWhatAColumnCannotTake) {
  auto rule = [](const char* f) {
    return mask::parse_rules(
        std::string(R"([{"table": "t", "column": "c", "function": ")") + f + "\"}]", "r")[0];
  };
  auto refused = [&](const char* f, const mask::ColumnInfo& c) {
    try {
      mask::check_rule(rule(f), c, "rules.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::refused);
      return std::string(e.what());
    }
    return std::string();
  };
  auto unique = text_column();
  unique.unique = true;
  EXPECT_THAT(refused("shuffle", unique), HasSubstr("unique index"));
  EXPECT_THAT(refused("fake_name", unique), HasSubstr("unique index"));
  EXPECT_THAT(refused("partial", unique), HasSubstr("unique index"));
  EXPECT_EQ(refused("hash", unique), "");
  EXPECT_EQ(refused("fake_email", unique), "");
  auto not_null = text_column();
  not_null.not_null = true;
  EXPECT_THAT(refused("null", not_null), HasSubstr("NOT NULL"));
  auto fixed_null = mask::parse_rules(
      R"([{"table": "t", "column": "c", "function": "fixed", "params": {"value": null}}])", "r");
  EXPECT_THROW(mask::check_rule(fixed_null[0], not_null, "rules.json"), Error);
  mask::ColumnInfo integer;
  integer.type = "integer";
  integer.category = 'N';
  integer.type_name = "int4";
  EXPECT_THAT(refused("hash", integer), HasSubstr("text and uuid"));
  EXPECT_THAT(refused("fake_email", integer), HasSubstr("not text"));
  EXPECT_EQ(refused("shuffle", integer), "");
  auto short_text = text_column();
  short_text.max_length = 10;
  EXPECT_THAT(refused("fake_email", short_text), HasSubstr("too short"));
  auto generated = text_column();
  generated.generated = true;
  EXPECT_THAT(refused("hash", generated), HasSubstr("generated"));
}
