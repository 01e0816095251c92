/* Shared by the ptrace poses (trace.c, latetrace.c): makes a process its
 * user traces, stopped, run socket() and connect(TO, PORT) of the tracer's
 * choosing, and prints "ok", the errno, or what failed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>

/* Runs system call `nr` in the stopped `pid` at `at` (a syscall
 * instruction), from registers `saved`; its return, or -100000. */
static long inject(pid_t pid, const struct user_regs_struct *saved, unsigned long at, long nr, long a, long b,
                   long c) {
    struct user_regs_struct regs = *saved;
    regs.rip = at;
    regs.rax = nr;
    regs.orig_rax = -1;
    regs.rdi = a;
    regs.rsi = b;
    regs.rdx = c;
    int status;
    if (ptrace(PTRACE_SETREGS, pid, 0, &regs) != 0 || ptrace(PTRACE_SINGLESTEP, pid, 0, 0) != 0 ||
        waitpid(pid, &status, 0) != pid || !WIFSTOPPED(status) || ptrace(PTRACE_GETREGS, pid, 0, &regs) != 0)
        return -100000;
    return (long)regs.rax;
}

/* Writes a syscall instruction where the stopped `pid` is, then has it
 * connect a new TCP socket to `addr`:`port`; prints the outcome. 0, or 1
 * when the tracee could not be set up. */
static int connect_through(pid_t pid, const char *addr, const char *port) {
    struct user_regs_struct saved;
    if (ptrace(PTRACE_GETREGS, pid, 0, &saved) != 0) {
        printf("getregs: %s\n", strerrorname_np(errno));
        return 1;
    }
    unsigned long at = saved.rip;
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, pid, at, 0);
    if (errno != 0 || ptrace(PTRACE_POKETEXT, pid, at, (word & ~0xffffL) | 0x050f) != 0) {
        printf("poke: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
    inet_pton(AF_INET, addr, &to.sin_addr);
    long words[2];
    memcpy(words, &to, sizeof words);
    unsigned long sa = (saved.rsp - 1024) & ~0xfUL;
    ptrace(PTRACE_POKEDATA, pid, sa, words[0]);
    ptrace(PTRACE_POKEDATA, pid, sa + 8, words[1]);
    long fd = inject(pid, &saved, at, SYS_socket, AF_INET, SOCK_STREAM, 0);
    long r = fd < 0 ? fd : inject(pid, &saved, at, SYS_connect, fd, sa, sizeof to);
    if (r == 0) printf("ok\n");
    else if (r > -4096) printf("%s\n", strerrorname_np(-r));
    else printf("ptrace failed\n");
    fflush(stdout);
    return 0;
}
