#pragma once

/// \file
/// The allow-list file of `pkit node` (TOML, format in tools/pkit/FORMAT.md, "The node
/// allow-list"): read into a pkit::net::allow_list, with every error naming the file,
/// line, column and key path, as the tree file's errors do.

#include <pkit/net/allow_list.hpp>
#include <pkit/tool/config.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pkit::tool {

/// The outcome of reading an allow-list file: the list, or every error found.
struct allow_file_result {
  std::optional<pkit::net::allow_list> allow;
  std::vector<config_error> errors;

  explicit operator bool() const noexcept { return allow.has_value(); }
};

/// Reads `file` (at most 4 MiB) and checks it: the TOML syntax, each key's type and
/// range, unknown keys (with "did you mean"), then allow_list::check() (absolute,
/// existing, resolved paths; no program that runs anything unless pinned), whose refusal
/// is placed at the offending entry. Reads the file system (check() does); any thread.
allow_file_result load_allow_file(const std::filesystem::path& file);

/// As load_allow_file, for `text` named `file_name` in the errors.
allow_file_result load_allow_string(std::string_view text, const std::string& file_name);

}  // namespace pkit::tool
