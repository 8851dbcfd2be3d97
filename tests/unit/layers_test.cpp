// Dependencies point one way (docs/ARCHITECTURE.md, "Layers"): every `#include "..."` under src/
// and every third-party library header is checked against the table below, which mirrors the
// document. A failure names the file, the line and the include.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// Folder of src/ -> the folders it may include (besides itself). Mirrors docs/ARCHITECTURE.md:
//   util  <-  crypto / db / git / net / config / local / storage
//         <-  core / migrate / snapshot / backup / ci  <-  lint  <-  commands  <-  cli  <- main.cpp
// Within a layer, only the edges listed here: local uses db and crypto (its server's password),
// storage uses db (child-process environment), and crypto and net for s3:// (Signature V4,
// manifest HMACs, libcurl transport), snapshot and backup build on core (catalog,
// lifecycle); lint reads statements through migrate (parser, readers) and table sizes through db.
const std::map<std::string, std::set<std::string>> k_allowed = {
    {"util", {}},
    {"crypto", {"util"}},
    {"db", {"util"}},
    {"git", {"util"}},
    {"net", {"util"}},
    {"config", {"util"}},
    {"local", {"util", "db", "crypto"}},
    {"storage", {"util", "db", "crypto", "net"}},
    {"core", {"util", "crypto", "db", "storage"}},
    {"migrate", {"util", "crypto", "db"}},
    {"mask", {"util", "crypto", "db"}},  // PII masking of snapshot copies
    {"snapshot", {"util", "crypto", "db", "storage", "core", "mask"}},
    {"backup", {"util", "crypto", "db", "storage", "core"}},
    {"ci", {"util", "crypto", "db", "git", "net"}},
    {"lint", {"util", "db", "migrate"}},
    {"schema", {"util", "db"}},
    {"dryrun", {"util", "crypto", "db", "storage", "core", "migrate", "snapshot", "backup"}},
    {"webhook", {"util", "crypto"}},  // signatures, what a delivery asks for
    {"doctor", {"util", "db", "storage", "core", "migrate", "snapshot"}},
    {"commands",
     {"util", "crypto", "db", "git", "net", "config", "local", "storage", "core", "migrate",
      "snapshot", "backup", "ci", "lint", "schema", "dryrun", "webhook", "mask", "doctor"}},
    {"cli", {"util", "config", "commands"}},
    {"main.cpp", {"cli"}},
};

// Third-party headers: only the module that wraps the library includes them.
const std::vector<std::pair<std::regex, std::set<std::string>>> k_libraries = {
    {std::regex(R"(^openssl/)"), {"crypto"}},
    {std::regex(R"(^libpq-fe\.h$|^libpq/)"), {"db"}},
    {std::regex(R"(^git2(\.h$|/))"), {"git"}},
    {std::regex(R"(^curl/)"), {"net"}},
    {std::regex(R"(^pg_query\.h$)"), {"migrate"}},
    {std::regex(R"(^zlib\.h$)"), {"migrate"}},  // CRC-32 of Flyway checksums
    {std::regex(R"(^zstd\.h$)"), {"storage"}},  // backup archives
    {std::regex(R"(^cxxopts\.hpp$)"), {"commands", "cli"}},
    {std::regex(R"(^httplib\.h$)"), {"net"}},  // the webhook receiver's HTTP server
};

struct Include {
  fs::path file;
  int line;
  std::string header;
  bool quoted;
};

fs::path src_dir() {
  return fs::path(PREVIEWDB_SOURCE_DIR) / "src";
}

std::string layer_of(const fs::path& file) {
  auto rel = fs::relative(file, src_dir());
  auto first = rel.begin()->string();
  return first;
}

std::vector<Include> includes_under(const fs::path& dir) {
  static const std::regex include(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::vector<Include> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    auto ext = e.path().extension();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".hpp" && ext != ".h")) continue;
    std::ifstream in(e.path());
    std::string text;
    for (int n = 1; std::getline(in, text); ++n) {
      std::smatch m;
      if (std::regex_search(text, m, include)) out.push_back({e.path(), n, m[2], m[1] == "\""});
    }
  }
  return out;
}

// The violations of the table; empty when the graph is as documented.
std::vector<std::string> violations(const std::vector<Include>& includes) {
  std::vector<std::string> out;
  for (const auto& inc : includes) {
    std::string from = layer_of(inc.file);
    std::string where = fs::relative(inc.file, src_dir().parent_path()).string() + ":" +
                        std::to_string(inc.line) + " includes " + (inc.quoted ? "\"" : "<") +
                        inc.header + (inc.quoted ? "\"" : ">");
    auto allowed = k_allowed.find(from);
    if (allowed == k_allowed.end()) {
      out.push_back(where + ": src/" + from +
                    " is not in the layer table (add it to docs/ARCHITECTURE.md and this test)");
      continue;
    }
    if (inc.quoted) {
      auto slash = inc.header.find('/');
      if (slash == std::string::npos) {
        out.push_back(where + ": include project headers by their path under src/");
        continue;
      }
      std::string to = inc.header.substr(0, slash);
      if (to != from && !allowed->second.count(to)) {
        std::string may;
        for (const auto& a : allowed->second) may += (may.empty() ? "" : ", ") + a;
        out.push_back(where + ": " + from + " may include only " + (may.empty() ? "itself" : may) +
                      " (docs/ARCHITECTURE.md, Layers)");
      }
      continue;
    }
    for (const auto& [pattern, owners] : k_libraries) {
      if (std::regex_search(inc.header, pattern) && !owners.count(from)) {
        out.push_back(where + ": only " + *owners.begin() + " wraps this library");
      }
    }
  }
  return out;
}

}  // namespace

TEST(Layers, EveryIncludeUnderSrcFollowsTheLayers) {
  auto includes = includes_under(src_dir());
  ASSERT_GT(includes.size(), 100u) << "no sources found under " << src_dir();
  for (const auto& v : violations(includes)) ADD_FAILURE() << v;
}

TEST(Layers, TheCheckNamesTheOffendingFileAndInclude) {
  // The cycle this test was written for: core including snapshot, and util linking OpenSSL.
  auto v = violations({{src_dir() / "core/lifecycle.cpp", 10, "snapshot/store.hpp", true},
                       {src_dir() / "util/strings.cpp", 3, "openssl/rand.h", false},
                       {src_dir() / "db/connection.cpp", 1, "libpq-fe.h", false},
                       {src_dir() / "snapshot/snapshot.hpp", 9, "core/catalog.hpp", true}});
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0],
            "src/core/lifecycle.cpp:10 includes \"snapshot/store.hpp\": core may include only "
            "crypto, db, storage, util (docs/ARCHITECTURE.md, Layers)");
  EXPECT_EQ(v[1],
            "src/util/strings.cpp:3 includes <openssl/rand.h>: only crypto wraps this library");
}
