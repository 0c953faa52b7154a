/*
 * enterloop: the in-process cost of a warm cage_enter_at alone, no exec.
 *
 *   enterloop CONFIG_DIR UID GID RUNS [children-only]
 *
 * Each run forks a fresh caller (so every entry starts from the host's
 * namespaces), which takes CLOCK_MONOTONIC, calls cage_enter_at and takes
 * the clock again where the call returns: in the new child inside the cage
 * (default mode: the supervisor's fork is included), or in the caller
 * itself with CAGE_ENTER_CHILDREN_ONLY (no fork: the library's own work and
 * the setns calls only). The child reports the difference through a pipe
 * and exits at once. Prints one line per run (µs) on stdout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libcage.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: enterloop CONFIG_DIR UID GID RUNS [children-only]\n");
        return 2;
    }
    uid_t uid = (uid_t)strtoul(argv[2], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
    int runs = atoi(argv[4]);
    unsigned flags = argc > 5 && strcmp(argv[5], "children-only") == 0 ? CAGE_ENTER_CHILDREN_ONLY : 0;
    for (int i = 0; i < runs; i++) {
        int p[2];
        if (pipe(p) < 0) {
            perror("enterloop: pipe");
            return 1;
        }
        pid_t c = fork();
        if (c < 0) {
            perror("enterloop: fork");
            return 1;
        }
        if (c == 0) {
            close(p[0]);
            double t0 = now_us();
            int rc = cage_enter_at(argv[1], uid, gid, flags);
            double t1 = now_us();
            if (rc != CAGE_OK) {
                char buf[512] = "";
                cage_last_error(buf, sizeof buf);
                fprintf(stderr, "enterloop: cage_enter_at: %s (%s)\n", cage_strerror(rc), buf);
                _exit(1);
            }
            double d = t1 - t0;
            if (write(p[1], &d, sizeof d) != sizeof d)
                _exit(1);
            _exit(0);
        }
        close(p[1]);
        double d;
        ssize_t n = read(p[0], &d, sizeof d);
        close(p[0]);
        int st;
        if (waitpid(c, &st, 0) < 0 || n != sizeof d) {
            fprintf(stderr, "enterloop: run %d failed\n", i);
            return 1;
        }
        printf("%.0f\n", d);
    }
    return 0;
}
