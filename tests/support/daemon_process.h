// tests/support/daemon_process.h — runs build/sluiced as a child process for end-to-end tests.
//
// start(): writes the config to a temporary file, spawns sluiced with SLUICE_DATABASE_URL set, its
// stdout/stderr going to a log file, and waits until /readyz answers 200 on the admin port.
// stop(sig): sends the signal and waits for the exit status.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

namespace sluice::test {

class DaemonProcess {
 public:
  DaemonProcess() = default;
  ~DaemonProcess();

  // config_json: the whole config text. Throws std::runtime_error (with the log tail) when the
  // daemon exits or is not ready within timeout_s.
  // With wait_for_ready=false it waits only for /healthz (the database may still be unreachable).
  // extra_env: more environment variables for the child (e.g. NOTIFY_SOCKET); the value "{pid}"
  // stands for the child's own pid (WATCHDOG_PID).
  void start(const std::string& config_json, const std::string& database_url, int admin_port, int timeout_s = 30,
             bool wait_for_ready = true, const std::map<std::string, std::string>& extra_env = {});
  // Sends `sig` and waits up to timeout_s; returns the exit code (128+signal when killed by one).
  int stop(int sig = 15, int timeout_s = 60);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  // The config file the daemon was started with (rewrite it, then SIGHUP, to test a reload).
  std::string config_path() const { return dir_ + "/config.json"; }

 private:
  pid_t pid_ = -1;
  std::string dir_;
};

// Path of the built sluiced binary (set by CMake).
std::string sluiced_path();
// Runs sluiced with arguments (e.g. "check-config --config F"); returns exit code, output in `output`.
int run_sluiced(const std::string& args, std::string& output, const std::string& database_url = "");

}  // namespace sluice::test
