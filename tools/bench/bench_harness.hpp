#pragma once

// What both benchmark programs (pkit_bench, actors/pkit_actors_bench) measure with: the
// clock, failure reports, and interleaved rounds of variants summarised by median and
// p10/p90. Header-only; each program includes it once.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace bench {

[[noreturn]] inline void fail(const std::string& what) { throw std::runtime_error(what); }

[[noreturn]] inline void fail_errno(const std::string& what) {
  throw std::system_error(errno, std::system_category(), what);
}

/// CLOCK_MONOTONIC in nanoseconds: vDSO, async-signal-safe, the clock children stamp with.
inline std::int64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

inline double us_since(std::int64_t t0) noexcept { return static_cast<double>(now_ns() - t0) / 1e3; }
inline double ms_since(std::int64_t t0) noexcept { return static_cast<double>(now_ns() - t0) / 1e6; }

struct stats {
  std::size_t n = 0;
  double median = 0, p10 = 0, p90 = 0;
};

/// Linear interpolation between the closest ranks of `sorted`.
inline double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  double pos = q * static_cast<double>(sorted.size() - 1);
  auto lo = static_cast<std::size_t>(pos);
  std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return sorted[lo] * (1 - frac) + sorted[hi] * frac;
}

inline stats summarize(std::vector<double> s) {
  std::sort(s.begin(), s.end());
  return {s.size(), quantile(s, 0.5), quantile(s, 0.1), quantile(s, 0.9)};
}

/// One thing measured: `once` runs one iteration and returns its sample (µs).
struct variant {
  std::string label;
  std::function<double()> once;
  std::vector<double> samples;
  stats summary() const { return summarize(samples); }
};

struct plan {
  int warmup;  // iterations per variant, discarded
  int rounds;  // interleaved rounds
  int batch;   // iterations per variant per round
  int samples() const { return rounds * batch; }
};

/// Runs `variants` interleaved, so that drift (CPU frequency, other load) hits each alike:
/// warm-up first, then `rounds` rounds in which every variant runs `batch` iterations,
/// the order rotating each round (A B C, B C A, C A B, ...).
inline void run_interleaved(const std::vector<variant*>& variants, const plan& p) {
  std::fflush(stdout);
  std::fflush(stderr);
  for (variant* v : variants) {
    for (int i = 0; i < p.warmup; ++i) (void)v->once();
    v->samples.reserve(static_cast<std::size_t>(p.samples()));
  }
  const std::size_t n = variants.size();
  for (int r = 0; r < p.rounds; ++r) {
    for (std::size_t k = 0; k < n; ++k) {
      variant* v = variants[(static_cast<std::size_t>(r) + k) % n];
      for (int i = 0; i < p.batch; ++i) v->samples.push_back(v->once());
    }
  }
}

}  // namespace bench
