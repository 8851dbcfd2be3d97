// Issue 7 item 6: a preview held by a running build (`ci -- CMD`, core::hold_database) is not
// dropped from under it by `spawn --replace` nor by ci's divergence reset: both refuse with exit 6
// naming the holder, before building anything, and the preview is left as it was.
#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "integration/ci/ci_flow.hpp"

using namespace previewdb;
using namespace previewdb::test::ciflow;
using ::testing::HasSubstr;

namespace {

class CiHold : public CiFlow {
 protected:
  long long oid(const std::string& db) {
    return server()
        .connect()
        .exec("SELECT oid::bigint FROM pg_database WHERE datname = $1", {db})
        .get_int(0, 0);
  }
  int temporaries() {
    return static_cast<int>(
        server()
            .connect()
            .exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'previewdb\\_tmp\\_%'")
            .get_int(0, 0));
  }
};

TEST_F(CiHold, SpawnReplaceRefusesAHeldDatabase) {
  prepare_dev();
  auto made = cli({"spawn", "held", "--user", "alice"});
  ASSERT_EQ(made.code, 0) << made.all();
  long long before = oid("dev_alice_held");
  {
    auto hold = core::hold_database(server().connect(core::k_registry_database), "dev_alice_held",
                                    "previewdb ci -- npm test (pid 4242)", std::chrono::seconds(5));
    auto r = cli({"spawn", "held", "--user", "alice", "--replace"});
    EXPECT_EQ(r.code, 6) << r.all();
    EXPECT_THAT(r.err, HasSubstr("refusing to replace database \"dev_alice_held\""));
    EXPECT_THAT(r.err, HasSubstr("in use by a running build"));
    EXPECT_THAT(r.err, HasSubstr("previewdb ci -- npm test (pid 4242)"));
    EXPECT_EQ(oid("dev_alice_held"), before) << "the held database is untouched";
    EXPECT_EQ(temporaries(), 0) << "nothing half-made left";
  }
  // The build ended: replacing works again.
  auto r = cli({"spawn", "held", "--user", "alice", "--replace"});
  EXPECT_EQ(r.code, 0) << r.all();
  EXPECT_NE(oid("dev_alice_held"), before);
}

TEST_F(CiHold, DivergenceResetRefusesAHeldPreview) {
  prepare_dev();
  ASSERT_EQ(github(pr_event(44, "main", "opened")).r.code, 0);
  long long before = oid("pr_44");
  // The PR's migration is edited: the next run wants to re-create pr_44.
  repos.commit_file("migrations/schema/0002_add_email.sql",
                    "ALTER TABLE users ADD COLUMN email_address text;\n", "rename column");
  {
    auto hold = core::hold_database(server().connect(core::k_registry_database), "pr_44",
                                    "previewdb ci -- npm test (pid 4343)", std::chrono::seconds(5));
    auto g = github(pr_event(44));
    EXPECT_EQ(g.r.code, 6) << g.r.all();
    EXPECT_THAT(g.r.err, HasSubstr("refusing to replace database \"pr_44\""));
    EXPECT_THAT(g.r.err, HasSubstr("previewdb ci -- npm test (pid 4343)"));
    EXPECT_EQ(oid("pr_44"), before);
    EXPECT_EQ(temporaries(), 0);
  }
  // Once the build is over, the same run resets it.
  auto g = github(pr_event(44));
  ASSERT_EQ(g.r.code, 0) << g.r.all();
  EXPECT_EQ(g.outputs()["reset"], "true");
  EXPECT_NE(oid("pr_44"), before);
}

}  // namespace
