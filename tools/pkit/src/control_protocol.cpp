#include <pkit/tool/control_protocol.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include <signal.h>
#include <string.h>
#include <unistd.h>

namespace pkit::tool {

namespace {

using json = nlohmann::json;

/// The type an argument must have. Checked here, once, so that the daemon's handler
/// never sees a number where a name belongs; what the values mean it checks itself.
enum class arg_type { string, string_list, nonempty_string_list, signal, count, boolean };

struct arg_rule {
  std::string_view key;
  arg_type type;
  bool required;
};

struct command_rule {
  std::string_view name;
  bool stream;
  std::initializer_list<arg_rule> args;
};

// The commands and their arguments, as documented in PROTOCOL.md.
const std::array<command_rule, 12> commands{{
    {"hello", false, {}},
    {"status", false, {{"names", arg_type::string_list, false}}},
    {"start", false, {{"names", arg_type::nonempty_string_list, true}}},
    {"stop", false, {{"names", arg_type::nonempty_string_list, true}}},
    {"restart", false, {{"names", arg_type::nonempty_string_list, true}}},
    {"signal", false, {{"names", arg_type::nonempty_string_list, true}, {"signal", arg_type::signal, true}}},
    {"add", false,
     {{"toml", arg_type::string, true}, {"file", arg_type::string, false}, {"group", arg_type::string_list, false}}},
    {"remove", false, {{"names", arg_type::nonempty_string_list, true}}},
    {"reload", false, {}},
    {"shutdown", false, {}},
    {"events", true, {{"names", arg_type::string_list, false}}},
    {"tail", true, {{"name", arg_type::string, true}, {"stream", arg_type::string, false}, {"lines", arg_type::count, false}}},
}};

const command_rule* find_command(std::string_view name) {
  for (const auto& c : commands)
    if (c.name == name) return &c;
  return nullptr;
}

bool is_string_list(const json& v) {
  return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& e) { return e.is_string(); });
}

/// Why `value` is not of `type`, or "" when it is.
std::string type_problem(const json& value, arg_type type) {
  switch (type) {
    case arg_type::string:
      return value.is_string() ? "" : "must be a string";
    case arg_type::string_list:
      return is_string_list(value) ? "" : "must be an array of strings";
    case arg_type::nonempty_string_list:
      return is_string_list(value) && !value.empty() ? "" : "must be a non-empty array of strings";
    case arg_type::signal:
      return parse_signal(value) ? "" : "must be a signal number (1-64) or name (\"HUP\", \"SIGHUP\")";
    case arg_type::count:
      return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0)
                 ? ""
                 : "must be a non-negative integer";
    case arg_type::boolean:
      return value.is_boolean() ? "" : "must be true or false";
  }
  return "has an unknown type";
}

/// Checks `args` against the command's rules; "" when they fit.
std::string args_problem(const command_rule& rule, const json& args) {
  for (const auto& [key, value] : args.items()) {
    const auto it = std::find_if(rule.args.begin(), rule.args.end(), [&](const arg_rule& r) { return r.key == key; });
    if (it == rule.args.end()) return "command \"" + std::string(rule.name) + "\" has no argument \"" + key + "\"";
    if (auto why = type_problem(value, it->type); !why.empty()) return "argument \"" + key + "\" " + why;
  }
  for (const auto& r : rule.args)
    if (r.required && !args.contains(r.key))
      return "command \"" + std::string(rule.name) + "\" needs argument \"" + std::string(r.key) + "\"";
  return "";
}

decoded_request fail(json id, std::string code, std::string message) {
  decoded_request d;
  d.id = std::move(id);
  d.error = control_reply::failure(std::move(code), std::move(message));
  return d;
}

std::string dump_line(const json& j) {
  auto s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

}  // namespace

bool is_stream_command(std::string_view command) noexcept { return command == "events" || command == "tail"; }

decoded_request decode_request(std::string_view line) {
  bool too_deep = false;
  // The callback sees the depth of every value as it is parsed: deeper than allowed, the
  // value is discarded and the request refused, before a hostile nesting costs anything.
  const json::parser_callback_t depth_guard = [&too_deep](int depth, json::parse_event_t, json&) {
    if (depth > static_cast<int>(max_request_depth)) too_deep = true;
    return !too_deep;
  };
  json j = json::parse(line.begin(), line.end(), depth_guard, /*allow_exceptions=*/false);
  if (too_deep) return fail(nullptr, "bad_request", "request nested deeper than " + std::to_string(max_request_depth));
  if (j.is_discarded()) return fail(nullptr, "bad_request", "request is not valid JSON");
  if (!j.is_object()) return fail(nullptr, "bad_request", "request must be a JSON object");

  json id = nullptr;
  if (auto it = j.find("id"); it != j.end()) {
    if (it->is_structured()) return fail(nullptr, "bad_request", "\"id\" must be a string, number, boolean or null");
    id = *it;
  }
  for (const auto& [key, value] : j.items())
    if (key != "id" && key != "command" && key != "args")
      return fail(id, "bad_request", "unknown request field \"" + key + "\"");
  const auto cmd = j.find("command");
  if (cmd == j.end() || !cmd->is_string()) return fail(id, "bad_request", "\"command\" must be a string");
  const auto* rule = find_command(cmd->get_ref<const std::string&>());
  if (rule == nullptr)
    return fail(id, "unknown_command", "unknown command \"" + cmd->get<std::string>() + "\"");

  json args = json::object();
  if (auto it = j.find("args"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return fail(id, "bad_request", "\"args\" must be an object");
    args = std::move(*it);
  }
  if (auto why = args_problem(*rule, args); !why.empty()) return fail(id, "bad_request", why);

  decoded_request d;
  d.id = id;
  d.request = control_request{std::move(id), std::string(rule->name), std::move(args), rule->stream};
  return d;
}

std::string encode_reply(const nlohmann::json& id, const control_reply& reply) {
  json j{{"id", id}, {"ok", reply.ok}};
  if (reply.ok)
    j["result"] = reply.result;
  else
    j["error"] = json{{"code", reply.code}, {"message", reply.message}};
  return dump_line(j);
}

std::string encode_item(const nlohmann::json& id, const nlohmann::json& item) {
  return dump_line(json{{"id", id}, {"item", item}});
}

std::string encode_end(const nlohmann::json& id, std::string_view reason) {
  return dump_line(json{{"id", id}, {"end", true}, {"reason", reason}});
}

std::optional<decoded_line> decode_server_line(std::string_view line, std::string& error) {
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    error = "the daemon sent a line that is not a JSON object";
    return std::nullopt;
  }
  decoded_line d;
  d.id = j.value("id", json(nullptr));
  if (auto it = j.find("item"); it != j.end()) {
    d.what = decoded_line::kind::item;
    d.item = std::move(*it);
    return d;
  }
  if (j.value("end", false)) {
    d.what = decoded_line::kind::end;
    d.end_reason = j.value("reason", std::string("ended"));
    return d;
  }
  const auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) {
    error = "the daemon sent a line without \"ok\", \"item\" or \"end\"";
    return std::nullopt;
  }
  if (ok->get<bool>()) {
    d.reply = control_reply::success(j.value("result", json::object()));
  } else {
    const auto err = j.value("error", json::object());
    const auto code = err.is_object() ? err.value("code", std::string("error")) : std::string("error");
    const auto message = err.is_object() ? err.value("message", std::string("(no message)")) : std::string("(no message)");
    d.reply = control_reply::failure(code, message);
  }
  return d;
}

std::optional<int> parse_signal(const nlohmann::json& value) {
  if (value.is_string()) return parse_signal(std::string_view(value.get_ref<const std::string&>()));
  if (value.is_number_integer()) {
    const auto n = value.get<std::int64_t>();
    if (n >= 1 && n < NSIG) return static_cast<int>(n);
  }
  return std::nullopt;
}

std::filesystem::path default_control_socket(std::string_view name) {
  const std::string file = std::string(name) + ".sock";
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg != nullptr && xdg[0] == '/')
    return std::filesystem::path(xdg) / "pkit" / file;
  if (::geteuid() == 0) return std::filesystem::path("/run/pkit") / file;
  return std::filesystem::path("/tmp") / ("pkit-" + std::to_string(::geteuid())) / file;
}

}  // namespace pkit::tool
