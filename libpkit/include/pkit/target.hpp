#pragma once

/// \file
/// Callable targets for `pkit::process`: `callable_target`, `pkit::target(f, args...)`
/// to bind arguments, and `exit_request` to end a child with a chosen code.

#include <concepts>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace pkit {

/// Thrown inside a child (directly or via `exit_child`) to end it with `code`, like
/// Python's SystemExit: the stack unwinds in the child, then it `_exit`s with `code`.
struct exit_request {
  int code = 0;
};

/// Ends the calling child process with `code` (by throwing `exit_request`). Only
/// meaningful inside a target or `run()`; elsewhere it is just an exception.
[[noreturn]] inline void exit_child(int code) { throw exit_request{code}; }

/// A C++ callable run in a forked child. It may return void (exit code 0) or something
/// convertible to int (the exit code); if it throws, the child prints the exception to
/// stderr and exits with 1.
class callable_target {
public:
  callable_target() = default;

  template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, callable_target> && std::invocable<F&>)
  callable_target(F&& f)  // NOLINT: implicit on purpose, so a lambda is a target
      : fn_(wrap(std::forward<F>(f))) {}

  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }
  /// Runs the callable in the current process and returns its exit code.
  int operator()() const { return fn_(); }

private:
  template <class F>
  static std::function<int()> wrap(F&& f) {
    using result = std::invoke_result_t<F&>;
    if constexpr (std::is_void_v<result>) {
      return [fn = std::forward<F>(f)]() mutable {
        std::invoke(fn);
        return 0;
      };
    } else {
      static_assert(std::is_convertible_v<result, int>,
                    "a target returns void or an exit code convertible to int");
      return [fn = std::forward<F>(f)]() mutable { return static_cast<int>(std::invoke(fn)); };
    }
  }

  std::function<int()> fn_;
};

/// Binds `args` to `f`, like `Process(target=f, args=(...))`: the arguments are copied
/// (or moved) into the target and passed to `f` in the child.
template <class F, class... Args>
callable_target target(F&& f, Args&&... args) {
  return callable_target{
      [fn = std::forward<F>(f), tup = std::make_tuple(std::forward<Args>(args)...)]() mutable {
        return std::apply(
            [&](auto&... a) {
              if constexpr (std::is_void_v<std::invoke_result_t<decltype(fn)&, decltype(a)...>>) {
                std::invoke(fn, a...);
                return 0;
              } else {
                return static_cast<int>(std::invoke(fn, a...));
              }
            },
            tup);
      }};
}

}  // namespace pkit
