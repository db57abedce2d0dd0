/* pkit_actors_bench_child: the child program of pkit_actors_bench.
 *
 *   bench_child pause              blocks until a signal ends it (a `sleep` that costs
 *                                  nothing to exec; SIGKILLed when its parent dies);
 *                                  supervised children, restarts
 *   bench_child run PATH           maps PATH (a file in /dev/shm), writes CLOCK_MONOTONIC
 *                                  (a struct timespec) at offset 0 of the mapping as its
 *                                  first act, then blocks as `pause` does: the restart rows
 *                                  measure until the new child runs, from that stamp
 *   bench_child exit               exits with 0 at once; the raw spawn+wait round trip
 *   bench_child stamp PATH USEC    maps PATH (a file in /dev/shm), sleeps USEC
 *                                  microseconds, writes CLOCK_MONOTONIC (a struct
 *                                  timespec) at offset 0 of the mapping, exits with 0:
 *                                  the exit detection rows measure from that stamp
 *   bench_child kill TID           sends SIGUSR1 to thread TID of its parent (tgkill),
 *                                  exits with 0 at once (1 when the signal could not be
 *                                  sent): the reaping fault test's signaller, which must
 *                                  act while the thread that spawned it may still be
 *                                  inside start() — so never a sanitized program
 *
 * On x86_64 and aarch64 it is built as a static executable without libc (-nostdlib
 * -static, see CMakeLists.txt, PKIT_BENCH_CHILD_FREESTANDING): its exec costs the
 * kernel's execve and nothing else, so the rows show pkit's own costs. Elsewhere it is
 * an ordinary libc program with the same behaviour. */

#if defined(PKIT_BENCH_CHILD_FREESTANDING)

#if defined(__x86_64__)
#define NR_OPENAT 257
#define NR_MMAP 9
#define NR_NANOSLEEP 35
#define NR_CLOCK_GETTIME 228
#define NR_PPOLL 271
#define NR_EXIT_GROUP 231
#define NR_PRCTL 157
#define NR_GETPPID 110
#define NR_TGKILL 234

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

__asm__(".globl _start\n"
        ".type _start, @function\n"
        "_start:\n"
        "  xorl %ebp, %ebp\n"
        "  movq %rsp, %rdi\n"
        "  andq $-16, %rsp\n"
        "  call child_main\n"
        "  hlt\n");
#elif defined(__aarch64__)
#define NR_OPENAT 56
#define NR_MMAP 222
#define NR_NANOSLEEP 101
#define NR_CLOCK_GETTIME 113
#define NR_PPOLL 73
#define NR_EXIT_GROUP 94
#define NR_PRCTL 167
#define NR_GETPPID 173
#define NR_TGKILL 131

static long sys6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc #0"
                   : "+r"(x0)
                   : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
                   : "memory");
  return x0;
}

__asm__(".globl _start\n"
        ".type _start, %function\n"
        "_start:\n"
        "  mov x0, sp\n"
        "  bl child_main\n");
#else
#error "bench_child.c: the freestanding build supports x86_64 and aarch64 only"
#endif

#define AT_FDCWD_ (-100)
#define O_RDWR_ 2
#define PROT_RW_ 3 /* PROT_READ | PROT_WRITE */
#define MAP_SHARED_ 1
#define CLOCK_MONOTONIC_ 1
#define PR_SET_PDEATHSIG_ 1
#define SIGKILL_ 9
#define SIGUSR1_ 10 /* the same on x86_64 and aarch64 */

struct ts {
  long sec;
  long nsec;
};

static __attribute__((noreturn)) void exit_now(int code) {
  for (;;) sys6(NR_EXIT_GROUP, code, 0, 0, 0, 0, 0);
}

static long parse_ulong(const char* s) {
  long v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  return v;
}

/* A thread id: decimal digits only, 1 to 2^31-1 (a pid_t); 0 for anything else. */
static long parse_tid(const char* s) {
  long v = 0;
  if (*s == 0) return 0;
  for (; *s != 0; ++s) {
    if (*s < '0' || *s > '9') return 0;
    v = v * 10 + (*s - '0');
    if (v > 2147483647L) return 0;
  }
  return v;
}

static __attribute__((noreturn)) void block_until_signal(void) {
  /* Never outlive the benchmark, even when it is killed (the raw children have no
   * other protection): SIGKILL when the parent dies; gone already if it died first. */
  sys6(NR_PRCTL, PR_SET_PDEATHSIG_, SIGKILL_, 0, 0, 0, 0);
  if (sys6(NR_GETPPID, 0, 0, 0, 0, 0, 0) == 1) exit_now(1);
  /* ppoll with no fds and no timeout: blocks until a signal (default dispositions:
   * SIGTERM and SIGKILL end it). */
  for (;;) sys6(NR_PPOLL, 0, 0, 0, 0, 8, 0);
}

__attribute__((noreturn, used)) void child_main(long* sp) {
  long argc = sp[0];
  char** argv = (char**)(sp + 1);
  if (argc < 2) exit_now(2);
  const char* mode = argv[1];
  if (mode[0] == 'e') exit_now(0);
  if (mode[0] == 'r' && argc >= 3) {
    long fd = sys6(NR_OPENAT, AT_FDCWD_, (long)argv[2], O_RDWR_, 0, 0, 0);
    if (fd < 0) exit_now(3);
    long addr = sys6(NR_MMAP, 0, 4096, PROT_RW_, MAP_SHARED_, fd, 0);
    if (addr < 0 && addr > -4096) exit_now(4);
    sys6(NR_CLOCK_GETTIME, CLOCK_MONOTONIC_, addr, 0, 0, 0, 0);
    block_until_signal();
  }
  if (mode[0] == 'p') block_until_signal();
  if (mode[0] == 'k' && argc >= 3) {
    long tid = parse_tid(argv[2]);
    if (tid <= 0) exit_now(2);
    long ppid = sys6(NR_GETPPID, 0, 0, 0, 0, 0, 0);
    exit_now(sys6(NR_TGKILL, ppid, tid, SIGUSR1_, 0, 0, 0) == 0 ? 0 : 1);
  }
  if (mode[0] == 's' && argc >= 4) {
    long fd = sys6(NR_OPENAT, AT_FDCWD_, (long)argv[2], O_RDWR_, 0, 0, 0);
    if (fd < 0) exit_now(3);
    long addr = sys6(NR_MMAP, 0, 4096, PROT_RW_, MAP_SHARED_, fd, 0);
    if (addr < 0 && addr > -4096) exit_now(4);
    long usec = parse_ulong(argv[3]);
    struct ts delay;
    delay.sec = usec / 1000000;
    delay.nsec = (usec % 1000000) * 1000;
    sys6(NR_NANOSLEEP, (long)&delay, 0, 0, 0, 0, 0);
    /* The stamp, straight into the shared page, then the exit. */
    sys6(NR_CLOCK_GETTIME, CLOCK_MONOTONIC_, addr, 0, 0, 0, 0);
    exit_now(0);
  }
  exit_now(2);
}

#else /* an ordinary libc program */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static void block_until_signal(void) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) _exit(1);
  for (;;) pause();
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (argv[1][0] == 'e') _exit(0);
  if (argv[1][0] == 'r' && argc >= 3) {
    int fd = open(argv[2], O_RDWR);
    if (fd < 0) _exit(3);
    void* addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) _exit(4);
    clock_gettime(CLOCK_MONOTONIC, (struct timespec*)addr);
    block_until_signal();
  }
  if (argv[1][0] == 'p') block_until_signal();
  if (argv[1][0] == 'k' && argc >= 3) {
    char* end = NULL;
    errno = 0;
    long tid = strtol(argv[2], &end, 10);
    if (errno != 0 || end == argv[2] || *end != '\0' || argv[2][0] < '0' || argv[2][0] > '9' || tid <= 0 ||
        tid > 2147483647L)
      _exit(2);
    _exit(syscall(SYS_tgkill, (long)getppid(), tid, (long)SIGUSR1) == 0 ? 0 : 1);
  }
  if (argv[1][0] == 's' && argc >= 4) {
    int fd = open(argv[2], O_RDWR);
    if (fd < 0) _exit(3);
    void* addr = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED) _exit(4);
    long usec = strtol(argv[3], NULL, 10);
    struct timespec delay = {usec / 1000000, (usec % 1000000) * 1000};
    nanosleep(&delay, NULL);
    clock_gettime(CLOCK_MONOTONIC, (struct timespec*)addr);
    _exit(0);
  }
  return 2;
}

#endif
