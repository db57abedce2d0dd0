#include "log_listeners.hpp"

#include <utility>

namespace pkit::tool::detail {

std::uint64_t log_listeners::add(const std::string& name, log_capture::listener fn,
                                 const log_capture::history_handler& history) {
  std::lock_guard<std::mutex> lock(m_);
  auto& p = programs_[name];
  if (history) history(std::vector<captured_line>(p.history.begin(), p.history.end()));
  const std::uint64_t id = next_id_++;
  name_of_.emplace(id, name);
  p.listeners.emplace(id, std::move(fn));
  return id;
}

void log_listeners::remove(std::uint64_t id) noexcept {
  std::lock_guard<std::mutex> lock(m_);
  auto i = name_of_.find(id);
  if (i == name_of_.end()) return;
  if (auto p = programs_.find(i->second); p != programs_.end()) {
    p->second.listeners.erase(id);
    if (p->second.listeners.empty() && p->second.history.empty()) programs_.erase(p);
  }
  name_of_.erase(i);
}

void log_listeners::deliver(const std::string& name, int stream, std::uint64_t run, std::string_view text,
                            bool continued) {
  std::lock_guard<std::mutex> lock(m_);
  auto i = programs_.find(name);
  if (i == programs_.end()) {
    if (history_bytes_ == 0) return;  // nobody listens, nothing kept: no copy at all
    i = programs_.emplace(name, program{}).first;
  }
  program& p = i->second;
  captured_line line{stream, run, std::string(text), continued};
  for (auto& [id, fn] : p.listeners) {
    try {
      fn(line);
    } catch (...) {
      // A listener's failure is its own (a tail whose client went away): the others and
      // the log go on.
    }
  }
  if (history_bytes_ == 0) return;
  // Oldest lines out first; a line longer than the whole budget is not kept. A line costs
  // its record too, not only its text: empty lines (a child printing "\n" forever) would
  // otherwise cost nothing and the history would grow without bound.
  auto cost = [](const captured_line& l) { return l.text.size() + sizeof(captured_line); };
  p.history_size += cost(line);
  p.history.push_back(std::move(line));
  while (p.history_size > history_bytes_ && !p.history.empty()) {
    p.history_size -= cost(p.history.front());
    p.history.pop_front();
  }
}

}  // namespace pkit::tool::detail
