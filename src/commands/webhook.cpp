// previewdb webhook serve | verify: the PR-close webhook receiver. Requests are verified and
// answered at once; drops run afterwards, one at a time, in a worker thread, through the same
// core::drop_database as `cleanup --pr` (protection, ownership, repository).
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "commands/common.hpp"
#include "core/lifecycle.hpp"
#include "core/naming.hpp"
#include "net/github.hpp"
#include "net/http_server.hpp"
#include "util/files.hpp"
#include "util/log.hpp"
#include "util/redact.hpp"
#include "util/strings.hpp"
#include "webhook/webhook.hpp"

namespace previewdb::commands {

namespace {

const char* const k_secret_hint =
    "set PREVIEWDB_WEBHOOK_SECRET, or PREVIEWDB_WEBHOOK_SECRET_FILE to a file holding it (the "
    "secret configured on the GitHub webhook or the Netlify notification)";

// The shared secret: PREVIEWDB_WEBHOOK_SECRET or the file PREVIEWDB_WEBHOOK_SECRET_FILE names
// (or previewdb.json's webhook_secret_file). Never a flag (ps shows flags), never in
// previewdb.json itself (it is committed).
std::string webhook_secret(const config::Config& cfg) {
  auto direct = cfg.get("webhook_secret");
  auto file = cfg.find_path("webhook_secret_file");
  if (direct && direct->origin != "PREVIEWDB_WEBHOOK_SECRET") {
    throw usage_error("webhook_secret may not be written in " + direct->origin +
                          " (the file is committed with the repository)",
                      k_secret_hint);
  }
  if (direct && file) {
    throw usage_error(
        "both PREVIEWDB_WEBHOOK_SECRET and PREVIEWDB_WEBHOOK_SECRET_FILE are set; which one?",
        "unset one of them");
  }
  std::string secret;
  if (direct) {
    secret = direct->value;
  } else if (file) {
    secret = util::read_file(*file);
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
    if (secret.empty()) {
      throw usage_error("the webhook secret file " + util::quoted(file->string()) + " is empty",
                        k_secret_hint);
    }
  } else {
    throw usage_error("no webhook secret", k_secret_hint);
  }
  util::register_secret(secret);
  return secret;
}

std::string env_or_empty(const std::map<std::string, std::string>& env, const char* key) {
  auto it = env.find(key);
  return it == env.end() ? std::string() : it->second;
}

std::string reply(const std::string& status, const std::string& note = {}) {
  nlohmann::json j = {{"status", status}};
  if (!note.empty()) j["note"] = note;
  return j.dump() + "\n";
}

struct Job {
  std::string repository;
  long long pr = 0;
  bool check_state = false;  // ask GitHub first; drop only a closed pull request
  std::string source;        // "github delivery <id>" / "netlify deploy"
};

// What the worker needs to drop a preview: plain values resolved once at start.
struct DropSettings {
  Target target;
  std::chrono::milliseconds lock_timeout;
  core::Protection protection;
  std::string name_template;
  std::string token;
  std::string api_url;
};

void run_job(const Job& job, const DropSettings& s) {
  std::string name = core::preview_database_name(s.name_template, job.pr, job.repository,
                                                 "name_template (PREVIEWDB_NAME_TEMPLATE)");
  std::string what = name + " (" + util::printable(job.repository) + " #" + std::to_string(job.pr) +
                     ", " + job.source + ")";
  if (job.check_state) {
    net::GitHubOptions o;
    o.repository = job.repository;
    o.token = s.token;
    if (!s.api_url.empty()) o.api_url = s.api_url;
    auto state = net::GitHubClient(std::move(o)).pr_state(job.pr);
    if (state.open()) {
      util::log::info("kept " + what + ": pull request #" + std::to_string(job.pr) +
                      " is open on GitHub");
      return;
    }
  }
  auto conn = connect_maintenance(s.target, s.lock_timeout);
  // As `cleanup --pr`: a snapshot is never dropped by name here.
  auto not_snapshot = [](const core::DatabaseInfo& d) -> std::optional<std::string> {
    if (d.meta && d.meta->kind == core::Kind::snapshot) {
      return "a snapshot; use 'previewdb snapshot prune'";
    }
    return std::nullopt;
  };
  auto r = db::naming_lost_connection(
      "dropping database " + util::quoted(name),
      "run 'previewdb cleanup --pr " + std::to_string(job.pr) + "' when the server is back", [&] {
        return core::drop_database(conn, name, s.protection, false, job.repository, not_snapshot);
      });
  switch (r.outcome) {
    case core::DropOutcome::dropped:
      util::log::info("dropped " + what);
      break;
    case core::DropOutcome::absent:
      util::log::info("nothing to drop for " + what + ": no such database");
      break;
    default:
      util::log::warn("kept " + what + ": " + r.reason);
  }
}

// One drop at a time, in order. close() lets the current job finish and names what is left.
class DropQueue {
 public:
  explicit DropQueue(DropSettings settings)
      : m_settings(std::move(settings)), m_thread([this] { work(); }) {}
  ~DropQueue() { close(); }

  void push(Job job) {
    {
      std::lock_guard lock(m_mutex);
      m_jobs.push_back(std::move(job));
    }
    m_cv.notify_one();
  }

  void close() {
    {
      std::lock_guard lock(m_mutex);
      if (m_closed) return;
      m_closed = true;
    }
    m_cv.notify_one();
    if (m_thread.joinable()) m_thread.join();
    for (const auto& j : m_jobs) {
      util::log::warn("not dropped (the server stopped first): the preview of " +
                      util::printable(j.repository) + " #" + std::to_string(j.pr) +
                      "; run 'previewdb cleanup --pr " + std::to_string(j.pr) + " --repo " +
                      util::printable(j.repository) + " --yes'");
    }
  }

 private:
  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_closed || !m_jobs.empty(); });
        if (m_closed) return;
        job = std::move(m_jobs.front());
        m_jobs.pop_front();
      }
      try {
        run_job(job, m_settings);
      } catch (const Error& e) {
        util::log::warn("could not drop the preview of " + util::printable(job.repository) + " #" +
                        std::to_string(job.pr) + ": " + e.what());
      } catch (const std::exception& e) {
        util::log::warn("could not drop the preview of " + util::printable(job.repository) + " #" +
                        std::to_string(job.pr) + ": " + e.what());
      }
    }
  }

  DropSettings m_settings;
  std::mutex m_mutex;
  std::condition_variable m_cv;
  std::deque<Job> m_jobs;
  bool m_closed = false;
  std::thread m_thread;  // last: started once everything above exists
};

// "ADDR:PORT" (IPv6 as "[::1]:PORT"); port 0 picks a free one.
std::pair<std::string, int> parse_listen(const std::string& text) {
  auto fail = [&] {
    return usage_error("invalid --listen " + util::quoted(text),
                       "give ADDRESS:PORT, e.g. --listen 127.0.0.1:8080 or --listen 0.0.0.0:8080");
  };
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) throw fail();
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto port = util::parse_uint(text.substr(colon + 1));
  if (!port || *port > 65535) throw fail();
  return {host, static_cast<int>(*port)};
}

int webhook_serve(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Receive GitHub pull_request and Netlify deploy webhooks; drop a closed PR's preview.\n"
      "  previewdb webhook serve --listen ADDR:PORT\n"
      "The secret comes from PREVIEWDB_WEBHOOK_SECRET or PREVIEWDB_WEBHOOK_SECRET_FILE. With\n"
      "GITHUB_TOKEN, a preview is dropped only if GitHub says its pull request is closed (always\n"
      "asked for Netlify deploys, which do not say). SIGTERM/SIGINT: stop, finish the current "
      "drop.");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("listen", "address and port to listen on (port 0: a free one, printed on stdout)",
       cxxopts::value<std::string>(), "ADDR:PORT");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  if (!p.count("listen")) {
    throw usage_error("webhook serve needs --listen ADDR:PORT", "e.g. --listen 127.0.0.1:8080");
  }
  auto [host, port] = parse_listen(p["listen"].as<std::string>());
  auto cfg = load_config(p);
  std::string secret = webhook_secret(cfg);
  auto env = config::process_env();
  DropSettings settings{resolve_target(cfg),
                        lock_timeout_setting(cfg),
                        make_protection(cfg),
                        cfg.get("name_template").value_or(config::Value{}).value,
                        env_or_empty(env, "GITHUB_TOKEN"),
                        env_or_empty(env, "GITHUB_API_URL")};
  if (!settings.token.empty()) util::register_secret(settings.token);
  std::string default_repository = env_or_empty(env, "GITHUB_REPOSITORY");
  // The server is checked once at start: a wrong DATABASE_URL fails now, not at the first drop.
  connect_maintenance(settings.target, settings.lock_timeout);
  bool have_token = !settings.token.empty();

  // SIGTERM/SIGINT are taken by one thread (sigwait) rather than a handler: it may then call
  // stop(). Blocked before any thread starts, so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  webhook::DeliveryMemory deliveries;
  DropQueue queue(std::move(settings));

  auto handle = [&](const net::ServerRequest& r) -> net::ServerResponse {
    std::string gh_event = r.header("x-github-event");
    std::string netlify_sig = r.header("x-webhook-signature");
    if (!gh_event.empty() || !r.header("x-hub-signature-256").empty()) {
      if (!webhook::verify_github(secret, r.body, r.header("x-hub-signature-256"))) {
        util::log::warn("refused a GitHub delivery from " + util::printable(r.remote_addr) +
                        ": missing or wrong X-Hub-Signature-256");
        return {401, reply("unauthorized", "missing or wrong X-Hub-Signature-256")};
      }
      auto action = webhook::github_action(gh_event, r.body);
      if (!action) {
        util::log::warn("refused a GitHub " + util::printable(gh_event) +
                        " delivery: malformed payload");
        return {400, reply("bad request", "malformed " + gh_event + " payload")};
      }
      std::string delivery = r.header("x-github-delivery");
      std::string source = "github delivery " + util::printable(delivery);
      if (!delivery.empty() && deliveries.seen(delivery)) {
        util::log::info("ignored a replay of " + source);
        return {200, reply("ignored", "delivery " + delivery + " was already received")};
      }
      using K = webhook::Action::Kind;
      switch (action->kind) {
        case K::ping:
          util::log::info(source + ": ping");
          return {200, reply("pong")};
        case K::drop:
          util::log::info(source + ": pull request #" + std::to_string(action->pr) + " of " +
                          util::printable(action->repository) + " closed; drop queued");
          queue.push({action->repository, action->pr, have_token, source});
          return {202, reply("queued", "the preview of pull request #" +
                                           std::to_string(action->pr) + " will be dropped")};
        default:
          util::log::info(source + ": " + action->note);
          return {200, reply("ignored", action->note)};
      }
    }
    if (!netlify_sig.empty()) {
      if (!webhook::verify_netlify(secret, r.body, netlify_sig)) {
        util::log::warn("refused a Netlify notification from " + util::printable(r.remote_addr) +
                        ": wrong X-Webhook-Signature");
        return {401, reply("unauthorized", "wrong X-Webhook-Signature")};
      }
      auto action = webhook::netlify_action(r.body, default_repository);
      if (!action) {
        util::log::warn("refused a Netlify notification: malformed payload");
        return {400, reply("bad request", "malformed deploy payload")};
      }
      if (action->kind != webhook::Action::Kind::if_closed) {
        util::log::info("netlify deploy: " + action->note);
        return {200, reply("ignored", action->note)};
      }
      if (!have_token) {
        std::string note = "a deploy notification does not say whether pull request #" +
                           std::to_string(action->pr) +
                           " is closed, and without GITHUB_TOKEN it cannot be asked; nothing "
                           "dropped";
        util::log::info("netlify deploy: " + note);
        return {200, reply("ignored", note)};
      }
      util::log::info("netlify deploy of pull request #" + std::to_string(action->pr) + " of " +
                      util::printable(action->repository) + ": state check queued");
      queue.push({action->repository, action->pr, true, "netlify deploy"});
      return {202, reply("queued", "the preview is dropped if pull request #" +
                                       std::to_string(action->pr) + " is closed")};
    }
    util::log::warn("refused an unsigned request from " + util::printable(r.remote_addr));
    return {401, reply("unauthorized", "no X-Hub-Signature-256 or X-Webhook-Signature")};
  };
  auto access = [](const std::string& method, const std::string& path, int status,
                   const std::string& remote) {
    util::log::info(util::printable(method) + " " + util::printable(path) + " " +
                    std::to_string(status) + " from " + util::printable(remote));
  };
  net::HttpServer server(webhook::k_max_body, handle, access);
  int bound = server.bind(host, port);

  std::atomic<bool> signalled = false, served = false;
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    if (!signalled.exchange(true)) {
      util::log::info(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                      ": no new requests; finishing the current drop");
    }
    // A stop() that comes before the server runs is lost: repeat it until serve() returned.
    while (!served) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  std::cout << "listening on " << host << ":" << bound << std::endl;
  util::log::info("listening on " + host + ":" + std::to_string(bound));
  server.serve();
  served = true;
  if (!signalled.exchange(true)) pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  queue.close();
  return 0;
}

int webhook_verify(const Args& args) {
  cxxopts::Options options(
      args[0],
      "Check one webhook body (stdin) against its signature.\n"
      "  previewdb webhook verify --provider github|netlify --signature VALUE\n"
      "Exit 0: valid; 6: invalid. The secret as for 'webhook serve'.");
  add_common_options(options);
  // clang-format off
  options.add_options()
      ("provider", "github (X-Hub-Signature-256) or netlify (X-Webhook-Signature)",
       cxxopts::value<std::string>(), "NAME")
      ("signature", "the signature header's value", cxxopts::value<std::string>(), "VALUE");
  // clang-format on
  auto parsed = parse(options, args);
  if (!parsed) return 0;
  auto& p = *parsed;
  std::string provider = p.count("provider") ? p["provider"].as<std::string>() : "";
  if (provider != "github" && provider != "netlify") {
    throw usage_error("webhook verify needs --provider github or --provider netlify",
                      "e.g. previewdb webhook verify --provider github --signature sha256=...");
  }
  if (!p.count("signature")) {
    throw usage_error("webhook verify needs --signature VALUE",
                      "pass the X-Hub-Signature-256 (GitHub) or X-Webhook-Signature (Netlify) "
                      "header's value");
  }
  auto cfg = load_config(p);
  std::string secret = webhook_secret(cfg);
  std::string body;
  char buf[65536];
  while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    body.append(buf, static_cast<std::size_t>(std::cin.gcount()));
    if (body.size() > webhook::k_max_body) {
      throw usage_error("the body on stdin is over 25 MB, GitHub's payload cap",
                        "give the raw body of one delivery");
    }
  }
  std::string signature = p["signature"].as<std::string>();
  bool ok = provider == "github" ? webhook::verify_github(secret, body, signature)
                                 : webhook::verify_netlify(secret, body, signature);
  if (!ok) {
    throw Error(ExitCode::refused,
                "the " + provider + " signature does not match the body on stdin",
                {"check that the secret is the one configured on the webhook and that the body "
                 "is passed unchanged (raw bytes, not re-encoded JSON)"});
  }
  util::log::info("the " + provider + " signature is valid");
  return 0;
}

}  // namespace

int run_webhook(const Args& args) {
  if (args.size() < 2 || (args[1] != "serve" && args[1] != "verify")) {
    if (args.size() >= 2 && (args[1] == "-h" || args[1] == "--help")) {
      std::cout << "previewdb webhook serve --listen ADDR:PORT\n"
                   "previewdb webhook verify --provider github|netlify --signature VALUE\n"
                   "run 'previewdb webhook serve --help' for options\n";
      return 0;
    }
    throw usage_error("webhook needs 'serve' or 'verify'",
                      "previewdb webhook serve --listen 127.0.0.1:8080, or previewdb webhook "
                      "verify --provider github --signature sha256=... < body");
  }
  Args rest(std::next(args.begin(), 1), args.end());
  rest[0] = args[0] + " " + args[1];
  return args[1] == "serve" ? webhook_serve(rest) : webhook_verify(rest);
}

}  // namespace previewdb::commands
