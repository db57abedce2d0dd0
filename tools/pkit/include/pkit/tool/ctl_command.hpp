#pragma once

/// \file
/// `pkit ctl …`: the command-line client of a running `pkit run` (its subcommands,
/// options, output and exit codes are listed in tools/pkit/PROTOCOL.md).
///
/// Two ways in: main() adds a `ctl` subcommand to its CLI::App and hands it to a
/// ctl_command, then calls run() when that subcommand was parsed; or run_ctl() parses
/// the arguments after "ctl" on its own (tests do that).

#include <pkit/tool/control_handler.hpp>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace pkit::tool {

/// What the command line said; filled by the parse.
struct ctl_options {
  std::string socket;                ///< --socket; "" : default_control_socket(name)
  std::string name = "pkit";         ///< --name: the tree's name, for the default socket
  int timeout_ms = 10000;            ///< --timeout: wait for a reply at most this long
  std::vector<std::string> names;    ///< the NAME… arguments
  bool json = false;                 ///< status/events --json
  std::string signal;                ///< signal SIG
  std::string file;                  ///< add FILE ("-": standard input)
  std::string group;                 ///< add --group a/b
  std::string stream = "both";       ///< tail --stream
  int lines = 10;                    ///< tail -n
  bool wait = false;                 ///< shutdown --wait
  std::string host;                  ///< --host HOST:PORT: remote control instead of the socket
  std::string tls_cert;              ///< --tls-cert (with --host)
  std::string tls_key;               ///< --tls-key (with --host)
  std::string tls_ca;                ///< --tls-ca (with --host)

  /// The socket to use: `socket`, or the default one of `name`.
  std::filesystem::path socket_path() const;
};

class ctl_command {
public:
  /// Adds --socket/--name/--timeout and the subcommands to `app` (which must outlive
  /// this object); one subcommand is required. Output goes to `out`, messages to `err`.
  ctl_command(CLI::App& app, std::ostream& out, std::ostream& err);

  ~ctl_command();

  ctl_command(const ctl_command&) = delete;
  ctl_command& operator=(const ctl_command&) = delete;

  /// Runs the subcommand that was parsed; returns the exit code (ctl_exit in
  /// control_protocol.hpp). Never throws: failures are printed to `err` as
  /// "pkit ctl: …" and turned into their exit code.
  int run();

  const ctl_options& options() const noexcept { return opt_; }

  /// Where requests go (defined in ctl_command.cpp): the socket's control_client or the
  /// --host client, made at the first request.
  struct transport;

private:
  int dispatch(const std::string& command);
  int run_status();
  int run_simple(const std::string& command);
  int run_signal();
  int run_add();
  int run_reload();
  int run_tail();
  int run_events();
  int run_shutdown();
  int fail_with(const control_reply& reply);
  /// A usage problem of --host and its TLS flags, or "".
  std::string check_host_options() const;
  /// One request over the chosen transport (the socket, or --host).
  control_reply call(const std::string& command, const nlohmann::json& args);
  transport& link();

  CLI::App& app_;
  std::ostream& out_;
  std::ostream& err_;
  ctl_options opt_;
  std::unique_ptr<transport> link_;
};

/// Parses `args` (the words after "ctl") and runs them. --help prints and returns 0; a
/// usage error prints CLI11's message and returns 2.
int run_ctl(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace pkit::tool
