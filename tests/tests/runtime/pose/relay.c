/* Preloaded into the host's slirp4netns (or pasta): waits for ramd to have
 * looked at the process, then connects to TO:PORT from the runtime's
 * namespace, as the helper would for a container, and prints "ok" or the
 * errno. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void pose(void) {
    usleep(600 * 1000);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, TO, &to.sin_addr);
    if (connect(s, (struct sockaddr *)&to, sizeof to) == 0) printf("ok\n");
    else printf("%s\n", strerrorname_np(errno));
    fflush(stdout);
    _exit(0);
}
