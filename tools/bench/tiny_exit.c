/* The smallest program the spawn benchmark can run: a static executable without libc
 * whose entry point only calls exit_group(0). Exec'ing it costs the kernel's execve and
 * nothing else (no dynamic loader, no libc start-up), so the spawn rows built on it show
 * the spawning code's own cost. Built with -nostdlib -static (see CMakeLists.txt). */

#if defined(__x86_64__)
__asm__(".globl _start\n"
        ".type _start, @function\n"
        "_start:\n"
        "  movl $231, %eax\n" /* SYS_exit_group */
        "  xorl %edi, %edi\n"
        "  syscall\n"
        "  hlt\n");
#elif defined(__aarch64__)
__asm__(".globl _start\n"
        ".type _start, %function\n"
        "_start:\n"
        "  mov x8, #94\n" /* SYS_exit_group */
        "  mov x0, #0\n"
        "  svc #0\n");
#else
#error "tiny_exit.c: only x86_64 and aarch64 are supported"
#endif
