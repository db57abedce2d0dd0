/* The R2 injection's program (reaping_faults_test.cpp): sends SIGUSR1 to thread TID of
 * its parent (tgkill), then exits 0 at once.
 *
 *   pkit_fault_signaller TID
 *
 * Its point is to signal as soon as it is made, while its spawning thread may still be
 * inside start(). It is therefore never built with a sanitizer: a sanitized program
 * spends its first tens of milliseconds in the sanitizer's own start, long after start()
 * returned (under ASan, 1,507 spawns had 0 exits inside their own start()). Exit code 2
 * on bad usage. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  char* end = NULL;
  errno = 0;
  const long tid = strtol(argv[1], &end, 10);
  if (errno != 0 || end == argv[1] || *end != '\0' || tid <= 0) return 2;
  return syscall(SYS_tgkill, (long)getppid(), tid, (long)SIGUSR1) == 0 ? 0 : 1;
}
