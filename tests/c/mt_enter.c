/* mt_enter: cage_enter from a multi-threaded process must fail with
 * CAGE_ERR_THREADS and leave the process uncaged and unchanged (unshare or
 * setns in one thread of many would move only that thread).
 *
 *   mt_enter CONFIG_DIR CAGED_USER
 *
 * Exits 0 when every check passed. */
#define _GNU_SOURCE
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "libcage.h"
#include "check.h"


static int gate[2];

static void *idle_thread(void *arg) {
    char c;
    (void)arg;
    /* Blocks until main closes the write end. */
    while (read(gate[0], &c, 1) > 0) {
    }
    return NULL;
}

struct ns {
    char mnt[128], ipc[128], pid[128], pidc[128], root[4096], cwd[4096];
};

static void link_of(const char *path, char *out, size_t len) {
    ssize_t n = readlink(path, out, len - 1);
    out[n < 0 ? 0 : n] = '\0';
}

static void snapshot(struct ns *s) {
    link_of("/proc/self/ns/mnt", s->mnt, sizeof s->mnt);
    link_of("/proc/self/ns/ipc", s->ipc, sizeof s->ipc);
    link_of("/proc/self/ns/pid", s->pid, sizeof s->pid);
    link_of("/proc/self/ns/pid_for_children", s->pidc, sizeof s->pidc);
    link_of("/proc/self/root", s->root, sizeof s->root);
    link_of("/proc/self/cwd", s->cwd, sizeof s->cwd);
}

static int same(const struct ns *a, const struct ns *b) {
    return a->mnt[0] && strcmp(a->mnt, b->mnt) == 0 && strcmp(a->ipc, b->ipc) == 0 &&
           strcmp(a->pid, b->pid) == 0 && strcmp(a->pidc, b->pidc) == 0 &&
           strcmp(a->root, b->root) == 0 && strcmp(a->cwd, b->cwd) == 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONFIG_DIR CAGED_USER\n", argv[0]);
        return 2;
    }
    const char *conf = argv[1], *user = argv[2];
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        fprintf(stderr, "no user %s\n", user);
        return 2;
    }
    uid_t uid = pw->pw_uid;
    gid_t gid = pw->pw_gid;

    check(cage_user_enabled_at(conf, uid) == 1, "the user is caged", cage_user_enabled_at(conf, uid));
    if (pipe(gate) != 0)
        return 2;
    pthread_t t;
    if (pthread_create(&t, NULL, idle_thread, NULL) != 0)
        return 2;

    struct ns before, after;
    snapshot(&before);
    pid_t me = getpid();
    char msg[256];
    int rc;

    rc = cage_enter_at(conf, uid, gid, 0);
    check(rc == CAGE_ERR_THREADS, "cage_enter_at == CAGE_ERR_THREADS", rc);
    cage_last_error(msg, sizeof msg);
    printf("        last error: %s\n", msg);
    check(strstr(msg, "thread") != NULL, "the last error explains it", 0);

    rc = cage_enter_user_at(conf, user, 0);
    check(rc == CAGE_ERR_THREADS, "cage_enter_user_at == CAGE_ERR_THREADS", rc);
    rc = cage_enter_user_at(conf, user, CAGE_ENTER_CHILDREN_ONLY);
    check(rc == CAGE_ERR_THREADS, "cage_enter_user_at(CHILDREN_ONLY) == CAGE_ERR_THREADS", rc);

    snapshot(&after);
    check(getpid() == me, "still the same process (no supervisor)", (long)getpid());
    check(same(&before, &after), "namespaces, root and cwd unchanged", 0);
    printf("        mnt %s -> %s\n", before.mnt, after.mnt);
    check(access("/etc/shadow", F_OK) == 0, "still sees the host /etc/shadow", 0);

    close(gate[1]);
    pthread_join(t, NULL);
    printf("mt_enter: %d failures\n", failures);
    return failures ? 1 : 0;
}
