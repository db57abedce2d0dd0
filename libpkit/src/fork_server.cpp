#include <pkit/fork_server.hpp>

#include <pkit/errc.hpp>

#include "detail/fork_server_core.hpp"

namespace pkit {

fork_server fork_server::start(registry targets) { return start(std::move(targets), options{}); }

fork_server fork_server::start(registry targets, const options& opts) {
  if (opts.request_timeout.count() <= 0)
    throw std::system_error(errc::invalid_argument, "pkit::fork_server::start: request_timeout");
  return fork_server(detail::fork_server_core::launch(std::move(targets), opts));
}

fork_server::fork_server(std::shared_ptr<detail::fork_server_core> core) noexcept
    : core_(std::move(core)) {}

fork_server::fork_server(fork_server&&) noexcept = default;

fork_server& fork_server::operator=(fork_server&& other) noexcept {
  if (this != &other) {
    shutdown();
    core_ = std::move(other.core_);
  }
  return *this;
}

fork_server::~fork_server() { shutdown(); }

server_target fork_server::target(std::string name, std::vector<std::string> args) const {
  if (!core_ || !core_->targets().contains(name))
    throw std::system_error(errc::unknown_target, "pkit::fork_server::target '" + name + "'");
  return server_target{core_, std::move(name), std::move(args)};
}

pid_t fork_server::pid() const noexcept { return core_ ? core_->pid() : -1; }

bool fork_server::running() const noexcept { return core_ && core_->running(); }

void fork_server::shutdown() noexcept {
  if (core_) core_->shutdown();
}

}  // namespace pkit
