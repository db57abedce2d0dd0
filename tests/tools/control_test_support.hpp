#pragma once

// For the control channel's suites: a fake control_handler (records what reached it,
// answers like a small tree, streams on demand), a raw socket client for the things
// control_client would never send, and the process's resident memory.

#include <pkit/tool/control_handler.hpp>
#include <pkit/unique_fd.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace control_test {

using json = nlohmann::json;
using pkit::tool::control_reply;

/// One program of the fake tree, as the status result shows it.
inline json program_entry(const std::string& name) {
  if (name == "db")
    return {{"name", "db"}, {"group", json::array()}, {"state", "stopped"}, {"pid", nullptr}, {"uptime_ms", nullptr},
            {"restarts", 0}, {"last_exit", {{"signal", 9}}}, {"reason", "stopped by ctl"}};
  return {{"name", name}, {"group", json::array()}, {"state", "running"}, {"pid", 1234}, {"uptime_ms", 192000},
          {"restarts", 2}, {"last_exit", {{"code", 3}}}, {"reason", nullptr}};
}

/// A stream whose items come from a thread of its own; destroying it stops and joins the
/// thread, so the sink is never called after the destructor (the handler's contract).
class thread_stream : public pkit::tool::control_stream {
public:
  explicit thread_stream(std::function<void(const std::atomic<bool>& stop)> body)
      : thread_([this, body = std::move(body)] { body(stop_); }) {}
  ~thread_stream() override {
    stop_ = true;
    thread_.join();
  }

private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class fake_handler : public pkit::tool::control_handler {
public:
  struct call {
    std::string command;
    json args;
  };

  /// How `events` behaves: a few items then the end; a flood until refused; idle.
  enum class stream_mode { few, flood, idle };
  std::atomic<stream_mode> events_mode{stream_mode::few};
  /// When set, answers instead of the built-in tree (may block: it runs on a worker).
  std::function<control_reply(const std::string&, const json&)> answer;
  std::atomic<bool> sink_refused{false};   ///< a sink returned false
  std::atomic<int> streams_open{0};

  control_reply handle(const std::string& command, const json& args) override {
    record(command, args);
    if (answer) return answer(command, args);
    if (command == "status") {
      json programs = json::array();
      const auto names = args.value("names", json::array({"web", "db"}));
      for (const auto& n : names) {
        if (n == "ghost") return control_reply::failure("unknown_program", "no program named \"ghost\"");
        programs.push_back(program_entry(n.get<std::string>()));
      }
      return control_reply::success({{"programs", programs}});
    }
    if (args.contains("names"))
      for (const auto& n : args["names"])
        if (n == "ghost") return control_reply::failure("unknown_program", "no program named \"ghost\"");
    if (command == "add") return control_reply::success({{"added", {"extra"}}});
    if (command == "reload")
      return control_reply::success({{"added", {"a"}}, {"removed", json::array()}, {"changed", {"b", "c"}}, {"unchanged", 4}});
    if (command == "shutdown") return control_reply::success({{"stopping", true}});
    return control_reply::success();
  }

  std::unique_ptr<pkit::tool::control_stream> open_stream(const std::string& command, const json& args, sink to,
                                                          control_reply& error) override {
    record(command, args);
    if (command == "tail" && args.value("name", "") == "ghost") {
      error = control_reply::failure("unknown_program", "no program named \"ghost\"");
      return nullptr;
    }
    // One item before open_stream returns: the server must still send the ok reply first.
    to(json{{"type", "hello"}, {"name", "early"}});
    const auto mode = command == "tail" ? stream_mode::few : events_mode.load();
    ++streams_open;
    return std::make_unique<thread_stream>([this, mode, command, to](const std::atomic<bool>& stop) {
      run_stream(mode, command, to, stop);
      --streams_open;
    });
  }

  std::size_t call_count() const {
    std::lock_guard lock(m_);
    return calls_.size();
  }
  call last_call() const {
    std::lock_guard lock(m_);
    return calls_.empty() ? call{} : calls_.back();
  }

private:
  void record(const std::string& command, const json& args) {
    std::lock_guard lock(m_);
    calls_.push_back({command, args});
  }

  void run_stream(stream_mode mode, const std::string& command, const sink& to, const std::atomic<bool>& stop) {
    if (mode == stream_mode::few) {
      for (int i = 0; i < 3; ++i) {
        const json item = command == "tail" ? json{{"stream", "stdout"}, {"line", "line " + std::to_string(i)}}
                                            : json{{"time", "2026-11-30T12:00:00.000Z"}, {"group", ""}, {"program", "web"},
                                                   {"event", "started"}, {"pid", 100 + i}, {"seq", i}, {"run", 1}};
        if (!to(item)) return;
      }
      to(nullptr);  // the end
    } else if (mode == stream_mode::flood) {
      const json item{{"type", "output"}, {"name", "web"}, {"pad", std::string(1000, 'x')}};
      while (!stop)
        if (!to(item)) {
          sink_refused = true;
          return;
        }
    } else {
      while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  mutable std::mutex m_;
  std::vector<call> calls_;
};

/// A plain blocking Unix-socket connection, for hand-made requests.
class raw_client {
public:
  explicit raw_client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("connect " + path + ": " + std::strerror(errno));
  }

  /// Sends everything; false when the server closed (EPIPE/ECONNRESET).
  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  /// The next line, or "" at EOF / after `timeout`.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (auto pos = in_.find('\n'); pos != std::string::npos) {
        std::string line = in_.substr(0, pos);
        in_.erase(0, pos + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[65536];
      const auto n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) return "";
      in_.append(buf, static_cast<std::size_t>(n));
    }
  }

  json read_json(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto line = read_line(timeout);
    return line.empty() ? json() : json::parse(line);
  }

  /// True when the server closed the connection within `timeout` (all buffered lines read).
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[65536];
      const auto n = ::recv(fd_.get(), buf, sizeof buf, 0);
      if (n <= 0) return true;
    }
    return false;
  }

  int fd() const { return fd_.get(); }
  /// Closes the connection both ways (a client that went away).
  void close() { fd_.reset(); }

private:
  pkit::unique_fd fd_;
  std::string in_;
};

/// VmRSS of this process, in KiB.
inline long rss_kib() {
  std::ifstream f("/proc/self/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace control_test
