/* Preloaded into the host's aardvark-dns: waits for ramd to see an
 * aardvark-dns, then sends one datagram from FROM:53 to TO:PORT and prints
 * "ok" or the errno. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void pose(void) {
    char cg[512] = {0};
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && fgets(cg, sizeof cg, f)) if (strncmp(cg, "0::", 3) == 0) fprintf(stderr, "cgroup %s", cg);
    usleep(600 * 1000);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(53)};
    inet_pton(AF_INET, FROM, &from.sin_addr);
    if (bind(s, (struct sockaddr *)&from, sizeof from) != 0) { printf("bind:%s\n", strerrorname_np(errno)); fflush(stdout); _exit(0); }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(PORT)};
    inet_pton(AF_INET, TO, &to.sin_addr);
    if (sendto(s, "rt9", 3, 0, (struct sockaddr *)&to, sizeof to) == 3) printf("ok\n");
    else printf("%s\n", strerrorname_np(errno));
    fflush(stdout);
    _exit(0);
}
