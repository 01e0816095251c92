/* The host's slirp4netns, started by its user under ptrace (as any user may
 * trace its own child): stopped at its first instruction, it is the host's
 * file, the user's uid, argv[0] "slirp4netns", and every executable mapping
 * (itself, ld.so) the host's root-owned file. Once ramd has looked at it
 * (WAIT_MS), the tracer makes it run socket() and connect(TO, PORT) of the
 * user's choosing, and prints "ok" or the errno. No library of the user's is
 * ever mapped into it. Usage: trace HELPER TO PORT WAIT_MS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

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

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        char *args[] = {"slirp4netns", "--netns-type=path", "/nonexistent", "tap0", NULL};
        execv(argv[1], args);
        _exit(127);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFSTOPPED(status)) {
        printf("no exec stop\n");
        return 1;
    }
    usleep(atoi(argv[4]) * 1000);
    struct user_regs_struct saved;
    if (ptrace(PTRACE_GETREGS, child, 0, &saved) != 0) {
        printf("getregs: %s\n", strerrorname_np(errno));
        return 1;
    }
    unsigned long at = saved.rip;
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, child, at, 0);
    if (errno != 0 || ptrace(PTRACE_POKETEXT, child, at, (word & ~0xffffL) | 0x050f) != 0) {
        printf("poke: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &to.sin_addr);
    long words[2];
    memcpy(words, &to, sizeof words);
    unsigned long sa = (saved.rsp - 1024) & ~0xfUL;
    ptrace(PTRACE_POKEDATA, child, sa, words[0]);
    ptrace(PTRACE_POKEDATA, child, sa + 8, words[1]);
    long fd = inject(child, &saved, at, SYS_socket, AF_INET, SOCK_STREAM, 0);
    long r = fd < 0 ? fd : inject(child, &saved, at, SYS_connect, fd, sa, sizeof to);
    if (r == 0) printf("ok\n");
    else if (r > -4096) printf("%s\n", strerrorname_np(-r));
    else printf("ptrace failed\n");
    fflush(stdout);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return 0;
}
