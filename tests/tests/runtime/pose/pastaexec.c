/* The user's own code at a registered relay's pid, with no ptrace and no
 * library of the user's: pasta runs a command in namespaces of its own, and
 * its child (a clone of pasta: the host's file, its arguments, glibc mapped,
 * not traced) waits for pasta's SIGUSR1 before it execs the command. The
 * user stops pasta (SIGSTOP: a signal, as any user may send its own
 * processes) as soon as the child appears, waits WAIT_MS for ramd to
 * register the child as a relay, then sends the child SIGUSR1 itself. The
 * command is DIR/<pasta's command name> ("pasta", or "passt.avx2" where
 * pasta re-execs its AVX2 build), a link to the host's perl: after the exec
 * the process has the same start time and command name ramd remembers it
 * by, runs as the same user, untraced, with only the host's root-owned
 * files mapped, so every later look finds the relay sound. perl waits
 * 300 ms (several scans), then connects a TCP socket the user made in the
 * runtime's namespace before starting pasta (fd 3, inherited through pasta)
 * to TO:PORT. Prints "ok", the errno, or "missed" when pasta signalled its
 * child before it could be stopped, every time.
 * Usage: pastaexec DIR TO PORT WAIT_MS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n < 0) return -1;
    buf[n] = 0;
    return (int)n;
}

/* pasta's child running the command: in a pid namespace of its own (two
 * NSpid entries; pasta's other clones join namespaces, they make none). */
static pid_t command_child(pid_t pasta) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", pasta, pasta);
    if (read_file(path, buf, sizeof buf) <= 0) return 0;
    for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
        char status[4096];
        snprintf(path, sizeof path, "/proc/%s/status", tok);
        if (read_file(path, status, sizeof status) <= 0) continue;
        char *ns = strstr(status, "NSpid:");
        if (!ns) continue;
        char *end = strchr(ns, '\n');
        if (end) *end = 0;
        int fields = 0;
        for (char *t = strtok(ns + 6, " \t"); t; t = strtok(NULL, " \t")) fields++;
        if (fields >= 2) return atoi(tok);
    }
    return 0;
}

/* Still pasta's clone (argv[0] "pasta"), not the command yet. */
static int still_pasta(pid_t pid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    return read_file(path, buf, sizeof buf) > 0 && strcmp(buf, "pasta") == 0;
}

static char *attempt(const char *dir, const char *to, const char *port, int wait_ms) {
    static char result[128];
    const char *name = __builtin_cpu_supports("avx2") ? "passt.avx2" : "pasta";
    char cmd[4096], code[1024];
    snprintf(cmd, sizeof cmd, "%s/%s", dir, name);
    snprintf(code, sizeof code,
             "use Socket; $|=1; open(my $s, '+<&=', 3) or die; select(undef, undef, undef, 0.3);"
             " print connect($s, pack_sockaddr_in(%s, inet_aton('%s'))) ? \"ok\\n\" : (0+$!).\"\\n\";",
             port, to);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s != 3) {
        dup2(s, 3);
        close(s);
    }
    int out[2];
    if (pipe(out) != 0) return "pipe";
    pid_t pasta = fork();
    if (pasta == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(null, 2);
        close(out[0]);
        close(out[1]);
        execl("/usr/bin/pasta", "pasta", "--config-net", "--", cmd, "-e", code, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    close(3);
    pid_t child = 0;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do {
        child = command_child(pasta);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!child && now.tv_sec - start.tv_sec < 10);
    if (child) kill(pasta, SIGSTOP);
    usleep(20 * 1000);
    char *r = NULL;
    if (!child || !still_pasta(child)) {
        r = "missed";
    } else {
        usleep(wait_ms * 1000);
        kill(child, SIGUSR1);
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        char line[64] = {0};
        ssize_t n = poll(&p, 1, 10000) == 1 ? read(out[0], line, sizeof line - 1) : -1;
        if (n <= 0) {
            r = "no answer";
        } else {
            line[strcspn(line, "\n")] = 0;
            if (strcmp(line, "ok") == 0) r = "ok";
            else {
                const char *e = strerrorname_np(atoi(line));
                snprintf(result, sizeof result, "%s", e ? e : line);
                r = result;
            }
        }
    }
    if (child) kill(child, SIGKILL);
    kill(pasta, SIGKILL);
    waitpid(pasta, NULL, 0);
    close(out[0]);
    return r;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    char *r = "missed";
    for (int i = 0; i < 5 && strcmp(r, "missed") == 0; i++) r = attempt(argv[1], argv[2], argv[3], atoi(argv[4]));
    printf("%s\n", r);
    fflush(stdout);
    return 0;
}
