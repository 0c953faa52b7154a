/*
 * enterc: the in-process entry path of libcage, as suexec or an FPM worker
 * would use it, without any CLI around it.
 *
 *   enterc CONFIG_DIR UID GID PROGRAM [ARG...]   cage_enter_at, switch, exec
 *   enterc - UID GID PROGRAM [ARG...]            the same without cage_enter_at
 *
 * Both forms do exactly the same work apart from the one call (the binary
 * is linked against libcage.so either way), so the difference of their
 * timings is the cost of a cage entry. Groups are set numerically (no NSS).
 */
#define _GNU_SOURCE
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <signal.h>
#include <unistd.h>

#include "libcage.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: enterc CONFIG_DIR|- UID GID PROGRAM [ARG...]\n");
        return 2;
    }
    uid_t uid = (uid_t)strtoul(argv[2], NULL, 10);
    gid_t gid = (gid_t)strtoul(argv[3], NULL, 10);
    int caged = strcmp(argv[1], "-") != 0;
    if (caged) {
        int rc = cage_enter_at(argv[1], uid, gid, 0);
        if (rc != CAGE_OK) {
            char buf[512] = "";
            cage_last_error(buf, sizeof buf);
            fprintf(stderr, "enterc: cage_enter_at: %s (%s)\n", cage_strerror(rc), buf);
            return 1;
        }
    }
    if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        perror("enterc: switching user");
        return 1;
    }
    if (caged) {
        /* As libcage.h asks: re-arm the parent-death signal after setuid. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != 0)
            _exit(1);
    }
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    execve(argv[4], argv + 4, env);
    perror("enterc: exec");
    return 127;
}
