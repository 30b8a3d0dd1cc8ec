// daemon/main.cpp — the command line of sluiced.
//
//   sluiced [run] --config FILE          run the daemon (default command)
//   sluiced check-config --config FILE   validate the config, list every problem, exit 0/2
//   sluiced migrate --config FILE        apply pending sql/ migrations once each
//   sluiced policy plan --config FILE    show what differs from the timeseries blocks, and the SQL
//   sluiced policy apply --config FILE   make the database match them (lib/policy)
//   sluiced hash-token < token           print the SHA-256 for auth.tokens[].sha256
//   sluiced --help | --version
//
// Exit codes: 0 success / clean shutdown; 1 runtime failure (database, bind, catalog);
// 2 invalid command line or config.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include <termios.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "config/config.h"
#include "daemon/daemon.h"
#include "ingest/http/auth.h"
#include "daemon/logging.h"
#include "pg/connection.h"
#include "pg/migrate.h"
#include "policy/introspect.h"
#include "policy/reconcile.h"

namespace {

const char* kUsage =
    "usage: sluiced [COMMAND] --config FILE\n"
    "\n"
    "commands:\n"
    "  run            run the daemon (the default)\n"
    "  check-config   validate FILE and list every problem found; nothing is started\n"
    "  migrate        apply the pending migrations of database.migrations_dir, once each\n"
    "  policy plan    show, per table, what differs from its timeseries block and the SQL that\n"
    "                 would fix it; changes nothing\n"
    "  policy apply   apply that SQL (destructive steps only with allow_destructive)\n"
    "  hash-token     read a token from stdin (first line) and print its SHA-256 for\n"
    "                 auth.tokens[].sha256; needs no --config\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   configuration file (JSON; comments allowed)\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "environment:\n"
    "  SLUICE_DATABASE_URL        the database URL (overrides every other source)\n"
    "  SLUICE_DATABASE_URL_FILE   a file holding it (then $CREDENTIALS_DIRECTORY/database-url,\n"
    "                             database.url_file, database.url); never on the command line\n"
    "\n"
    "exit codes: 0 ok, 1 runtime failure, 2 bad command line or config\n";

int check_config(const sluice::Config& c) {
  std::printf("%s: ok — %zu table(s), http %s, %zu udp listener(s), admin %s\n", c.source.c_str(),
              c.tables.size(), c.http.enabled ? c.http.listen.c_str() : "off", c.udp.size(),
              c.admin.enabled ? c.admin.listen.c_str() : "off");
  std::printf("database URL from %s: %s\n", c.database.url_source.c_str(), sluice::pg::redact_url(c.database.url).c_str());
  return 0;
}

int migrate(const sluice::Config& c) {
  sluice::pg::Connection conn(c.database.url, "sluiced migrate");
  const auto report = sluice::pg::migrate(conn, c.database.migrations_dir);
  for (const auto& a : report.applied) std::printf("applied  %s\n", a.c_str());
  std::printf("%zu migration(s) applied, %zu already applied\n", report.applied.size(), report.skipped.size());
  return 0;
}

// `policy plan` / `policy apply`: exit 0 when everything planned was applied (or nothing differs),
// 1 when a step failed or another sluiced holds the policy lock.
int policy_command(const sluice::Config& c, bool apply) {
  spdlog::set_level(spdlog::level::warn);
  const auto desired = sluice::policy::desired_from_config(c);
  if (desired.empty()) {
    std::printf("%s: no table has a timeseries block: nothing to manage\n", c.source.c_str());
    return 0;
  }
  sluice::pg::Connection conn(c.database.url, apply ? "sluiced policy apply" : "sluiced policy plan");
  sluice::policy::prepare_session(conn);
  const int64_t now = sluice::policy::now_pg_micros();
  if (!apply) {
    std::fputs(sluice::policy::plan_database(conn, desired, now).plan.format().c_str(), stdout);
    return 0;
  }
  const auto r = sluice::policy::reconcile_database(conn, desired, now);
  std::printf("mode: %s — %s\n", sluice::policy::mode_name(r.before.plan.mode.mode), r.before.plan.mode.summary.c_str());
  std::fputs(r.report.format().c_str(), stdout);
  for (const auto& t : r.after.plan.tables) {
    for (const auto& s : t.steps) {
      if (s.skipped) std::printf("skipped  %s: %s — %s\n", t.table.c_str(), s.description.c_str(), s.skip_reason.c_str());
    }
  }
  return (r.report.failed > 0 || r.report.lock_busy) ? 1 : 0;
}

// Reads one line (the token) from stdin — never from argv, so it stays out of ps and shell history;
// on a terminal without echo.
int hash_token() {
  termios saved{};
  const bool tty = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (tty) {
    std::fputs("token: ", stderr);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string token;
  std::getline(std::cin, token);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::fputs("\n", stderr);
  }
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty()) {
    std::fprintf(stderr, "sluiced: hash-token: no token on stdin (usage: sluiced hash-token < token-file)\n");
    return 2;
  }
  if (token.find_first_of(" \t") != std::string::npos) {
    std::fprintf(stderr, "sluiced: hash-token: the token contains blanks; HTTP clients cannot send it as a Bearer token\n");
    return 2;
  }
  std::printf("%s\n", sluice::sha256_hex(token).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = "run";
  std::string config_path;
  if (argc == 2 && std::strcmp(argv[1], "hash-token") == 0) return hash_token();
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "-V" || a == "--version") {
      std::printf("sluiced %s\n", SLUICE_VERSION);
      return 0;
    }
    if (a == "-c" || a == "--config") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluiced: %s needs a file name\n%s", a.c_str(), kUsage);
        return 2;
      }
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (i == 1 && (a == "run" || a == "check-config" || a == "migrate")) {
      command = a;
    } else if (i == 1 && a == "policy") {
      const std::string sub = i + 1 < argc ? argv[i + 1] : "";
      if (sub != "plan" && sub != "apply") {
        std::fprintf(stderr, "sluiced: policy needs plan or apply\n%s", kUsage);
        return 2;
      }
      command = "policy " + sub;
      ++i;
    } else {
      std::fprintf(stderr, "sluiced: unknown argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "sluiced: --config FILE is required\n%s", kUsage);
    return 2;
  }

  sluice::Config config;
  try {
    config = sluice::load_config(config_path);
  } catch (const sluice::ConfigError& e) {
    std::fprintf(stderr, "sluiced: %s\n", e.what());
    return 2;
  }
  if (command == "check-config") return check_config(config);

  sluice::init_logging(config.log.level);
  struct LoggingShutdown {
    ~LoggingShutdown() { sluice::shutdown_logging(); }
  } logging_shutdown;
  try {
    if (command == "migrate") return migrate(config);
    if (command == "policy plan" || command == "policy apply") return policy_command(config, command == "policy apply");
    return sluice::run_daemon(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluiced: %s\n", e.what());
    return 1;
  }
}
