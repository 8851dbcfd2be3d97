#include <gtest/gtest.h>

#include "harness/harness.hpp"

using namespace previewdb;

TEST(Harness, StartsARealServerWithPasswordAuth) {
  auto& server = test::PgServer::shared();
  auto conn = server.connect();
  auto r = conn.exec("SELECT current_setting('server_version_num')::int >= 150000");
  EXPECT_TRUE(r.get_bool(0, 0));
  EXPECT_TRUE(server.database_exists("dev"));
  EXPECT_THROW(db::Connection::open({.conninfo = "postgresql://previewdb:wrong@127.0.0.1:" +
                                                 std::to_string(server.port()) + "/postgres"}),
               Error);
}
