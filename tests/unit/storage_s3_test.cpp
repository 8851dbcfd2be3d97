// The s3:// store's pure parts: AWS Signature Version 4 against AWS's published test vectors
// (tests/fixtures/sigv4/vectors.json, sources named there), manifest HMACs, part sizes.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crypto/hmac.hpp"
#include "harness/harness.hpp"
#include "storage/s3.hpp"
#include "storage/sigv4.hpp"
#include "util/files.hpp"

using namespace previewdb;

namespace {

TEST(SigV4, PublishedTestVectors) {
  auto doc =
      nlohmann::json::parse(util::read_file(test::fixtures_dir() / "sigv4" / "vectors.json"));
  ASSERT_GE(doc["vectors"].size(), 5u);
  for (const auto& v : doc["vectors"]) {
    SCOPED_TRACE(v["name"].get<std::string>());
    storage::SigV4Request r;
    r.method = v["method"];
    r.path = v.contains("path_unencoded")
                 ? storage::uri_encode(v["path_unencoded"].get<std::string>(), false)
                 : v["path"].get<std::string>();
    for (const auto& q : v["query"]) r.query.emplace_back(q[0], q[1]);
    for (const auto& h : v["headers"]) r.headers.emplace_back(h[0], h[1]);
    r.payload_hash = crypto::to_hex(crypto::sha256_raw(v["body"].get<std::string>()));
    storage::AwsCredentials creds{v["access_key"], v["secret"], ""};
    auto s = storage::sign_v4(r, creds, v["region"], v["service"], v["date"]);
    EXPECT_EQ(s.signed_headers, v["signed_headers"]);
    EXPECT_EQ(s.signature, v["signature"]) << s.canonical_request << "\n---\n" << s.string_to_sign;
    EXPECT_EQ(s.authorization,
              "AWS4-HMAC-SHA256 Credential=" + v["access_key"].get<std::string>() + "/" +
                  v["date"].get<std::string>().substr(0, 8) + "/" + v["region"].get<std::string>() +
                  "/" + v["service"].get<std::string>() +
                  "/aws4_request, SignedHeaders=" + v["signed_headers"].get<std::string>() +
                  ", Signature=" + v["signature"].get<std::string>());
  }
}

TEST(SigV4, AWrongSecretGivesAnotherSignature) {
  storage::SigV4Request r{"GET", "/", {}, {{"host", "h"}, {"x-amz-date", "20150830T123600Z"}}, "x"};
  auto a = storage::sign_v4(r, {"AK", "secret-a", ""}, "us-east-1", "s3", "20150830T123600Z");
  auto b = storage::sign_v4(r, {"AK", "secret-b", ""}, "us-east-1", "s3", "20150830T123600Z");
  EXPECT_NE(a.signature, b.signature);
  EXPECT_EQ(a.canonical_request, b.canonical_request);
}

TEST(SigV4, CanonicalFormDetails) {
  EXPECT_EQ(storage::uri_encode("a b/c~d_e.f-g*h", false), "a%20b/c~d_e.f-g%2Ah");
  EXPECT_EQ(storage::uri_encode("a/b", true), "a%2Fb");
  // Sorted by encoded name, empty values kept ("?uploads" is "uploads=").
  EXPECT_EQ(storage::canonical_query({{"uploads", ""}, {"prefix", "a b"}, {"B", "1"}}),
            "B=1&prefix=a%20b&uploads=");
  EXPECT_EQ(storage::amz_date(1440938160), "20150830T123600Z");
  // Header values trimmed, inner runs of spaces collapsed; repeated headers joined.
  storage::SigV4Request r{"GET", "/", {}, {{"Host", "h"}, {"X-A", "  a   b  "}, {"x-a", "c"}}, "p"};
  auto s = storage::sign_v4(r, {"AK", "S", ""}, "r", "s3", "20150830T123600Z");
  EXPECT_NE(s.canonical_request.find("x-a:a b,c\n"), std::string::npos) << s.canonical_request;
  EXPECT_EQ(s.signed_headers, "host;x-a");
}

TEST(S3, PartSizeGrowsSoTenThousandPartsNeverCapADump) {
  const std::uint64_t base = 8u << 20;
  EXPECT_EQ(storage::s3_part_size(base, 1), base);
  EXPECT_EQ(storage::s3_part_size(base, 1000), base);
  EXPECT_EQ(storage::s3_part_size(base, 1001), 2 * base);
  EXPECT_EQ(storage::s3_part_size(1, 1), 5u << 20);  // S3's minimum part
  std::uint64_t total = 0;
  for (int n = 1; n <= 10000; ++n) total += storage::s3_part_size(base, n);
  EXPECT_GT(total, 5ull << 40);  // more than S3's largest object (5 TiB)
  EXPECT_LE(storage::s3_part_size(base, 10000), 5ull << 30);
}

TEST(S3, ManifestHmacBindsContentNameAndKey) {
  std::string signed_text = storage::sign_manifest("a.json", R"({"x": 1, "y": "z"})", "k1");
  auto ok = storage::check_manifest("a.json", signed_text, "k1");
  ASSERT_EQ(ok.status, storage::ManifestCheck::ok);
  EXPECT_EQ(nlohmann::json::parse(ok.text), nlohmann::json::parse(R"({"x": 1, "y": "z"})"));
  EXPECT_EQ(storage::check_manifest("a.json", signed_text, "k2").status,
            storage::ManifestCheck::bad_hmac);
  EXPECT_EQ(storage::check_manifest("b.json", signed_text, "k1").status,
            storage::ManifestCheck::bad_hmac);
  auto j = nlohmann::json::parse(signed_text);
  j["x"] = 2;
  EXPECT_EQ(storage::check_manifest("a.json", j.dump(), "k1").status,
            storage::ManifestCheck::bad_hmac);
  // Re-serialised (other spacing, key order) it still verifies: the MAC is over canonical JSON.
  j["x"] = 1;
  EXPECT_EQ(storage::check_manifest("a.json", j.dump(), "k1").status, storage::ManifestCheck::ok);
  EXPECT_EQ(storage::check_manifest("a.json", R"({"x": 1})", "k1").status,
            storage::ManifestCheck::unsigned_manifest);
  EXPECT_EQ(storage::check_manifest("a.json", "not json", "k1").status,
            storage::ManifestCheck::not_json);
}

TEST(S3, OpenStoreRefusesMissingSettingsBeforeAnyRequest) {
  storage::StoreOptions o;
  try {
    storage::open_store("s3://my-bucket/x", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::usage);
    EXPECT_NE(std::string(e.what()).find("needs credentials"), std::string::npos);
  }
  o.s3_credentials = {"AK", "SK", ""};
  try {
    storage::open_store("s3://my-bucket/x", o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("PREVIEWDB_MANIFEST_KEY"), std::string::npos);
  }
  o.manifest_key = "m";
  EXPECT_THROW(storage::open_store("s3://Bad_Bucket/x", o), Error);
  EXPECT_THROW(storage::open_store("s3://bucket/../x", o), Error);
  auto store = storage::open_store("s3://my-bucket/some/prefix/snap_dev_1.dump", o);
  EXPECT_EQ(store->describe(), "s3://my-bucket/some/prefix");
  EXPECT_TRUE(store->remote());
}

}  // namespace
