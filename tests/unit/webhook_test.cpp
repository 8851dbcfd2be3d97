// Webhook signatures (GitHub's X-Hub-Signature-256, Netlify's X-Webhook-Signature JWS) and what a
// verified delivery asks for.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "crypto/hmac.hpp"
#include "crypto/sha256.hpp"
#include "harness/harness.hpp"
#include "webhook/webhook.hpp"

namespace previewdb {
namespace {

std::string b64url(const std::string& in) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned int buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += a[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += a[(buf << (6 - bits)) & 63];
  return out;
}

// A compact JWS as Netlify signs a deploy notification: HS256, {"iss":"netlify","sha256":hex}.
std::string netlify_jws(const std::string& secret, const std::string& header,
                        const std::string& payload) {
  std::string signing = b64url(header) + "." + b64url(payload);
  return signing + "." + b64url(crypto::hmac_sha256(secret, signing));
}

std::string claims(const std::string& body, const std::string& iss = "netlify") {
  return R"({"iss":")" + iss + R"(","sha256":")" + crypto::sha256_hex(body) + R"("})";
}

const std::string k_hs256 = R"({"alg":"HS256","typ":"JWT"})";

std::string fixture(const std::string& rel) {
  std::ifstream in(test::fixtures_dir() / rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// GitHub's published test values ("Testing the webhook payload validation", docs.github.com,
// webhooks/using-webhooks/validating-webhook-deliveries; github/docs
// content/webhooks/using-webhooks/validating-webhook-deliveries.md).
TEST(WebhookGithub, PublishedTestVector) {
  const std::string secret = "It's a Secret to Everybody";
  EXPECT_EQ(crypto::hmac_sha256_hex(secret, "Hello, World!"),
            "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
  EXPECT_TRUE(webhook::verify_github(
      secret, "Hello, World!",
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"));
}

TEST(WebhookGithub, RefusesWrongOrMissingSignatures) {
  const std::string secret = "It's a Secret to Everybody";
  const std::string good =
      "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
  EXPECT_FALSE(webhook::verify_github(secret, "Hello, World?", good));  // body changed
  EXPECT_FALSE(webhook::verify_github("another secret", "Hello, World!", good));
  EXPECT_FALSE(webhook::verify_github(secret, "Hello, World!", ""));
  EXPECT_FALSE(webhook::verify_github(secret, "Hello, World!", good.substr(7)));      // no sha256=
  EXPECT_FALSE(webhook::verify_github(secret, "Hello, World!", good.substr(0, 40)));  // truncated
  EXPECT_FALSE(webhook::verify_github(
      secret, "Hello, World!",
      "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"));
  // Hex is compared as sent: GitHub sends lowercase.
  std::string upper = good;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_FALSE(webhook::verify_github(secret, "Hello, World!", "sha256=" + upper.substr(7)));
  EXPECT_FALSE(webhook::verify_github("", "Hello, World!",
                                      "sha256=" + crypto::hmac_sha256_hex("", "Hello, World!")));
}

TEST(WebhookCrypto, ConstantTimeEquality) {
  EXPECT_TRUE(crypto::equal_constant_time("abc", "abc"));
  EXPECT_TRUE(crypto::equal_constant_time("", ""));
  EXPECT_FALSE(crypto::equal_constant_time("abc", "abd"));
  EXPECT_FALSE(crypto::equal_constant_time("abc", "abcd"));
}

TEST(WebhookNetlify, Base64url) {
  EXPECT_EQ(webhook::base64url_decode("SGVsbG8sIFdvcmxkIQ"), "Hello, World!");
  EXPECT_EQ(webhook::base64url_decode("SGVsbG8sIFdvcmxkIQ=="), "Hello, World!");
  EXPECT_EQ(webhook::base64url_decode("-_8"), std::string("\xfb\xff", 2));
  EXPECT_FALSE(webhook::base64url_decode("SGV+"));  // standard alphabet, not base64url
  EXPECT_FALSE(webhook::base64url_decode("A"));
}

TEST(WebhookNetlify, ValidJws) {
  std::string body = R"({"id":"1","review_id":12,"context":"deploy-preview"})";
  EXPECT_TRUE(
      webhook::verify_netlify("s3cret", body, netlify_jws("s3cret", k_hs256, claims(body))));
}

TEST(WebhookNetlify, RefusesBadJws) {
  std::string body = R"({"review_id":12})";
  std::string jws = netlify_jws("s3cret", k_hs256, claims(body));
  EXPECT_FALSE(webhook::verify_netlify("other", body, jws));         // wrong secret
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body + " ", jws));  // body changed
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body,
                                       netlify_jws("s3cret", k_hs256, claims(body, "someone"))));
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body,
                                       netlify_jws("s3cret", R"({"alg":"none"})", claims(body))));
  EXPECT_FALSE(webhook::verify_netlify(
      "s3cret", body, netlify_jws("s3cret", k_hs256, R"({"iss":"netlify"})")));  // no sha256
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body, jws.substr(0, jws.rfind('.'))));
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body, jws + ".x"));
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body, ""));
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body, "a.b.c"));
  // An unsigned token ("alg":"none", empty signature) is refused before anything is parsed.
  std::string unsigned_token = b64url(R"({"alg":"none"})") + "." + b64url(claims(body)) + ".";
  EXPECT_FALSE(webhook::verify_netlify("s3cret", body, unsigned_token));
}

TEST(WebhookActions, GithubPullRequestPayloads) {
  auto closed =
      webhook::github_action("pull_request", fixture("github/pull_request/closed.payload.json"));
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->kind, webhook::Action::Kind::drop);
  EXPECT_GT(closed->pr, 0);
  EXPECT_FALSE(closed->repository.empty());
  auto merged = webhook::github_action("pull_request",
                                       fixture("github/pull_request/closed-merged.payload.json"));
  ASSERT_TRUE(merged);
  EXPECT_EQ(merged->kind, webhook::Action::Kind::drop);
  for (const char* f : {"opened", "reopened", "synchronize", "labeled"}) {
    auto a = webhook::github_action(
        "pull_request", fixture(std::string("github/pull_request/") + f + ".payload.json"));
    ASSERT_TRUE(a) << f;
    EXPECT_EQ(a->kind, webhook::Action::Kind::ignore) << f;
  }
  auto ping = webhook::github_action("ping", R"({"zen":"Keep it logically awesome.","hook_id":1})");
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->kind, webhook::Action::Kind::ping);
  auto push = webhook::github_action("push", R"({"ref":"refs/heads/main"})");
  ASSERT_TRUE(push);
  EXPECT_EQ(push->kind, webhook::Action::Kind::ignore);
}

TEST(WebhookActions, MalformedPayloads) {
  EXPECT_FALSE(webhook::github_action("pull_request", "not json"));
  EXPECT_FALSE(webhook::github_action("pull_request", "[1,2]"));
  EXPECT_FALSE(webhook::github_action("pull_request", R"({"action":"closed"})"));
  EXPECT_FALSE(webhook::github_action(
      "pull_request",
      R"({"action":"closed","number":-3,"pull_request":{},"repository":{"full_name":"o/r"}})"));
  EXPECT_FALSE(webhook::github_action(
      "pull_request", R"({"action":"closed","number":3,"pull_request":{},"repository":{}})"));
  EXPECT_FALSE(webhook::netlify_action("{", ""));
}

TEST(WebhookActions, NetlifyDeploys) {
  auto a = webhook::netlify_action(
      R"({"review_id":7,"context":"deploy-preview","review_url":"https://github.com/acme/shop/pull/7"})",
      "");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->kind, webhook::Action::Kind::if_closed);
  EXPECT_EQ(a->repository, "acme/shop");
  EXPECT_EQ(a->pr, 7);
  // Production deploys have review_id null (the shape Netlify sends).
  auto prod = webhook::netlify_action(R"({"review_id":null,"context":"production"})", "acme/shop");
  ASSERT_TRUE(prod);
  EXPECT_EQ(prod->kind, webhook::Action::Kind::ignore);
  // No GitHub URL: the configured repository, else nothing to ask.
  auto gitlab = webhook::netlify_action(
      R"({"review_id":7,"review_url":"https://gitlab.com/acme/shop/-/merge_requests/7"})", "");
  ASSERT_TRUE(gitlab);
  EXPECT_EQ(gitlab->kind, webhook::Action::Kind::ignore);
  auto fallback = webhook::netlify_action(R"({"review_id":7})", "acme/shop");
  ASSERT_TRUE(fallback);
  EXPECT_EQ(fallback->repository, "acme/shop");
}

TEST(WebhookDeliveries, RemembersRecentIds) {
  webhook::DeliveryMemory m(2);
  EXPECT_FALSE(m.seen("a"));
  EXPECT_TRUE(m.seen("a"));
  EXPECT_FALSE(m.seen("b"));
  EXPECT_FALSE(m.seen("c"));  // "a" is forgotten now
  EXPECT_FALSE(m.seen("a"));
  EXPECT_TRUE(m.seen("c"));
}

}  // namespace
}  // namespace previewdb
