/* signal_counter SIGNO: a child for the process actor's stop tests that counts the stop
 * signals it gets. It blocks SIGNO, writes its readiness newline to fd 3 (if open), then
 * writes one line to stdout for every SIGNO it receives, and never exits by itself (only
 * SIGKILL ends it). Use a realtime signal to count exactly: those queue, where a second
 * standard signal sent while the first is still pending merges with it. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int signo = atoi(argv[1]);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return 3;
  while (write(3, "\n", 1) < 0 && errno == EINTR) {
  }
  for (;;) {
    const int got = sigwaitinfo(&set, NULL);
    if (got == signo) {
      while (write(1, "signal\n", 7) < 0 && errno == EINTR) {
      }
    }
  }
}
