/* The host's slirp4netns, started by its user under ptrace (as any user may
 * trace its own child): stopped at its first instruction, it is the host's
 * file, the user's uid, argv[0] "slirp4netns", and every executable mapping
 * (itself, ld.so) the host's root-owned file. Once ramd has looked at it
 * (WAIT_MS), the tracer makes it run socket() and connect(TO, PORT) of the
 * user's choosing, and prints "ok" or the errno. No library of the user's is
 * ever mapped into it. Usage: trace HELPER TO PORT WAIT_MS */
#include "inject.h"

#include <signal.h>
#include <unistd.h>

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
    int failed = connect_through(child, argv[2], argv[3]);
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return failed;
}
