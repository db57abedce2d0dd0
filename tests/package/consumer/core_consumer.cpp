// Uses the installed pkit::core: starts real children and checks their exit codes.
#include <pkit/process.hpp>

#include <cstdio>
#include <exception>

namespace {

int failures = 0;

void expect(const char* what, int got, int want) {
  std::printf("%s: exit code %d (expected %d)\n", what, got, want);
  if (got != want) ++failures;
}

}  // namespace

int main() {
  try {
    pkit::process truth{pkit::command{{"/bin/true"}}};
    truth.start();
    expect("/bin/true", truth.join(), 0);

    pkit::process shell{pkit::command{{"/bin/sh", "-c", "exit 7"}}};
    shell.start();
    expect("sh -c 'exit 7'", shell.join(), 7);

    pkit::process callable{[] { return 3; }};
    callable.start();
    expect("a callable returning 3", callable.join(), 3);
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
  std::printf("pkit core consumer: %s\n", failures == 0 ? "ok" : "FAILED");
  return failures == 0 ? 0 : 1;
}
