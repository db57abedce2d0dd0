#include "rotating_line_sink.hpp"

#include <spdlog/details/log_msg.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>

#include <ctime>
#include <string>

namespace pkit::tool::detail {
namespace {

// The records' levels carry the marker: info for the end of a line, debug for a piece
// continued by the next record (the levels mean nothing else here; sinks do not filter).
constexpr auto whole_line = spdlog::level::info;
constexpr auto continued_piece = spdlog::level::debug;

// %* : ' ' or '+', see log_capture.hpp's file format.
class marker_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    dest.push_back(msg.level == continued_piece ? '+' : ' ');
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<marker_flag>(); }
};

class rotating_line_sink final : public log_capture::line_sink {
public:
  explicit rotating_line_sink(const output_spec& spec)
      : sink_(spec.path.string(), static_cast<std::size_t>(spec.max_bytes), spec.keep, false) {
    auto f = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc, "\n");
    f->add_flag<marker_flag>('*');
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ%*%v");
    sink_.set_formatter(std::move(f));
  }

  void write(std::string_view text, bool continued) override {
    spdlog::details::log_msg msg(spdlog::string_view_t{}, continued ? continued_piece : whole_line,
                                 spdlog::string_view_t(text.data(), text.size()));
    sink_.log(msg);
  }

  void flush() override { sink_.flush(); }

private:
  // _st: written by the capture's reader thread alone (and by stop() after it ended).
  spdlog::sinks::rotating_file_sink_st sink_;
};

}  // namespace

std::shared_ptr<log_capture::line_sink> make_rotating_line_sink(const output_spec& spec) {
  return std::make_shared<rotating_line_sink>(spec);
}

}  // namespace pkit::tool::detail
