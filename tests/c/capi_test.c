/* capi_test: calls every function of libcage.h, including with NULL and
 * malformed arguments, and checks each result. Run as root:
 *
 *   capi_test CONFIG_DIR CAGED_USER UNCAGED_USER
 *
 * CAGED_USER must be caged under CONFIG_DIR and UNCAGED_USER not. Prints
 * one line per check and exits 0 when all passed. */
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


#define CHECK_RC(call, want)                                 \
    do {                                                     \
        int rc_ = (call);                                    \
        check(rc_ == (want), #call " == " #want, rc_);       \
    } while (0)

static char last[512];

static const char *last_error(void) {
    int n = cage_last_error(last, sizeof last);
    if (n < 0)
        snprintf(last, sizeof last, "<cage_last_error failed: %d>", n);
    return last;
}

static void check_last_contains(const char *needle) {
    const char *m = last_error();
    int ok = strstr(m, needle) != NULL;
    printf("  %s  last error contains \"%s\": %s\n", ok ? "ok  " : "FAIL", needle, m);
    if (!ok)
        failures++;
}

/* readlink of a namespace link, through a /proc that stays the host's. */
static void ns_link(int procfd, const char *which, char *out, size_t len) {
    ssize_t n = readlinkat(procfd, which, out, len - 1);
    out[n < 0 ? 0 : n] = '\0';
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CONFIG_DIR CAGED_USER UNCAGED_USER\n", argv[0]);
        return 2;
    }
    const char *conf = argv[1], *caged = argv[2], *uncaged = argv[3];
    struct passwd *pw = getpwnam(caged);
    if (!pw) {
        fprintf(stderr, "no user %s\n", caged);
        return 2;
    }
    uid_t caged_uid = pw->pw_uid;
    gid_t caged_gid = pw->pw_gid;
    char *caged_home = strdup(pw->pw_dir);
    pw = getpwnam(uncaged);
    if (!pw) {
        fprintf(stderr, "no user %s\n", uncaged);
        return 2;
    }
    uid_t uncaged_uid = pw->pw_uid;
    char *uncaged_home = strdup(pw->pw_dir);

    printf("# version and strerror\n");
    check(cage_abi_version() == CAGE_ABI_VERSION, "cage_abi_version() == CAGE_ABI_VERSION",
          (long)cage_abi_version());
    check(strcmp(cage_strerror(CAGE_OK), "success") == 0, "strerror(CAGE_OK) is \"success\"", 0);
    check(strcmp(cage_strerror(CAGE_NOT_CAGED), "user is not caged") == 0,
          "strerror(CAGE_NOT_CAGED)", 0);
    check(strcmp(cage_strerror(CAGE_ERR_THREADS), "process is multi-threaded") == 0,
          "strerror(CAGE_ERR_THREADS)", 0);
    check(strcmp(cage_strerror(-9999), "unknown error") == 0, "strerror(-9999) is \"unknown error\"", 0);
    check(strcmp(cage_strerror(42), "unknown error") == 0, "strerror(42) is \"unknown error\"", 0);
    for (int c = CAGE_ERR_HOSTILE_PATH; c <= CAGE_NOT_CAGED; c++) {
        const char *s = cage_strerror(c);
        char what[64];
        snprintf(what, sizeof what, "strerror(%d) is known: %s", c, s ? s : "(null)");
        check(s != NULL && *s && strcmp(s, "unknown error") != 0, what, c);
    }

    printf("# cage_last_error before any failure\n");
    memset(last, 'x', sizeof last);
    CHECK_RC(cage_last_error(last, sizeof last), 0);
    check(last[0] == '\0', "empty message", last[0]);
    CHECK_RC(cage_last_error(NULL, 0), 0);

    printf("# NULL and malformed arguments\n");
    CHECK_RC(cage_enter_user(NULL, 0), CAGE_ERR_INVALID);
    check_last_contains("name is NULL");
    CHECK_RC(cage_enter_user("", 0), CAGE_ERR_INVALID);
    check_last_contains("name is empty");
    CHECK_RC(cage_enter_user_at(NULL, caged, 0), CAGE_ERR_INVALID);
    check_last_contains("config_dir is NULL");
    CHECK_RC(cage_enter_user_at(conf, NULL, 0), CAGE_ERR_INVALID);
    check_last_contains("name is NULL");
    CHECK_RC(cage_enter_at(NULL, caged_uid, caged_gid, 0), CAGE_ERR_INVALID);
    check_last_contains("config_dir is NULL");
    CHECK_RC(cage_user_enabled_at(NULL, caged_uid), CAGE_ERR_INVALID);
    check_last_contains("config_dir is NULL");
    CHECK_RC(cage_enter_at("relative/conf", caged_uid, caged_gid, 0), CAGE_ERR_INVALID);
    check_last_contains("not an absolute path");
    CHECK_RC(cage_enter_at(conf, caged_uid, caged_gid, 0x80), CAGE_ERR_INVALID);
    check_last_contains("unknown flags 0x80");
    CHECK_RC(cage_enter_user_at(conf, caged, 0x18), CAGE_ERR_INVALID);
    check_last_contains("unknown flags 0x18");
    CHECK_RC(cage_enter_at(conf, (uid_t)-1, caged_gid, 0), CAGE_ERR_INVALID);
    check_last_contains("uid is (uid_t)-1");
    CHECK_RC(cage_enter(caged_uid, (gid_t)-1, 0), CAGE_ERR_INVALID);
    check_last_contains("gid is (gid_t)-1");
    CHECK_RC(cage_user_enabled((uid_t)-1), CAGE_ERR_INVALID);
    CHECK_RC(cage_user_enabled_at(conf, (uid_t)-1), CAGE_ERR_INVALID);

    printf("# cage_last_error copies, truncates and measures\n");
    CHECK_RC(cage_enter_user_at(NULL, "x", 0), CAGE_ERR_INVALID);
    const char *full = "cage_enter_user_at: user x: invalid argument: config_dir is NULL";
    int n = cage_last_error(NULL, 0);
    check(n == (int)strlen(full), "cage_last_error(NULL, 0) is the message length", n);
    char small[8];
    memset(small, 'x', sizeof small);
    n = cage_last_error(small, sizeof small);
    check(n == (int)strlen(full), "truncated copy returns the full length", n);
    check(memcmp(small, "cage_en\0", 8) == 0, "truncated copy is NUL-terminated", small[7]);
    char one[1] = {'x'};
    n = cage_last_error(one, 1);
    check(n == (int)strlen(full) && one[0] == '\0', "len 1 gives an empty string", n);
    CHECK_RC(cage_last_error(NULL, 16), CAGE_ERR_INVALID);
    check(strcmp(last_error(), full) == 0, "a refused cage_last_error keeps the message", 0);

    printf("# unknown users\n");
    CHECK_RC(cage_enter_user_at(conf, "cage-no-such-user", 0), CAGE_ERR_NO_USER);
    check_last_contains("no such user");
    CHECK_RC(cage_user_enabled_at(conf, 3999999999u), CAGE_ERR_NO_USER);
    CHECK_RC(cage_enter_at(conf, 3999999999u, 3999999999u, 0), CAGE_ERR_NO_USER);

    printf("# policy\n");
    CHECK_RC(cage_user_enabled_at(conf, caged_uid), 1);
    CHECK_RC(cage_user_enabled_at(conf, uncaged_uid), 0);
    CHECK_RC(cage_user_enabled_at(conf, 0), 0);
    CHECK_RC(cage_user_enabled(0), 0);

    printf("# not caged: nothing changes\n");
    int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0) {
        perror("/proc");
        return 2;
    }
    char mnt0[128], mnt1[128], pidc0[128], pidc1[128];
    ns_link(procfd, "self/ns/mnt", mnt0, sizeof mnt0);
    ns_link(procfd, "self/ns/pid_for_children", pidc0, sizeof pidc0);
    pid_t me = getpid();
    CHECK_RC(cage_enter_at(conf, 0, 0, 0), CAGE_NOT_CAGED);
    CHECK_RC(cage_enter(0, 0, 0), CAGE_NOT_CAGED);
    CHECK_RC(cage_enter_user_at(conf, uncaged, 0), CAGE_NOT_CAGED);
    CHECK_RC(cage_enter_user_at(conf, uncaged, CAGE_ENTER_CHILDREN_ONLY), CAGE_NOT_CAGED);
    CHECK_RC(cage_enter_at(conf, uncaged_uid, uncaged_uid, 0), CAGE_NOT_CAGED);
    ns_link(procfd, "self/ns/mnt", mnt1, sizeof mnt1);
    ns_link(procfd, "self/ns/pid_for_children", pidc1, sizeof pidc1);
    check(strcmp(mnt0, mnt1) == 0 && strcmp(pidc0, pidc1) == 0 && getpid() == me,
          "same process, same namespaces", (long)getpid());

    printf("# not root: refused\n");
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        _exit(cage_enter_user_at(conf, caged, 0) == CAGE_ERR_PERM ? 0 : 1);
    }
    int st = 0;
    waitpid(child, &st, 0);
    check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "cage_enter_user_at as nobody is CAGE_ERR_PERM",
          WIFEXITED(st) ? WEXITSTATUS(st) : -1);

    printf("# CAGE_ENTER_CHILDREN_ONLY (in a child process)\n");
    int pfd[2];
    if (pipe(pfd) != 0)
        return 2;
    child = fork();
    if (child == 0) {
        /* Everything is reported on the pipe: stdout is shared. */
        close(pfd[0]);
        FILE *out = fdopen(pfd[1], "w");
        char pid0[128], mnt[128], pid[128], pidc[128], inner[128], self[32];
        ns_link(procfd, "self/ns/pid", pid0, sizeof pid0);
        int rc = cage_enter_at(conf, caged_uid, caged_gid, CAGE_ENTER_CHILDREN_ONLY);
        fprintf(out, "rc %d\n", rc);
        if (rc != CAGE_OK) {
            fprintf(out, "error %s\n", last_error());
            fclose(out);
            _exit(1);
        }
        ns_link(procfd, "self/ns/mnt", mnt, sizeof mnt);
        ns_link(procfd, "self/ns/pid", pid, sizeof pid);
        ns_link(procfd, "self/ns/pid_for_children", pidc, sizeof pidc);
        fprintf(out, "mnt_changed %d\n", strcmp(mnt, mnt0) != 0);
        fprintf(out, "own_pid_ns_kept %d\n", strcmp(pid, pid0) == 0);
        fprintf(out, "children_pid_ns_new %d\n", strcmp(pidc, pid0) != 0);
        fflush(out);
        pid_t g = fork();
        if (g == 0) {
            /* Born in the cage: its /proc (the cage's) knows it. */
            ns_link(procfd, "self/ns/pid", inner, sizeof inner);
            ssize_t k = readlink("/proc/self", self, sizeof self - 1);
            self[k < 0 ? 0 : k] = '\0';
            fprintf(out, "grandchild_in_cage_pid_ns %d\n", strcmp(inner, pidc) == 0);
            fprintf(out, "grandchild_proc_self_works %d\n", k > 0 && atoi(self) == getpid());
            fprintf(out, "grandchild_sees_own_home %d\n", access(caged_home, F_OK) == 0);
            fprintf(out, "grandchild_lacks_other_home %d\n", access(uncaged_home, F_OK) != 0);
            fclose(out);
            _exit(0);
        }
        int gst = 0;
        waitpid(g, &gst, 0);
        fclose(out);
        _exit(WIFEXITED(gst) ? WEXITSTATUS(gst) : 1);
    }
    close(pfd[1]);
    FILE *in = fdopen(pfd[0], "r");
    char line[640], key[128];
    int val, seen = 0;
    while (fgets(line, sizeof line, in)) {
        if (strncmp(line, "error ", 6) == 0) {
            printf("  FAIL  %s", line);
            failures++;
            continue;
        }
        if (sscanf(line, "%127s %d", key, &val) != 2)
            continue;
        seen++;
        check(strcmp(key, "rc") == 0 ? val == CAGE_OK : val == 1, key, val);
    }
    fclose(in);
    waitpid(child, &st, 0);
    check(seen == 8 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "children-only child finished", seen);

    printf("capi_test: %d failures\n", failures);
    return failures ? 1 : 0;
}
