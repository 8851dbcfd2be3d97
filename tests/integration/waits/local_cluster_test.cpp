// Issue 7 item 10: with .previewdb/cluster.json missing, the local server's data directory was
// deleted (even while the server ran). Now a directory previewdb recognises is adopted, any
// other is refused with a hint; nothing is deleted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "db/connection.hpp"
#include "local/cluster.hpp"
#include "util/error.hpp"

using namespace previewdb;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

class Home {
 public:
  Home() {
    char tmpl[] = "/tmp/previewdb-waits-home-XXXXXX";
    if (!::mkdtemp(tmpl)) std::abort();
    ::chmod(tmpl, 0755);  // the unprivileged server user must reach it when tests run as root
    m_path = tmpl;
  }
  ~Home() {
    std::error_code ec;
    fs::remove_all(m_path, ec);
  }
  const fs::path& path() const { return m_path; }

 private:
  fs::path m_path;
};

bool has_database(const local::Cluster& c, const std::string& name) {
  auto conn = db::Connection::open({.conninfo = c.conninfo("postgres")});
  return conn.exec("SELECT 1 FROM pg_database WHERE datname = $1", {name}).rows() == 1;
}

TEST(LocalCluster, MissingStateFileAdoptsTheRunningServerInsteadOfDeletingIt) {
  Home home;
  local::Cluster first({.home = home.path(), .durable = false, .create_database = ""});
  first.start();
  db::Connection::open({.conninfo = first.conninfo("postgres")}).exec("CREATE DATABASE keepme");
  auto data = first.status().data_dir;
  fs::remove(home.path() / "cluster.json");

  local::Cluster again({.home = home.path(), .durable = false, .create_database = ""});
  ASSERT_NO_THROW(again.start());
  EXPECT_TRUE(fs::exists(data / "PG_VERSION"));
  EXPECT_TRUE(has_database(again, "keepme"));
  again.stop();
}

TEST(LocalCluster, MissingStateFileWithAnUnrecognisedDataDirectoryIsRefused) {
  Home home;
  local::Cluster first({.home = home.path(), .durable = false, .create_database = ""});
  first.start();
  auto data = first.status().data_dir;
  first.stop();
  fs::remove(home.path() / "cluster.json");

  // A TCP server's password was only in cluster.json: previewdb cannot adopt it.
  local::Cluster tcp({.home = home.path(), .tcp_port = 1, .durable = false, .create_database = ""});
  try {
    tcp.start();
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("is missing, but its data directory"));
    EXPECT_THAT(std::string(e.what()), HasSubstr("previewdb will not delete it"));
    ASSERT_FALSE(e.hints().empty());
    EXPECT_THAT(e.hints().front(), HasSubstr("restore cluster.json"));
  }
  EXPECT_TRUE(fs::exists(data / "PG_VERSION"));
}

}  // namespace
