#include "storage/store.hpp"

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>

#include "db/connection.hpp"
#include "util/error.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"

namespace fs = std::filesystem;

namespace previewdb::storage {

namespace {

class FileStore : public SnapshotStore {
 public:
  explicit FileStore(fs::path dir) : m_dir(std::move(dir)) {}

  void put(const std::string& id, const fs::path& archive, const std::string& meta) override {
    std::error_code ec;
    fs::create_directories(m_dir, ec);
    if (ec) {
      throw Error(ExitCode::failure,
                  "cannot create snapshot store " + describe() + ": " + ec.message());
    }
    fs::path target = m_dir / (id + ".dump");
    fs::path partial = target.string() + ".partial";
    // The metadata first, the archive last (list() shows .dump files): a reader never sees an
    // archive without its metadata, nor a half-written one.
    try {
      util::write_file_atomic(m_dir / (id + ".json"), meta + "\n");
    } catch (const Error& e) {
      throw Error(ExitCode::failure,
                  "cannot write the snapshot store " + describe() + ": " + e.what());
    }
    fs::copy_file(archive, partial, fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(partial, target, ec);
    if (ec) {
      std::error_code ignored;
      fs::remove(partial, ignored);
      fs::remove(m_dir / (id + ".json"), ignored);
      throw Error(ExitCode::failure,
                  "cannot write " + util::quoted(target.string()) + ": " + ec.message());
    }
  }

  void remove(const std::string& id) override {
    std::error_code ec;
    fs::remove(m_dir / (id + ".dump"), ec);
    fs::remove(m_dir / (id + ".dump.partial"), ec);
    fs::remove(m_dir / (id + ".json"), ec);
  }

  fs::path fetch(const std::string& id, const fs::path&) override {
    std::string wanted = id;
    if (id == "latest") {
      auto all = list();
      if (all.empty()) {
        throw Error(ExitCode::not_found, "no snapshot archive found in " + describe(),
                    {"create one with 'previewdb snapshot --to " + describe() + "'"});
      }
      wanted = all.back();
    }
    fs::path p = m_dir / (wanted + ".dump");
    if (!fs::exists(p)) {
      throw Error(ExitCode::not_found, "no snapshot archive " + util::quoted(p.string()),
                  {"list the store with 'ls " + m_dir.string() + "'"});
    }
    return p;
  }

  std::vector<std::string> list() override {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(m_dir, ec)) {
      if (e.path().extension() == ".dump") ids.push_back(e.path().stem().string());
    }
    // Snapshot ids end in a UTC timestamp, so name order is time order within a source.
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  std::optional<std::string> latest_of(const std::string& source) override {
    std::optional<std::string> best;
    std::string best_time;
    for (const auto& id : list()) {
      auto text = util::read_file_if_exists(m_dir / (id + ".json"), 1 << 20);
      if (!text) continue;
      auto meta = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (!meta.is_object() || meta.value("source", "") != source) continue;
      std::string created = meta.value("created_at", "");
      // ISO 8601 UTC times sort as strings; equal times fall back to the id's order.
      if (!best || created >= best_time) {
        best = id;
        best_time = created;
      }
    }
    return best;
  }

  std::string describe() const override { return "file://" + m_dir.string(); }

 private:
  fs::path m_dir;
};

struct Scheme {
  const char* prefix;
  std::function<std::unique_ptr<SnapshotStore>(const std::string& rest)> open;
};

fs::path file_store_dir(const std::string& rest) {
  fs::path p = rest;
  if (p.extension() == ".dump") p = p.parent_path();
  return p.empty() ? fs::path(".") : p;
}

const std::vector<Scheme>& schemes() {
  static const std::vector<Scheme> table = {
      {"file://",
       [](const std::string& rest) -> std::unique_ptr<SnapshotStore> {
         return std::make_unique<FileStore>(file_store_dir(rest));
       }},
      {"s3://",
       [](const std::string&) -> std::unique_ptr<SnapshotStore> {
         throw Error(ExitCode::usage, "s3:// snapshot stores are not supported yet",
                     {"use --to file://DIR for now"});
       }},
  };
  return table;
}

void check(const util::ProcessResult& r, const std::string& what) {
  if (r.ok()) return;
  std::string err = util::trim(r.err);
  if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
  throw Error(
      ExitCode::failure,
      "cannot " + what + ": " + (err.empty() ? "exit code " + std::to_string(r.exit_code) : err));
}

util::ProcessSpec pg_tool(const std::string& conninfo, const std::string& dbname,
                          std::vector<std::string> argv) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = db::libpq_environment(conninfo, dbname);
  spec.capture_stderr = true;
  return spec;
}

}  // namespace

std::unique_ptr<SnapshotStore> open_store(const std::string& url) {
  for (const auto& s : schemes()) {
    std::string prefix = s.prefix;
    if (url.rfind(prefix, 0) == 0) {
      std::string rest = url.substr(prefix.size());
      if (rest.empty())
        throw usage_error("snapshot store URL " + util::quoted(url) + " has no path",
                          "use file:///absolute/dir or file://relative/dir");
      return s.open(rest);
    }
  }
  throw usage_error("unknown snapshot store " + util::quoted(url),
                    "use file://DIR (a directory for pg_dump archives)");
}

std::string store_object_id(const std::string& url) {
  fs::path p = url.substr(url.find("://") + 3);
  return p.extension() == ".dump" ? p.stem().string() : "latest";
}

void dump_archive(const std::string& conninfo, const std::string& dbname, const fs::path& path) {
  check(util::run_process(
            pg_tool(conninfo, dbname, {"pg_dump", "-Fc", "--no-password", "-f", path.string()})),
        "dump database " + util::quoted(dbname) + " with pg_dump");
}

void restore_archive(const std::string& conninfo, const std::string& dbname,
                     const fs::path& archive) {
  check(util::run_process(pg_tool(conninfo, dbname,
                                  {"pg_restore", "--no-password", "--no-owner", "-j", "2", "-d",
                                   dbname, archive.string()})),
        "restore " + util::quoted(archive.string()) + " into " + util::quoted(dbname));
}

void copy_online(const std::string& conninfo, const std::string& source,
                 const std::string& target) {
  auto [dump, restore] =
      util::run_pipeline(pg_tool(conninfo, source, {"pg_dump", "-Fc", "--no-password"}),
                         pg_tool(conninfo, target, {"pg_restore", "--no-password", "-d", target}));
  check(dump, "dump " + util::quoted(source) + " with pg_dump");
  check(restore, "restore the copy of " + util::quoted(source) + " with pg_restore");
}

}  // namespace previewdb::storage
