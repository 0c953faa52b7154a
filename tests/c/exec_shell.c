/* exec_shell: what suexec does. Single-threaded, as root:
 *
 *   exec_shell CONFIG_DIR USER [COMMAND ARGS...]
 *
 * resolves USER (NSS, before the cage), calls cage_enter_user_at(CONFIG_DIR,
 * USER, 0), and in the child it returns in (inside the cage) drops to the
 * user, re-arms the parent-death signal and execs COMMAND, by default
 *   /bin/sh -c 'readlink /proc/self/ns/pid; cat /proc/self/status'.
 * The original process is the supervisor: this program's exit status and
 * death signal are the command's. Exits 120 when cage_enter fails, 121 when
 * the user is not caged, 122 when dropping privileges or exec fails. */
#define _GNU_SOURCE
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <unistd.h>

#include "libcage.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s CONFIG_DIR USER [COMMAND ARGS...]\n", argv[0]);
        return 2;
    }
    const char *conf = argv[1], *user = argv[2];
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "exec_shell: no user %s\n", user);
        return 2;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;
    gid_t groups[256];
    int ngroups = 256;
    if (getgrouplist(user, gid, groups, &ngroups) < 0) {
        fprintf(stderr, "exec_shell: too many groups\n");
        return 2;
    }

    int rc = cage_enter_user_at(conf, user, 0);
    if (rc == CAGE_NOT_CAGED) {
        fprintf(stderr, "exec_shell: %s is not caged\n", user);
        return 121;
    }
    if (rc != CAGE_OK) {
        char msg[512];
        cage_last_error(msg, sizeof msg);
        fprintf(stderr, "exec_shell: %d (%s): %s\n", rc, cage_strerror(rc), msg);
        return 120;
    }
    /* Inside the cage, in the child; the parent is the supervisor. */
    if (setgroups((size_t)ngroups, groups) != 0 || setgid(gid) != 0 || setuid(uid) != 0 ||
        getuid() != uid || geteuid() != uid || setuid(0) == 0) {
        perror("exec_shell: dropping privileges");
        return 122;
    }
    /* setuid cleared the parent-death signal libcage set: re-arm it, then
     * make sure the supervisor (outside the cage: getppid() == 0) did not
     * die in between. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != 0) {
        fprintf(stderr, "exec_shell: supervisor gone\n");
        return 122;
    }
    if (chdir(pw->pw_dir) != 0 && chdir("/") != 0) {
        perror("exec_shell: chdir");
        return 122;
    }
    if (argc > 3) {
        execv(argv[3], argv + 3);
        perror(argv[3]);
        return 122;
    }
    execl("/bin/sh", "sh", "-c", "readlink /proc/self/ns/pid; cat /proc/self/status", (char *)NULL);
    perror("/bin/sh");
    return 122;
}
