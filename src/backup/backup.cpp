#include "backup/backup.hpp"

#include <algorithm>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/lifecycle.hpp"
#include "core/registry.hpp"
#include "core/scratch.hpp"
#include "crypto/sha256.hpp"
#include "db/advisory_lock.hpp"
#include "storage/encryption.hpp"
#include "storage/zstd.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/strings.hpp"
#include "util/subprocess.hpp"
#include "util/time.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace previewdb::backup {

namespace {

constexpr size_t k_chunk = 1 << 20;

std::string archive_object(const std::string& name) {
  return name + k_archive_suffix;
}
std::string manifest_object(const std::string& name) {
  return name + k_manifest_suffix;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::optional<PgTool> probe(const fs::path& path) {
  util::ProcessSpec spec;
  spec.argv = {path.string(), "--version"};
  spec.capture_stdout = true;
  spec.capture_stderr = true;
  try {
    auto r = util::run_process(spec);
    if (!r.ok()) return std::nullopt;
    auto major = parse_tool_major(r.out);
    if (!major) return std::nullopt;
    return PgTool{path, *major, util::trim(r.out)};
  } catch (const Error&) {
    return std::nullopt;
  }
}

std::string tool_failure(const util::ProcessResult& r) {
  std::string err = util::trim(r.err);
  if (err.size() > 2000) err = "..." + err.substr(err.size() - 2000);
  if (!err.empty()) return err;
  if (r.signal) return "killed by signal " + std::to_string(r.signal);
  return "exit code " + std::to_string(r.exit_code);
}

util::ProcessSpec pg_spec(const std::string& conninfo, const std::string& dbname,
                          std::vector<std::string> argv) {
  util::ProcessSpec spec;
  spec.argv = std::move(argv);
  spec.env = db::libpq_environment(conninfo, dbname);
  return spec;
}

// Reports progress at most every two seconds, starting after three.
class Ticker {
 public:
  explicit Ticker(const Progress& p) : m_progress(p) {}
  void tick(std::uint64_t raw, std::uint64_t compressed) {
    if (!m_progress) return;
    auto now = std::chrono::steady_clock::now();
    if (now - m_start < std::chrono::seconds(3) || now - m_last < std::chrono::seconds(2)) return;
    m_last = now;
    m_progress(raw, compressed);
  }

 private:
  const Progress& m_progress;
  std::chrono::steady_clock::time_point m_start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point m_last{};
};

}  // namespace

std::optional<int> parse_tool_major(const std::string& out) {
  // The version is the first token that starts with a digit: "pg_dump (PostgreSQL) 15.4 ...".
  for (const auto& word : util::split(out, ' ')) {
    if (word.empty() || !std::isdigit(static_cast<unsigned char>(word[0]))) continue;
    size_t i = 0;
    int major = 0;
    while (i < word.size() && std::isdigit(static_cast<unsigned char>(word[i])) && i < 4)
      major = major * 10 + (word[i++] - '0');
    return major > 0 ? std::optional(major) : std::nullopt;
  }
  return std::nullopt;
}

std::optional<PgTool> choose_tool(const std::vector<PgTool>& candidates, int needed) {
  for (const auto& c : candidates) {
    if (c.major >= needed) return c;
  }
  return std::nullopt;
}

PgTool find_tool(const std::string& name, int needed, const fs::path& lib_root) {
  std::vector<PgTool> candidates;
  if (auto on_path = util::find_program(name)) {
    if (auto t = probe(*on_path)) candidates.push_back(*t);
  }
  std::vector<std::pair<int, fs::path>> installed;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(lib_root, ec)) {
    auto major = util::parse_uint(e.path().filename().string());
    fs::path tool = e.path() / "bin" / name;
    if (major && fs::exists(tool, ec)) installed.emplace_back(static_cast<int>(*major), tool);
  }
  // The oldest sufficient one: closest to the server, as the server's own tools would be.
  std::sort(installed.begin(), installed.end());
  for (const auto& [major, tool] : installed) {
    if (major < needed) continue;
    if (auto t = probe(tool)) candidates.push_back(*t);
  }
  if (auto chosen = choose_tool(candidates, needed)) return *chosen;
  std::vector<std::string> found;
  for (const auto& c : candidates)
    found.push_back(c.path.string() + " (" + std::to_string(c.major) + ")");
  throw Error(ExitCode::refused,
              "no " + name + " of PostgreSQL " + std::to_string(needed) +
                  " or newer (found: " + (found.empty() ? "none" : util::join(found, ", ")) + ")",
              {"install postgresql-client-" + std::to_string(needed) + " (its tools go to " +
               (lib_root / std::to_string(needed) / "bin").string() + "); an older " + name +
               " cannot read a newer server's data safely"});
}

std::string backup_name(const std::string& database, const std::string& timestamp) {
  std::string base;
  for (char c : database) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    base += ok ? c : '_';
  }
  if (base.size() > 100)
    base = base.substr(0, 90) + "_" + crypto::sha256_hex(database).substr(0, 8);
  return "bak_" + base + "_" + timestamp;
}

bool valid_label(const std::string& label) {
  if (label.empty() || label.size() > 63 || label[0] == '.' || label[0] == '-') return false;
  return std::all_of(label.begin(), label.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string to_json(const Manifest& m) {
  json j = {{"format", k_manifest_format},
            {"name", m.name},
            {"archive", archive_object(m.name)},
            {"database", m.database},
            {"server_version", m.server_version},
            {"pg_dump_version", m.pg_dump_version},
            {"pg_dump_major", m.pg_dump_major},
            {"created_at", m.created_at},
            {"size_raw", m.size_raw},
            {"size_compressed", m.size_compressed},
            {"sha256", m.sha256},
            {"compression", "zstd"},
            {"level", m.level},
            {"duration_ms", m.duration_ms},
            {"label", m.label ? json(*m.label) : json(nullptr)},
            {"verified_at", m.verified_at ? json(*m.verified_at) : json(nullptr)}};
  j["encryption"] = m.encryption_key_id
                        ? json{{"cipher", "AES-256-GCM"}, {"key_id", *m.encryption_key_id}}
                        : json(nullptr);
  if (m.history_head) {
    j["history_head"] = {{"id", m.history_head->id},
                         {"name", m.history_head->name},
                         {"finished_at", m.history_head->finished_at}};
  } else {
    j["history_head"] = nullptr;
  }
  return j.dump(2) + "\n";
}

std::optional<Manifest> parse_manifest(const std::string& text) {
  auto j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", "") != k_manifest_format) return std::nullopt;
  try {
    Manifest m;
    m.name = j.at("name").get<std::string>();
    m.database = j.at("database").get<std::string>();
    m.server_version = j.value("server_version", "");
    m.pg_dump_version = j.value("pg_dump_version", "");
    m.pg_dump_major = j.value("pg_dump_major", 0);
    m.created_at = j.value("created_at", "");
    m.size_raw = j.at("size_raw").get<std::uint64_t>();
    m.size_compressed = j.at("size_compressed").get<std::uint64_t>();
    m.sha256 = j.at("sha256").get<std::string>();
    m.level = j.value("level", 0);
    m.duration_ms = j.value("duration_ms", 0LL);
    if (j.contains("label") && j["label"].is_string()) m.label = j["label"].get<std::string>();
    if (j.contains("verified_at") && j["verified_at"].is_string())
      m.verified_at = j["verified_at"].get<std::string>();
    if (j.contains("encryption") && !j["encryption"].is_null()) {
      // An encryption member that cannot be read must not pass for "not encrypted".
      m.encryption_key_id = j["encryption"].at("key_id").get<std::string>();
    }
    if (j.contains("history_head") && j["history_head"].is_object()) {
      const auto& h = j["history_head"];
      m.history_head =
          HistoryHead{h.value("id", ""), h.value("name", ""), h.value("finished_at", "")};
    }
    return m;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

Manifest read_manifest(storage::SnapshotStore& store, const std::string& name) {
  // s3:// checks the HMAC as it reads (Error(refused) when it fails).
  auto text = storage::read_object_text(store, manifest_object(name));
  if (!text) {
    throw Error(ExitCode::pending,
                "backup " + name + " in " + store.describe() +
                    " has no manifest (incomplete, or not previewdb's)",
                {"choose another with 'previewdb backup list --store " + store.describe() + "'"});
  }
  auto m = parse_manifest(*text);
  if (!m) {
    throw Error(ExitCode::refused,
                "manifest " + manifest_object(name) + " in " + store.describe() +
                    " is not a valid backup manifest: refusing to trust it",
                {"someone or something changed it; choose another backup with 'previewdb backup "
                 "list', or remove " +
                 name + " from the store"});
  }
  if (m->name != name) {
    throw Error(ExitCode::refused,
                "manifest " + manifest_object(name) + " in " + store.describe() +
                    " describes another backup (" + util::printable(m->name) +
                    "): refusing to trust it",
                {"someone or something copied or renamed it; choose another backup"});
  }
  return *m;
}

void check_key(const Manifest& m, const std::optional<storage::EncryptionKey>& key,
               const std::string& store) {
  if (!m.encryption_key_id) return;
  if (!key) {
    throw usage_error("backup " + m.name + " in " + store + " is encrypted (key " +
                          util::printable(*m.encryption_key_id) + ")",
                      "give its key in PREVIEWDB_ENCRYPTION_KEY or with --encryption-key-file");
  }
  if (key->id != *m.encryption_key_id) {
    throw Error(ExitCode::refused,
                "backup " + m.name + " in " + store + " was encrypted with the key " +
                    util::printable(*m.encryption_key_id) + ", not with the key given (" + key->id +
                    "): nothing was read",
                {"give the key it was written with (PREVIEWDB_ENCRYPTION_KEY or "
                 "--encryption-key-file)"});
  }
}

struct ArchiveDecoder::Impl {
  std::optional<storage::Decryptor> decryptor;
  storage::ZstdDecompressor zstd;
  std::string plain;
};

ArchiveDecoder::ArchiveDecoder(const Manifest& m, const std::optional<storage::EncryptionKey>& key,
                               const std::string& what)
    : m_impl(std::make_unique<Impl>()) {
  if (m.encryption_key_id) {
    check_key(m, key, what);
    m_impl->decryptor.emplace(*key, "backup " + what);
  }
}

ArchiveDecoder::~ArchiveDecoder() = default;

void ArchiveDecoder::update(std::string_view stored, std::string& out) {
  if (!m_impl->decryptor) {
    m_impl->zstd.update(stored, out);
    return;
  }
  m_impl->plain.clear();
  m_impl->decryptor->update(stored, m_impl->plain);
  m_impl->zstd.update(m_impl->plain, out);
}

void ArchiveDecoder::finish(std::string& out) {
  if (m_impl->decryptor) {
    m_impl->plain.clear();
    m_impl->decryptor->finish(m_impl->plain);
    m_impl->zstd.update(m_impl->plain, out);
  }
  if (!m_impl->zstd.complete()) {
    throw Error(ExitCode::failure,
                "the archive ends in the middle of its compressed stream "
                "(truncated)");
  }
}

Manifest create_backup(db::Connection& conn, storage::SnapshotStore& store,
                       const BackupRequest& req) {
  if (req.label && !valid_label(*req.label)) {
    throw usage_error("invalid backup name " + util::quoted(*req.label),
                      "use 1-63 letters, digits, '.', '_' or '-', e.g. --name before-refactor");
  }
  auto existing = list_backups(store);
  if (req.label) {
    for (const auto& b : existing) {
      if (b.manifest && b.manifest->label == req.label && b.manifest->database == req.database) {
        throw Error(ExitCode::already_exists,
                    "backup named " + util::quoted(*req.label) + " of " +
                        util::quoted(req.database) + " already exists (" + b.name + ")",
                    {"choose another --name, or delete " + b.name + " from " + store.describe()});
      }
    }
  }
  std::string name = backup_name(req.database, req.timestamp);
  std::set<std::string> taken;
  for (const auto& o : store.list_objects()) taken.insert(o.name);
  for (int n = 2; taken.count(archive_object(name)) || taken.count(manifest_object(name)); ++n)
    name = backup_name(req.database, req.timestamp) + "_" + std::to_string(n);

  int server_major = conn.server_version() / 10000;
  auto pg_dump = find_tool("pg_dump", server_major, req.lib_root);
  Manifest m;
  m.name = name;
  m.database = req.database;
  m.server_version = conn.exec("SHOW server_version").get(0, 0);
  m.pg_dump_version = pg_dump.version;
  m.pg_dump_major = pg_dump.major;
  m.created_at = req.created_at;
  m.level = req.level;
  m.label = req.label;
  m.history_head = current_history_head(conn);
  if (req.encryption_key) m.encryption_key_id = req.encryption_key->id;

  auto started = std::chrono::steady_clock::now();
  storage::ZstdCompressor zstd(req.level);
  // Encrypted after compression (ciphertext does not compress); the checksum and size in the
  // manifest are of the object as stored.
  std::optional<storage::Encryptor> encryptor;
  if (req.encryption_key) encryptor.emplace(*req.encryption_key);
  std::string sealed;
  auto stored = [&](std::string& data) -> const std::string& {
    if (!encryptor) return data;
    sealed.clear();
    encryptor->update(data, sealed);
    return sealed;
  };
  auto writer = store.create_object(archive_object(name));
  crypto::Sha256 sha;
  util::StreamingProcess dump(
      pg_spec(req.conninfo, req.database,
              {pg_dump.path.string(), "-Fc", "-Z0", "--no-password", req.database}),
      /*feed_stdin=*/false, /*read_stdout=*/true);
  std::string in(k_chunk, '\0');
  std::string out;
  Ticker ticker(req.progress);
  while (size_t n = dump.read(in.data(), in.size())) {
    std::string_view chunk(in.data(), n);
    m.size_raw += n;
    zstd.update(chunk, out);
    if (!out.empty()) {
      const std::string& bytes = stored(out);
      sha.update(bytes);
      writer->write(bytes);
      m.size_compressed += bytes.size();
      out.clear();
    }
    ticker.tick(m.size_raw, m.size_compressed);
  }
  const auto& result = dump.wait();
  if (!result.ok()) {
    // The writer is dropped uncommitted: no archive, no manifest.
    throw Error(ExitCode::failure, "cannot back up " + util::quoted(req.database) +
                                       ": pg_dump failed: " + tool_failure(result));
  }
  zstd.finish(out);
  if (encryptor) {
    sealed.clear();
    encryptor->update(out, sealed);
    encryptor->finish(sealed);
    out.swap(sealed);
  }
  sha.update(out);
  writer->write(out);
  m.size_compressed += out.size();
  writer->commit();
  m.sha256 = sha.hex_digest();
  m.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
  storage::write_object_text(store, manifest_object(name), to_json(m));
  return m;
}

void mark_verified(storage::SnapshotStore& store, Manifest m, const std::string& when) {
  m.verified_at = when;
  storage::write_object_text(store, manifest_object(m.name), to_json(m));
}

VerifyResult verify_backup(storage::SnapshotStore& store, const std::string& name,
                           const VerifyOptions& options) {
  VerifyResult v;
  // An incomplete backup is damage; a manifest not to be trusted, or a key that does not fit, is
  // refused before anything is read.
  try {
    v.manifest = read_manifest(store, name);
  } catch (const Error& e) {
    if (e.code() != ExitCode::pending) throw;
    v.problems.push_back("no manifest " + manifest_object(name) +
                         " (an incomplete or foreign backup)");
  }
  if (v.manifest) check_key(*v.manifest, options.encryption_key, store.describe());
  auto reader = store.open_object(archive_object(name));
  if (!reader) {
    v.problems.push_back("no archive " + archive_object(name));
    return v;
  }
  if (!v.manifest) return v;
  const Manifest& m = *v.manifest;

  auto pg_restore = find_tool("pg_restore", std::max(m.pg_dump_major, 1), options.lib_root);
  std::optional<core::ScratchDatabase> scratch;
  std::vector<std::string> argv = {pg_restore.path.string(), "--no-password"};
  std::string dbname;
  if (options.maintenance) {
    scratch.emplace(*options.maintenance, "previewdb backup verify");
    dbname = scratch->name();
    argv.insert(argv.end(), {"--no-owner", "--exit-on-error", "-d", dbname});
  } else {
    // Script output read to the end: every data block of the archive passes through pg_restore.
    if (options.toc_only) argv.push_back("--list");
    argv.insert(argv.end(), {"-f", "/dev/null"});
  }
  util::ProcessSpec spec;
  spec.argv = argv;
  if (options.maintenance) spec = pg_spec(options.conninfo, dbname, argv);
  util::StreamingProcess restore(spec, /*feed_stdin=*/true, /*read_stdout=*/false);

  ArchiveDecoder decoder(m, options.encryption_key, name + " in " + store.describe());
  crypto::Sha256 sha;
  std::uint64_t compressed = 0;
  std::string in(k_chunk, '\0');
  std::string out;
  bool feeding = true;
  bool corrupt = false;
  Ticker ticker(options.progress);
  auto damaged = [&](const Error& e) {
    v.problems.push_back(std::string(m.encryption_key_id ? "the archive does not decrypt and "
                                                           "decompress: "
                                                         : "the archive does not decompress: ") +
                         e.what());
    corrupt = true;
    restore.close_stdin();
  };
  while (size_t n = reader->read(in.data(), in.size())) {
    std::string_view chunk(in.data(), n);
    sha.update(chunk);
    compressed += n;
    if (corrupt) continue;
    try {
      decoder.update(chunk, out);
    } catch (const Error& e) {
      damaged(e);
      continue;
    }
    v.size_raw += out.size();
    if (feeding && !restore.write(out.data(), out.size())) feeding = false;
    out.clear();
    ticker.tick(v.size_raw, compressed);
  }
  if (!corrupt) {
    try {
      decoder.finish(out);
      v.size_raw += out.size();
      if (feeding && !restore.write(out.data(), out.size())) feeding = false;
    } catch (const Error& e) {
      v.problems.push_back(m.encryption_key_id
                               ? std::string("the archive is incomplete: ") + e.what()
                               : std::string(e.what()));
      corrupt = true;
    }
  }
  // A damaged stream must never look like a complete one to pg_restore.
  if (corrupt) ::kill(restore.pid(), SIGKILL);
  const auto& rr = restore.wait();
  std::string digest = sha.hex_digest();
  if (digest != m.sha256) {
    v.problems.push_back("SHA-256 " + digest + " differs from the manifest's " + m.sha256);
  }
  if (compressed != m.size_compressed) {
    v.problems.push_back("archive size " + std::to_string(compressed) +
                         " differs from the manifest's " + std::to_string(m.size_compressed));
  }
  if (!corrupt) {
    if (v.size_raw != m.size_raw) {
      v.problems.push_back("decompressed size " + std::to_string(v.size_raw) +
                           " differs from the manifest's " + std::to_string(m.size_raw));
    }
    if (!rr.ok()) {
      v.problems.push_back(std::string(options.maintenance ? "restore test failed: " : "") +
                           "pg_restore cannot read the archive: " + tool_failure(rr));
    }
  }
  if (v.problems.empty() && scratch && options.on_restored) options.on_restored(scratch->name());
  v.ok = v.problems.empty();
  return v;
}

std::vector<BackupInfo> list_backups(storage::SnapshotStore& store) {
  std::vector<BackupInfo> out;
  for (const auto& o : store.list_objects()) {
    if (!ends_with(o.name, k_archive_suffix)) continue;
    BackupInfo b;
    b.name = o.name.substr(0, o.name.size() - std::string(k_archive_suffix).size());
    b.size = o.size;
    b.modified = o.modified;
    try {
      b.manifest = read_manifest(store, b.name);
    } catch (const Error& e) {
      // One planted or damaged manifest must not hide the other backups.
      if (e.code() == ExitCode::refused)
        b.invalid = e.what();
      else if (e.code() != ExitCode::pending)
        throw;
    }
    out.push_back(std::move(b));
  }
  auto key = [](const BackupInfo& b) {
    return b.manifest ? b.manifest->created_at : util::to_iso8601(b.modified);
  };
  std::stable_sort(out.begin(), out.end(), [&](const BackupInfo& a, const BackupInfo& b) {
    auto ka = key(a), kb = key(b);
    return ka != kb ? ka < kb : a.name < b.name;
  });
  return out;
}

std::optional<std::string> resolve_backup(const std::vector<BackupInfo>& all,
                                          const std::string& wanted) {
  std::string w = wanted;
  if (ends_with(w, k_archive_suffix))
    w = w.substr(0, w.size() - std::string(k_archive_suffix).size());
  if (ends_with(w, k_manifest_suffix))
    w = w.substr(0, w.size() - std::string(k_manifest_suffix).size());
  for (const auto& b : all)
    if (b.name == w) return b.name;
  std::optional<std::string> newest;
  for (const auto& b : all)  // oldest first: the last match is the newest
    if (b.manifest && b.manifest->label == wanted) newest = b.name;
  return newest;
}

std::vector<std::string> plan_retention(const std::vector<BackupInfo>& all,
                                        const std::string& database, const RetentionPolicy& policy,
                                        std::chrono::system_clock::time_point now) {
  std::vector<const BackupInfo*> mine;  // oldest first
  for (const auto& b : all) {
    if (b.manifest && b.manifest->database == database && !b.manifest->label) mine.push_back(&b);
  }
  std::vector<std::string> drop;
  for (size_t i = 0; i < mine.size(); ++i) {
    size_t newer = mine.size() - 1 - i;  // how many of this database are newer
    if (newer == 0) break;               // the newest is always kept
    bool too_many = newer >= policy.keep;
    bool too_old = false;
    if (policy.keep_days) {
      auto created = util::parse_iso8601(mine[i]->manifest->created_at);
      too_old = created && now - *created > *policy.keep_days;
    }
    if (too_many || too_old) drop.push_back(mine[i]->name);
  }
  return drop;
}

std::vector<std::string> plan_prune(const std::vector<BackupInfo>& all,
                                    const std::optional<std::string>& database,
                                    const RetentionPolicy& policy,
                                    std::chrono::system_clock::time_point now) {
  std::set<std::string> databases;
  for (const auto& b : all)
    if (b.manifest && (!database || b.manifest->database == *database))
      databases.insert(b.manifest->database);
  std::vector<std::string> drop;
  for (const auto& db : databases) {
    auto mine = plan_retention(all, db, policy, now);
    drop.insert(drop.end(), mine.begin(), mine.end());
  }
  return drop;
}

std::vector<std::pair<std::string, std::size_t>> crowded_databases(
    const std::vector<BackupInfo>& all, std::size_t keep) {
  std::map<std::string, std::size_t> count;
  for (const auto& b : all)
    if (b.manifest) ++count[b.manifest->database];
  std::vector<std::pair<std::string, std::size_t>> out;
  for (const auto& [db, n] : count)
    if (n > std::max(k_backup_warn_count, keep)) out.emplace_back(db, n);
  return out;
}

void remove_backup(storage::SnapshotStore& store, const std::string& name) {
  store.remove_object(archive_object(name));
  store.remove_object(manifest_object(name));
}

std::optional<HistoryHead> current_history_head(db::Connection& conn) {
  auto exists = conn.exec("SELECT to_regclass('_previewdb.schema_migrations') IS NOT NULL");
  if (!exists.get_bool(0, 0)) return std::nullopt;
  auto r = conn.exec(
      "SELECT id, name, coalesce(to_char(finished_at AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') FROM _previewdb.schema_migrations "
      "WHERE status = 'applied' ORDER BY finished_at DESC NULLS LAST, id DESC LIMIT 1");
  if (r.rows() == 0) return std::nullopt;
  return HistoryHead{r.get(0, 0), r.get(0, 1), r.get(0, 2)};
}

}  // namespace previewdb::backup
