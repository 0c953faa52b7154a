/* pam_harness: loads a PAM session module and calls its pam_sm_* functions
 * directly with a real libpam handle, to see the module's own result
 * (through pam_open_session, PAM_IGNORE would be folded into the stack's).
 *
 *   pam_harness [-c COMMAND] MODULE SERVICE USER [MODULE ARGS...]
 *
 * USER "-" leaves PAM_USER unset. Prints one line: the result of
 * pam_sm_open_session by name (PAM_SUCCESS, PAM_IGNORE, PAM_SESSION_ERR or
 * the number). After PAM_SUCCESS, runs COMMAND with /bin/sh -c in a child
 * (as a session would: the child is born in the cage) and exits with its
 * status; then pam_sm_close_session must return PAM_SUCCESS. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*sm_fn)(pam_handle_t *, int, int, const char **);

static int no_conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data) {
    (void)n;
    (void)msg;
    (void)resp;
    (void)data;
    return PAM_CONV_ERR;
}

static const char *name_of(int rc) {
    switch (rc) {
    case PAM_SUCCESS:
        return "PAM_SUCCESS";
    case PAM_IGNORE:
        return "PAM_IGNORE";
    case PAM_SESSION_ERR:
        return "PAM_SESSION_ERR";
    default:
        return NULL;
    }
}

int main(int argc, char **argv) {
    const char *command = NULL;
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "-c") == 0) {
        command = argv[2];
        i = 3;
    }
    if (argc - i < 3) {
        fprintf(stderr, "usage: %s [-c COMMAND] MODULE SERVICE USER [ARGS...]\n", argv[0]);
        return 2;
    }
    const char *module = argv[i], *service = argv[i + 1], *user = argv[i + 2];
    int margc = argc - i - 3;
    const char **margv = (const char **)(argv + i + 3);

    void *dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 2;
    }
    sm_fn open_session = (sm_fn)dlsym(dl, "pam_sm_open_session");
    sm_fn close_session = (sm_fn)dlsym(dl, "pam_sm_close_session");
    if (!open_session || !close_session) {
        fprintf(stderr, "missing pam_sm_open_session or pam_sm_close_session\n");
        return 2;
    }
    struct pam_conv conv = {no_conv, NULL};
    pam_handle_t *pamh = NULL;
    int rc = pam_start(service, strcmp(user, "-") == 0 ? NULL : user, &conv, &pamh);
    if (rc != PAM_SUCCESS) {
        fprintf(stderr, "pam_start: %d\n", rc);
        return 2;
    }

    rc = open_session(pamh, 0, margc, margv);
    const char *name = name_of(rc);
    if (name)
        printf("%s\n", name);
    else
        printf("%d\n", rc);
    fflush(stdout);

    int status = 0;
    if (rc == PAM_SUCCESS && command) {
        pid_t child = fork();
        if (child == 0) {
            execl("/bin/sh", "sh", "-c", command, (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(child, &st, 0);
        status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    int crc = close_session(pamh, 0, margc, margv);
    if (crc != PAM_SUCCESS) {
        printf("close: %d\n", crc);
        status = 3;
    }
    pam_end(pamh, rc);
    return status;
}
