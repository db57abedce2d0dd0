#pragma once

/// \file
/// Everything of pkit::core in one include.

#include <pkit/command.hpp>
#include <pkit/communicate.hpp>
#include <pkit/errc.hpp>
#include <pkit/exit_status.hpp>
#include <pkit/fork_server.hpp>
#include <pkit/identity.hpp>
#include <pkit/process.hpp>
#include <pkit/process_options.hpp>
#include <pkit/process_pool.hpp>
#include <pkit/spawn_error.hpp>
#include <pkit/stdio.hpp>
#include <pkit/stop_policy.hpp>
#include <pkit/target.hpp>
#include <pkit/unique_fd.hpp>
