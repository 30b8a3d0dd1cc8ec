#include "support/daemon_process.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/http_client.h"

#ifndef SLUICED_PATH
#define SLUICED_PATH "sluiced"
#endif

namespace sluice::test {

std::string sluiced_path() { return SLUICED_PATH; }

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
}

std::string DaemonProcess::log() const {
  std::ifstream in(dir_ + "/sluiced.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void DaemonProcess::start(const std::string& config_json, const std::string& database_url, int admin_port,
                          int timeout_s, bool wait_for_ready, const std::map<std::string, std::string>& extra_env) {
  if (dir_.empty()) {
    char tmpl[] = "/tmp/sluiced-test-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  const std::string config_path = dir_ + "/config.json";
  std::ofstream(config_path) << config_json;
  const std::string log_path = dir_ + "/sluiced.log";
  const std::string binary = sluiced_path();

  pid_ = ::fork();
  if (pid_ == 0) {
    std::FILE* log = std::fopen(log_path.c_str(), "a");
    ::dup2(::fileno(log), 1);
    ::dup2(::fileno(log), 2);
    ::setenv("SLUICE_DATABASE_URL", database_url.c_str(), 1);
    for (const auto& [name, value] : extra_env) {
      ::setenv(name.c_str(), value == "{pid}" ? std::to_string(::getpid()).c_str() : value.c_str(), 1);
    }
    ::execl(binary.c_str(), binary.c_str(), "--config", config_path.c_str(), static_cast<char*>(nullptr));
    std::perror("exec sluiced");
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("sluiced exited during start-up:\n" + log());
    }
    if (http_get(admin_port, wait_for_ready ? "/readyz" : "/healthz").status == 200) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("sluiced not ready within " + std::to_string(timeout_s) + " s:\n" + log());
}

int DaemonProcess::stop(int sig, int timeout_s) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -2;  // did not stop in time
}

int run_sluiced(const std::string& args, std::string& output, const std::string& database_url) {
  std::string cmd;
  if (!database_url.empty()) cmd = "SLUICE_DATABASE_URL='" + database_url + "' ";
  cmd += "'" + sluiced_path() + "' " + args + " 2>&1";
  output.clear();
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace sluice::test
