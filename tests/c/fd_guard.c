/* fd_guard: the entry's descriptor and terminal guards, through the C API.
 * Run as root, on a terminal (e.g. under `script`):
 *
 *   fd_guard CONFIG_DIR CAGED_USER
 *
 * Each entry that is expected to succeed runs in a forked child (the
 * supervisor then exits with the caged child's status). Prints one line
 * per check and exits 0 when all passed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libcage.h"
#include "check.h"

static void check_last(const char *needle) {
    char last[512];
    cage_last_error(last, sizeof last);
    int ok = strstr(last, needle) != NULL;
    printf("  %s  last error contains \"%s\": %s\n", ok ? "ok  " : "FAIL", needle, last);
    if (!ok)
        failures++;
}

/* What the caged child reports, as its exit status. */
enum { INSIDE_OK = 0, INSIDE_CTTY = 3, INSIDE_SESSION = 4, INSIDE_NO_TTY = 5, INSIDE_FAIL = 6 };

/* Enters in a forked child; in the caged child runs `inside`, whose result
 * is the exit status the supervisor passes on. Returns that status, or
 * 100 + (-rc) when the entry failed. */
static int enter_in_child(const char *conf, const char *user, unsigned flags, int (*inside)(void)) {
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int rc = cage_enter_user_at(conf, user, flags);
        if (rc != CAGE_OK) {
            char last[512];
            cage_last_error(last, sizeof last);
            fprintf(stderr, "fd_guard: entry failed: %d %s\n", rc, last);
            _exit(100 - rc);
        }
        _exit(inside());
    }
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

static int nothing(void) { return INSIDE_OK; }

/* Default mode: a session of its own, no controlling terminal. */
static int detached(void) {
    if (getsid(0) != getpid())
        return INSIDE_SESSION;
    int fd = open("/dev/tty", O_RDWR);
    if (fd >= 0)
        return INSIDE_CTTY;
    return errno == ENXIO ? INSIDE_OK : INSIDE_FAIL;
}

/* CAGE_ENTER_PTY: a session of its own whose controlling terminal is a
 * fresh pty of the cage on fds 0-2. */
static int on_pty(void) {
    if (getsid(0) != getpid())
        return INSIDE_SESSION;
    if (!isatty(0) || !isatty(1))
        return INSIDE_NO_TTY;
    int fd = open("/dev/tty", O_RDWR);
    if (fd < 0)
        return INSIDE_FAIL;
    char name[64];
    if (ttyname_r(0, name, sizeof name) != 0 || strncmp(name, "/dev/pts/", 9) != 0)
        return INSIDE_FAIL;
    return INSIDE_OK;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG_DIR CAGED_USER\n", argv[0]);
        return 2;
    }
    const char *conf = argv[1], *user = argv[2];
    struct passwd *pw = getpwnam(user);
    if (!pw)
        return 2;
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;

    printf("# a missing configuration directory fails closed\n");
    int rc = cage_enter_at("/nonexistent-cage-config", uid, gid, 0);
    check(rc == CAGE_ERR_CONFIG, "cage_enter_at(missing dir) == CAGE_ERR_CONFIG", rc);
    check_last("config_dir /nonexistent-cage-config: No such file or directory");
    rc = cage_enter_user_at("/etc/passwd", user, 0);
    check(rc == CAGE_ERR_CONFIG, "cage_enter_user_at(a file) == CAGE_ERR_CONFIG", rc);
    rc = cage_user_enabled_at("/nonexistent-cage-config", uid);
    check(rc < 0, "cage_user_enabled_at(missing dir) < 0", rc);

    printf("# inheritable O_PATH descriptor of /etc/passwd\n");
    int fd = open("/etc/passwd", O_PATH);
    rc = cage_enter_user_at(conf, user, 0);
    check(rc == CAGE_ERR_LEAKED_FD, "refused: CAGE_ERR_LEAKED_FD", rc);
    char want[128];
    snprintf(want, sizeof want, "file descriptor %d (inheritable O_PATH descriptor /etc/passwd) leads outside the cage", fd);
    check_last(want);
    close(fd);
    fd = open("/etc/passwd", O_PATH | O_CLOEXEC);
    check(enter_in_child(conf, user, 0, nothing) == 0, "a close-on-exec O_PATH descriptor is fine for a caller that execs", 0);
    rc = cage_enter_user_at(conf, user, CAGE_ENTER_IN_PROCESS);
    check(rc == CAGE_ERR_LEAKED_FD, "... but refused with CAGE_ENTER_IN_PROCESS", rc);
    close(fd);

    printf("# close-on-exec directory descriptor of /\n");
    fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rc = cage_enter_user_at(conf, user, CAGE_ENTER_IN_PROCESS);
    check(rc == CAGE_ERR_LEAKED_FD, "CAGE_ENTER_IN_PROCESS: refused", rc);
    snprintf(want, sizeof want, "file descriptor %d (close-on-exec directory /) leads outside the cage", fd);
    check_last(want);
    rc = cage_enter_user_at(conf, user, CAGE_ENTER_IN_PROCESS | CAGE_ENTER_CHILDREN_ONLY);
    check(rc == CAGE_ERR_LEAKED_FD, "CAGE_ENTER_IN_PROCESS | CAGE_ENTER_CHILDREN_ONLY: refused", rc);
    check(enter_in_child(conf, user, 0, nothing) == 0, "without the flag (the caller execs): entered", 0);
    close(fd);
    fd = open("/", O_RDONLY | O_DIRECTORY);
    rc = cage_enter_user_at(conf, user, 0);
    check(rc == CAGE_ERR_LEAKED_FD, "an inheritable directory is refused in every mode", rc);
    close(fd);

    printf("# other inherited files\n");
    fd = open("/etc/hostname", O_RDONLY);
    rc = cage_enter_user_at(conf, user, 0);
    check(rc == CAGE_ERR_LEAKED_FD, "an inheritable host file open for reading is refused", rc);
    check_last("inheritable file open for reading /etc/hostname");
    close(fd);
    char logpath[] = "/tmp/fd_guard.XXXXXX";
    fd = mkstemp(logpath);
    int wfd = open(logpath, O_WRONLY | O_APPEND);
    close(fd);
    unlink(logpath);
    int nul = open("/dev/null", O_RDWR);
    int pfd[2];
    if (pipe(pfd) != 0)
        return 2;
    check(enter_in_child(conf, user, 0, nothing) == 0,
          "a write-only log file, /dev/null and a pipe may be inherited", wfd + nul);
    close(wfd);
    close(nul);
    close(pfd[0]);
    close(pfd[1]);

    printf("# terminals\n");
    int ctty = open("/dev/tty", O_RDWR);
    check(ctty >= 0 && isatty(0), "precondition: this program runs on a controlling terminal", ctty);
    if (ctty >= 0)
        close(ctty);
    rc = enter_in_child(conf, user, 0, detached);
    check(rc == INSIDE_OK, "default mode: the caged child has its own session and no controlling tty", rc);
    rc = enter_in_child(conf, user, CAGE_ENTER_PTY, on_pty);
    check(rc == INSIDE_OK, "CAGE_ENTER_PTY: the caged child's controlling tty is a fresh pty on fds 0-2", rc);
    rc = cage_enter_user_at(conf, user, CAGE_ENTER_PTY | CAGE_ENTER_CHILDREN_ONLY);
    check(rc == CAGE_ERR_INVALID, "CAGE_ENTER_PTY with CAGE_ENTER_CHILDREN_ONLY is invalid", rc);

    printf("fd_guard: %d failures\n", failures);
    return failures ? 1 : 0;
}
