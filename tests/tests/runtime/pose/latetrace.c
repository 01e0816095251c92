/* The host's slirp4netns, started by its user under its own name with
 * nothing of the user's in it (it waits, blocked, for a writer on a FIFO it
 * takes for its namespace's path), so ramd lets it through (WAIT_MS). Then
 * its user attaches with ptrace (as any user may to its own process),
 * waits SETTLE_MS, and makes it run socket() and connect(TO, PORT). Prints
 * "ok", the errno, or what failed. ramd looks at a relay again on every
 * scan, so a helper traced for longer than a scan carries nothing of its
 * user's. Usage: latetrace HELPER FIFO TO PORT WAIT_MS SETTLE_MS */
#include "inject.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

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
    int failed = connect_through(helper, argv[3], argv[4]);
    kill(helper, SIGKILL);
    waitpid(helper, &status, 0);
    return failed;
}
