#include <pkit/tool/ctl_command.hpp>

#include <pkit/tool/control_client.hpp>
#include <pkit/tool/control_protocol.hpp>
#include <pkit/tool/ctl_format.hpp>
#ifdef PKIT_HAVE_NODE
#include <pkit/net/listen_policy.hpp>
#include <pkit/tool/remote_control_client.hpp>
#endif

#include "config_reader.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace pkit::tool {

namespace {

using json = nlohmann::json;

json names_json(const std::vector<std::string>& names) { return json(names); }

/// "a/b" → ["a","b"]; empty parts dropped ("/a/" is "a").
json group_path(const std::string& text) {
  json parts = json::array();
  std::stringstream ss(text);
  for (std::string part; std::getline(ss, part, '/');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

const CLI::Validator signal_validator(
    [](std::string& value) { return parse_signal(std::string_view(value)) ? std::string() : "unknown signal \"" + value + "\""; },
    "SIGNAL", "signal");

// Whether `text` is UTF-8, as every string of a JSON request must be (nlohmann's strict
// encoder is the judge: it is what would throw).
bool valid_utf8(const std::string& text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}

// Names and paths go into the JSON request: one that is not UTF-8 is a usage error naming
// it, not the encoder's exception after the parse.
const CLI::Validator utf8_validator(
    [](std::string& value) { return valid_utf8(value) ? std::string() : "not valid UTF-8: \"" + printable(value) + "\""; },
    "TEXT", "utf8");

}  // namespace

/// Where requests go: the control socket, or a pkit run's remote control (--host).
struct ctl_command::transport {
  virtual ~transport() = default;
  virtual control_reply request(const std::string& command, const json& args, std::chrono::milliseconds timeout) = 0;
  virtual bool wait_closed(std::chrono::milliseconds timeout) = 0;
  virtual control_reply stream(const std::string& command, const json& args,
                               const std::function<bool(const json&)>& on_item, std::chrono::milliseconds timeout) = 0;
};

namespace {

struct socket_transport final : ctl_command::transport {
  control_client client;
  explicit socket_transport(const std::filesystem::path& path) : client(path) {}
  control_reply request(const std::string& command, const json& args, std::chrono::milliseconds timeout) override {
    return client.request(command, args, timeout);
  }
  bool wait_closed(std::chrono::milliseconds timeout) override { return client.wait_closed(timeout); }
  control_reply stream(const std::string& command, const json& args, const std::function<bool(const json&)>& on_item,
                       std::chrono::milliseconds timeout) override {
    return client.stream(command, args, on_item, timeout);
  }
};

#ifdef PKIT_HAVE_NODE
struct host_transport final : ctl_command::transport {
  remote_control_client client;
  host_transport(const std::string& host, std::uint16_t port, const std::optional<net::tls_files>& tls,
                 std::chrono::milliseconds timeout)
      : client(host, port, tls, timeout) {}
  control_reply request(const std::string& command, const json& args, std::chrono::milliseconds timeout) override {
    return client.request(command, args, timeout);
  }
  bool wait_closed(std::chrono::milliseconds timeout) override { return client.wait_closed(timeout); }
  control_reply stream(const std::string& command, const json& args, const std::function<bool(const json&)>& on_item,
                       std::chrono::milliseconds timeout) override {
    return client.stream(command, args, on_item, timeout);
  }
};
#endif

}  // namespace

ctl_command::~ctl_command() = default;

std::string ctl_command::check_host_options() const {
  const bool any_tls = !opt_.tls_cert.empty() || !opt_.tls_key.empty() || !opt_.tls_ca.empty();
  if (opt_.host.empty())
    return any_tls ? "--tls-cert, --tls-key and --tls-ca go with --host" : "";
#ifndef PKIT_HAVE_NODE
  return "--host: this pkit was built without its network module (CAF's OpenSSL)";
#else
  if (!opt_.socket.empty()) return "give either --socket or --host, not both";
  if (any_tls && (opt_.tls_cert.empty() || opt_.tls_key.empty() || opt_.tls_ca.empty()))
    return "--host over TLS needs all of --tls-cert, --tls-key and --tls-ca";
  std::string host;
  std::uint16_t port = 0;
  if (auto why = detail::parse_host_port(opt_.host, host, port, false); !why.empty()) return "--host: " + why;
  // pkit run serves remote control over mutual TLS only (its control_listen requires
  // control_tls, on loopback too): a plain attempt could only fail at the handshake.
  if (!any_tls)
    return "--host " + opt_.host + ": remote control needs mutual TLS, on loopback too (--tls-cert, --tls-key, "
           "--tls-ca); on this machine, use the control socket";
  return "";
#endif
}

ctl_command::transport& ctl_command::link() {
  if (link_) return *link_;
#ifdef PKIT_HAVE_NODE
  if (!opt_.host.empty()) {
    std::string host;
    std::uint16_t port = 0;
    detail::parse_host_port(opt_.host, host, port, false);  // checked by check_host_options
    std::optional<net::tls_files> tls;
    if (!opt_.tls_cert.empty()) tls = net::tls_files{opt_.tls_cert, opt_.tls_key, opt_.tls_ca, {}, {}};
    link_ = std::make_unique<host_transport>(host, port, tls, std::chrono::milliseconds(opt_.timeout_ms));
    return *link_;
  }
#endif
  link_ = std::make_unique<socket_transport>(opt_.socket_path());
  return *link_;
}

control_reply ctl_command::call(const std::string& command, const json& args) {
  return link().request(command, args, std::chrono::milliseconds(opt_.timeout_ms));
}

std::filesystem::path ctl_options::socket_path() const {
  return socket.empty() ? default_control_socket(name) : std::filesystem::path(socket);
}

ctl_command::ctl_command(CLI::App& app, std::ostream& out, std::ostream& err) : app_(app), out_(out), err_(err) {
  // Global options may also follow the subcommand ("pkit ctl status --socket S").
  app_.fallthrough();
  app_.require_subcommand(1);
  app_.add_option("--socket", opt_.socket, "control socket of the pkit run (default: from --name)");
  app_.add_option("--name", opt_.name, "name of the tree, for the default socket")->capture_default_str();
  app_.add_option("--timeout", opt_.timeout_ms, "wait at most this many milliseconds for a reply")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app_.add_option("--host", opt_.host, "HOST:PORT of a pkit run's control_listen (instead of the socket)");
  app_.add_option("--tls-cert", opt_.tls_cert, "with --host: our certificate (signed by the CA pkit run's control_tls trusts)");
  app_.add_option("--tls-key", opt_.tls_key, "with --host: the key of --tls-cert");
  app_.add_option("--tls-ca", opt_.tls_ca, "with --host: the CA that signed pkit run's control certificate");

  auto* status = app_.add_subcommand("status", "show programs: state, pid, uptime, restarts, last exit");
  status->add_option("names", opt_.names, "programs to show (default: all)")->check(utf8_validator);
  status->add_flag("--json", opt_.json, "print the daemon's JSON result");
  for (const auto& [cmd, what] : std::vector<std::pair<std::string, std::string>>{
           {"start", "start stopped programs"}, {"stop", "stop programs (they stay stopped)"},
           {"restart", "stop and start programs"}, {"remove", "stop programs and remove them from the tree"}})
    app_.add_subcommand(cmd, what)->add_option("names", opt_.names, "program names")->required()->check(utf8_validator);
  auto* signal = app_.add_subcommand("signal", "send a signal to programs");
  signal->add_option("signal", opt_.signal, "signal name or number (HUP, SIGHUP, 1)")->required()->check(signal_validator);
  signal->add_option("names", opt_.names, "program names")->required()->check(utf8_validator);
  auto* add = app_.add_subcommand("add", "add the programs/groups of a TOML snippet to the running tree");
  add->add_option("file", opt_.file, "TOML file with [[program]]/[[group]] tables (- : standard input)")->required();
  add->add_option("--group", opt_.group, "group to add to, as a path a/b (default: the root)")->check(utf8_validator);
  app_.add_subcommand("reload", "re-read the tree file and apply the difference");
  auto* tail = app_.add_subcommand("tail", "follow a program's log");
  tail->add_option("name", opt_.names, "program name")->required()->expected(1)->check(utf8_validator);
  tail->add_option("--stream", opt_.stream, "which output")->check(CLI::IsMember({"stdout", "stderr", "both"}))->capture_default_str();
  tail->add_option("-n,--lines", opt_.lines, "lines of history to show first")->check(CLI::NonNegativeNumber)->capture_default_str();
  auto* events = app_.add_subcommand("events", "follow the event stream");
  events->add_option("names", opt_.names, "only these programs (default: all)")->check(utf8_validator);
  events->add_flag("--json", opt_.json, "one JSON object per line");
  auto* shutdown = app_.add_subcommand("shutdown", "stop every program and end pkit run");
  shutdown->add_flag("--wait", opt_.wait, "return only when pkit run has ended");
}

int ctl_command::run() {
  const auto chosen = app_.get_subcommands();
  if (chosen.empty()) {
    err_ << "pkit ctl: a subcommand is required (see --help)\n";
    return ctl_exit::usage;
  }
  if (auto why = check_host_options(); !why.empty()) {
    err_ << "pkit ctl: " << why << "\n";
    return ctl_exit::usage;
  }
  try {
    return dispatch(chosen.front()->get_name());
  } catch (const control_client_error& e) {
    err_ << "pkit ctl: " << printable(e.what(), true) << "\n";
    return e.what_kind() == control_client_error::kind::no_server ? ctl_exit::unavailable : ctl_exit::failed;
  } catch (const std::exception& e) {
    err_ << "pkit ctl: " << printable(e.what(), true) << "\n";
    return ctl_exit::failed;
  }
}

int ctl_command::dispatch(const std::string& command) {
  if (command == "status") return run_status();
  if (command == "signal") return run_signal();
  if (command == "add") return run_add();
  if (command == "reload") return run_reload();
  if (command == "tail") return run_tail();
  if (command == "events") return run_events();
  if (command == "shutdown") return run_shutdown();
  return run_simple(command);
}

int ctl_command::fail_with(const control_reply& reply) {
  err_ << "pkit ctl: " << printable(reply.message, true) << "\n";
  return reply.code == "unknown_program" ? ctl_exit::unknown_program : ctl_exit::failed;
}

int ctl_command::run_status() {
  json args = json::object();
  if (!opt_.names.empty()) args["names"] = names_json(opt_.names);
  const auto reply = call("status", args);
  if (!reply.ok) return fail_with(reply);
  if (opt_.json)
    // ASCII only (\uXXXX escapes): no byte of a name or reason can act on a terminal.
    out_ << reply.result.dump(2, ' ', true, json::error_handler_t::replace) << "\n";
  else
    out_ << format_status_table(reply.result);
  if (opt_.names.empty()) return ctl_exit::success;
  // LSB: 3 when a program asked about is not running (has no process).
  const auto programs = reply.result.value("programs", json::array());
  const bool all_running = std::all_of(programs.begin(), programs.end(), [](const json& p) {
    // The daemon sends pid 0 (or null) for a program without a process.
    return p.is_object() && p.contains("pid") && p["pid"].is_number_integer() && p["pid"].get<std::int64_t>() > 0;
  });
  return all_running ? ctl_exit::success : ctl_exit::not_running;
}

int ctl_command::run_simple(const std::string& command) {
  const auto reply = call(command, {{"names", names_json(opt_.names)}});
  return reply.ok ? ctl_exit::success : fail_with(reply);
}

int ctl_command::run_signal() {
  const json args{{"names", names_json(opt_.names)}, {"signal", *parse_signal(std::string_view(opt_.signal))}};
  const auto reply = call("signal", args);
  return reply.ok ? ctl_exit::success : fail_with(reply);
}

int ctl_command::run_add() {
  std::string text;
  json args = json::object();
  if (opt_.file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
    args["file"] = "<stdin>";
  } else {
    std::ifstream in(opt_.file, std::ios::binary);
    if (!in) {
      err_ << "pkit ctl: cannot read " << opt_.file << "\n";
      return ctl_exit::failed;
    }
    text.assign(std::istreambuf_iterator<char>(in), {});
    // A path that is not UTF-8 is told as well as JSON can carry it (it names the file in
    // the daemon's messages only).
    args["file"] = printable(std::filesystem::absolute(opt_.file).string());
  }
  if (!valid_utf8(text)) {
    err_ << "pkit ctl: " << printable(opt_.file == "-" ? std::string("<stdin>") : opt_.file)
         << ": not valid UTF-8 (a tree file is UTF-8 text)\n";
    return ctl_exit::failed;
  }
  args["toml"] = text;
  if (!opt_.group.empty()) args["group"] = group_path(opt_.group);
  const auto reply = call("add", args);
  if (!reply.ok) return fail_with(reply);
  for (const auto& name : reply.result.value("added", json::array()))
    if (name.is_string()) out_ << "added " << printable(name.get<std::string>()) << "\n";
  return ctl_exit::success;
}

int ctl_command::run_reload() {
  const auto reply = call("reload", json::object());
  if (!reply.ok) return fail_with(reply);
  const auto count = [&](const char* key) {
    const auto v = reply.result.value(key, json::array());
    return v.is_array() ? v.size() : std::size_t{0};
  };
  out_ << "reloaded: " << count("added") << " added, " << count("removed") << " removed, " << count("changed")
       << " changed, " << reply.result.value("unchanged", 0) << " unchanged\n";
  return ctl_exit::success;
}

int ctl_command::run_tail() {
  const json args{{"name", opt_.names.front()}, {"stream", opt_.stream}, {"lines", opt_.lines}};
  const auto reply = link().stream("tail", args, [this](const json& item) {
    if (item.is_object() && item.contains("line") && item["line"].is_string())
      out_ << item["line"].get_ref<const std::string&>() << std::endl;
    return static_cast<bool>(out_);
  }, std::chrono::milliseconds(opt_.timeout_ms));
  if (reply.ok && reply.result.value("end", std::string()) == "ended")
    err_ << "pkit ctl: tail " << opt_.names.front() << ": the program was removed or no longer logs" << std::endl;
  return reply.ok ? ctl_exit::success : fail_with(reply);
}

int ctl_command::run_events() {
  json args = json::object();
  if (!opt_.names.empty()) args["names"] = names_json(opt_.names);
  const auto reply = link().stream("events", args, [this](const json& item) {
    out_ << (opt_.json ? item.dump(-1, ' ', true, json::error_handler_t::replace) : format_event(item)) << std::endl;
    return static_cast<bool>(out_);
  }, std::chrono::milliseconds(opt_.timeout_ms));
  return reply.ok ? ctl_exit::success : fail_with(reply);
}

int ctl_command::run_shutdown() {
  const auto reply = call("shutdown", json::object());
  if (!reply.ok) return fail_with(reply);
  if (opt_.wait) link().wait_closed(std::chrono::milliseconds(-1));
  return ctl_exit::success;
}

int run_ctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app{"Control a running `pkit run` through its control socket.", "pkit ctl"};
  ctl_command command(app, out, err);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 parses from the back
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e, out, err);
    return code == 0 ? ctl_exit::success : ctl_exit::usage;
  }
  return command.run();
}

}  // namespace pkit::tool
