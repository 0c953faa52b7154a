/*
 * timeit: wall time of one command, run many times, in microseconds.
 *
 *   timeit [-n RUNS] [-w WARMUP] [-j JOBS] [-p PREP] [-e ERRFILE] [-o RAWFILE]
 *          [-M COUNT:DIR] -- CMD [ARG...]
 *   timeit -S RAWFILE...
 *
 * Each run is posix_spawn + waitpid of CMD (stdout to /dev/null, stderr to
 * ERRFILE or /dev/null), timed with CLOCK_MONOTONIC around the pair; the
 * harness itself adds ~the cost of one vfork+exec+wait, which every row of a
 * table pays alike. PREP, when given, runs through /bin/sh -c before each
 * run, untimed (e.g. unpinning a cage so that the next run builds it).
 * WARMUP runs are done first and not recorded.
 *
 * With -j JOBS, JOBS worker processes run RUNS in total concurrently (no
 * PREP); each run's latency is recorded and the wall time of the whole batch
 * gives the throughput.
 *
 * -o appends every run's time (or "fail") to RAWFILE, one a line, so that
 * samples taken in several interleaved rounds can be merged; -S prints the
 * summary of such files (wall and rate are then 0).
 *
 * -M COUNT:DIR first moves the harness into a private mount namespace (a
 * copy of the caller's) and mounts COUNT small tmpfs on DIR/0 .. DIR/COUNT-1
 * (directories created as needed): every run then starts from a mount
 * table COUNT entries larger. The mounts exist only in that namespace and
 * vanish with the harness, whatever happens to it.
 *
 * Output, one line on stdout (all times in microseconds):
 *   n=RUNS fail=F med=.. p10=.. p90=.. mean=.. sd=.. min=.. max=.. wall=.. rate=RUNS/s mounts=M
 * (mounts: lines of the harness's /proc/self/mountinfo when it started).
 * A run fails when CMD does not exit 0; the exit status is 0 when at least
 * one run succeeded, 1 otherwise, 2 on usage errors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int errfd = -1, nullfd = -1;

/* Runs argv once; returns its wall time in µs, negative when it failed. */
static double run_once(char **argv)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, nullfd, 0);
    posix_spawn_file_actions_adddup2(&fa, nullfd, 1);
    posix_spawn_file_actions_adddup2(&fa, errfd >= 0 ? errfd : nullfd, 2);
    pid_t pid;
    int status;
    double t0 = now_us();
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    if (rc == 0) {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    double dt = now_us() - t0;
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        if (errfd >= 0)
            dprintf(errfd, "timeit: cannot run %s: %s\n", argv[0], strerror(rc));
        return -1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (errfd >= 0)
            dprintf(errfd, "timeit: %s: %s %d\n", argv[0],
                    WIFEXITED(status) ? "exit" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        return -1;
    }
    return dt;
}

static int run_prep(const char *prep)
{
    char *argv[] = {"/bin/sh", "-c", (char *)prep, NULL};
    return run_once(argv) < 0 ? -1 : 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p)
{
    if (n == 0)
        return NAN;
    double pos = p * (n - 1);
    int i = (int)pos;
    double f = pos - i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

static void usage(void)
{
    fprintf(stderr, "usage: timeit [-n RUNS] [-w WARMUP] [-j JOBS] [-p PREP] [-e ERRFILE] [-o RAWFILE]\n"
                    "              [-M COUNT:DIR] -- CMD [ARG...]\n"
                    "       timeit -S RAWFILE...\n");
    exit(2);
}

static int count_mounts(void)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    int n = 0, c;
    if (!f)
        return -1;
    while ((c = getc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static int extra_mounts(const char *spec)
{
    char dir[4096], path[4200];
    int count;
    if (sscanf(spec, "%d:%4095s", &count, dir) != 2 || count < 0)
        return -1;
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
        perror("timeit: private mount namespace");
        return -1;
    }
    mkdir(dir, 0755);
    for (int i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/%d", dir, i);
        if ((mkdir(path, 0755) < 0 && errno != EEXIST) ||
            mount("bench", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,nr_inodes=16") < 0) {
            fprintf(stderr, "timeit: mount %s: %s\n", path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void summary(double *lat, int runs, double wall, int mounts)
{
    int ok = 0, fail = 0;
    double sum = 0;
    for (int i = 0; i < runs; i++) {
        if (lat[i] < 0) {
            fail++;
            continue;
        }
        lat[ok++] = lat[i];
        sum += lat[i];
    }
    qsort(lat, ok, sizeof(double), cmp);
    double mean = ok ? sum / ok : NAN, var = 0;
    for (int i = 0; i < ok; i++)
        var += (lat[i] - mean) * (lat[i] - mean);
    double sd = ok > 1 ? sqrt(var / (ok - 1)) : 0;
    printf("n=%d fail=%d med=%.1f p10=%.1f p90=%.1f mean=%.1f sd=%.1f min=%.1f max=%.1f wall=%.0f rate=%.1f mounts=%d\n",
           ok, fail, pct(lat, ok, 0.5), pct(lat, ok, 0.1), pct(lat, ok, 0.9), mean, sd,
           ok ? lat[0] : NAN, ok ? lat[ok - 1] : NAN, wall, wall > 0 ? ok / (wall / 1e6) : 0.0, mounts);
}

/* -S: summary of raw files. */
static int stats(char **files, int nfiles)
{
    size_t cap = 1024, n = 0;
    double *v = malloc(cap * sizeof *v);
    char line[64];
    for (int i = 0; i < nfiles; i++) {
        FILE *f = fopen(files[i], "r");
        if (!f)
            continue;
        while (fgets(line, sizeof line, f)) {
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof *v);
            v[n++] = strncmp(line, "fail", 4) == 0 ? -1 : strtod(line, NULL);
        }
        fclose(f);
    }
    summary(v, (int)n, 0, -1);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 100, warm = 3, jobs = 1, opt;
    const char *prep = NULL, *errpath = NULL, *rawpath = NULL, *mspec = NULL;
    while ((opt = getopt(argc, argv, "+n:w:j:p:e:o:M:S")) != -1) {
        switch (opt) {
        case 'S': return stats(argv + optind, argc - optind);
        case 'o': rawpath = optarg; break;
        case 'M': mspec = optarg; break;
        case 'n': runs = atoi(optarg); break;
        case 'w': warm = atoi(optarg); break;
        case 'j': jobs = atoi(optarg); break;
        case 'p': prep = optarg; break;
        case 'e': errpath = optarg; break;
        default: usage();
        }
    }
    if (optind >= argc || runs < 1 || jobs < 1 || warm < 0)
        usage();
    char **cmd = argv + optind;
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (errpath)
        errfd = open(errpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    signal(SIGPIPE, SIG_IGN);
    if (mspec && extra_mounts(mspec) < 0)
        return 2;
    int mounts = count_mounts();

    /* Shared so that -j workers can record into it. */
    double *lat = mmap(NULL, sizeof(double) * runs, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (lat == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    for (int i = 0; i < warm; i++) {
        if (prep)
            run_prep(prep);
        run_once(cmd);
    }
    double w0 = now_us();
    if (jobs == 1) {
        for (int i = 0; i < runs; i++) {
            if (prep && run_prep(prep) < 0 && errfd >= 0)
                dprintf(errfd, "timeit: prep failed: %s\n", prep);
            lat[i] = run_once(cmd);
        }
    } else {
        for (int j = 0; j < jobs; j++) {
            pid_t p = fork();
            if (p < 0) {
                perror("fork");
                return 2;
            }
            if (p == 0) {
                for (int i = j; i < runs; i += jobs)
                    lat[i] = run_once(cmd);
                _exit(0);
            }
        }
        while (wait(NULL) > 0 || errno == EINTR)
            ;
    }
    double wall = now_us() - w0;

    if (rawpath) {
        FILE *f = fopen(rawpath, "a");
        if (f) {
            for (int i = 0; i < runs; i++)
                lat[i] < 0 ? fprintf(f, "fail\n") : fprintf(f, "%.1f\n", lat[i]);
            fclose(f);
        }
    }
    int any = 0;
    for (int i = 0; i < runs; i++)
        any |= lat[i] >= 0;
    summary(lat, runs, wall, mounts);
    return any ? 0 : 1;
}
