/* tools/mesarun_child.c - COMMAND's life under mesarun (DESIGN §3, §7):
 * the pusher thread, spawning COMMAND in its start directory with its
 * environment, forwarding the signals mesarun is sent, waiting, reaping
 * stragglers as a child subreaper (SIGTERM, then SIGKILL after --grace),
 * and the final drain with its report. mesarun's own descriptors are
 * closed on exec, the ones it was given are COMMAND's.
 *
 * Invariant: the drain starts only when no process of the mount is left,
 * so no write can land after it; a signal that the terminal already sent
 * to the whole foreground group (si_code SI_KERNEL) is not sent twice, and
 * a signal ignored when mesarun started stays ignored for COMMAND.
 * Signals are taken synchronously from a signalfd: no handlers.
 */
#include "config.h"
#include "mesarun.h"
#include "embedded.h"
#include "mesarun_proxy.h"
#include "mesarun_sandbox.h"
#include "mesarun_trap.h"
#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KILL_WAIT_MS 10000 /* after SIGKILL: how long to wait for the dead */

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
static int ignored_at_start[NSIG]; /* SIG_IGN when mesarun started */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ signals */

static int was_ignored(int sig)
{
    struct sigaction sa;
    return sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN;
}

int mr_signals_setup(mr_t *m)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {
        ignored_at_start[forwarded[i]] = was_ignored(forwarded[i]);
        sigaddset(&set, forwarded[i]);
    }
    ignored_at_start[SIGPIPE] = was_ignored(SIGPIPE);
    signal(SIGPIPE, SIG_IGN); /* a closed stderr must not kill the drain */
    int rc = pthread_sigmask(SIG_BLOCK, &set, &m->oldmask);
    if (rc != 0)
        return mr_fail("cannot block signals: %s", strerror(rc));
    if ((m->sigfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
        return mr_fail("signalfd: %s", strerror(errno));
    if (prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) < 0)
        return mr_fail("cannot become a child subreaper: %s", strerror(errno));
    return 0;
}

/* Send COMMAND a signal mesarun got, unless the terminal sent it to the
 * whole group already or it was ignored to begin with. */
static void forward(pid_t pid, const struct signalfd_siginfo *si)
{
    if (si->ssi_signo < NSIG && !ignored_at_start[si->ssi_signo] && si->ssi_code != SI_KERNEL)
        kill(pid, (int)si->ssi_signo);
}

/* ------------------------------------------------------------ pusher */

static void *pusher_main(void *arg)
{
    mr_t *m = arg;
    int rc = mesa_pusher_run(m->pusher, &m->pusher_stop, 200);
    if (rc < 0)
        fprintf(stderr,
                "mesarun: warning: cannot watch %s/staging (%s): writes are pushed "
                "when COMMAND ends\n",
                m->run, strerror(-rc));
    return NULL;
}

/* Has this process an inotify descriptor with a watch (the pusher's)? */
static int watching(void)
{
    DIR *d = opendir("/proc/self/fdinfo");
    struct dirent *de;
    int found = 0;
    while (d && !found && (de = readdir(d)) != NULL) {
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/proc/self/fdinfo/%s", de->d_name);
        int fd = de->d_name[0] == '.' ? -1 : open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0)
            close(fd);
        if (n > 0) {
            buf[n] = '\0';
            found = strstr(buf, "inotify wd:") != NULL;
        }
    }
    if (d)
        closedir(d);
    return found;
}

/* A file closed before the pusher's watch exists would only be pushed by
 * the drain: wait (at most 1 s) for the watch before COMMAND starts. */
static void wait_for_watch(void)
{
    for (int i = 0; i < 200 && !watching(); i++) {
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
}

int mr_pusher_start(mr_t *m)
{
    mr_default_author(m);
    mesa_pusher_opts_t o = {.run_dir = m->run,
                            .cache_dir = m->cache,
                            .log = m->o.verbose ? mr_log : NULL,
                            .author_name = m->o.author_name[0] ? m->o.author_name : NULL,
                            .author_email = m->o.author_email};
    if (mesa_client_clone(m->tclient, &m->pclient) < 0)
        return mr_fail("out of memory");
    o.client = m->pclient;
    int rc = mesa_pusher_new(&o, &m->pusher);
    if (rc < 0)
        return mr_fail("pusher: %s", strerror(-rc));
    rc = pthread_create(&m->pusher_th, NULL, pusher_main, m);
    if (rc != 0)
        return mr_fail("pusher thread: %s", strerror(rc));
    m->pusher_started = 1;
    wait_for_watch();
    return 0;
}

void mr_pusher_stop(mr_t *m)
{
    if (!m->pusher_started)
        return;
    m->pusher_stop = 1;
    mesa_pusher_wake(m->pusher);
    pthread_join(m->pusher_th, NULL);
    m->pusher_started = 0;
}

/* ------------------------------------------------------------ descriptors */

static int *inherited; /* descriptors open when mesarun started (COMMAND's too) */
static size_t ninherited;

/* Call fn for every open descriptor but the scan's own. */
static void each_fd(void (*fn)(int fd))
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (!*end && de->d_name[0] && fd != dirfd(d))
            fn((int)fd);
    }
    if (d)
        closedir(d);
}

static void note_fd(int fd)
{
    int *n = realloc(inherited, (ninherited + 1) * sizeof *n);
    if (n) {
        inherited = n;
        inherited[ninherited++] = fd;
    }
}

void mr_note_fds(void)
{
    each_fd(note_fd);
}

/* mesarun's own descriptors (libcurl does not open its sockets with
 * O_CLOEXEC) must not leak into COMMAND; the ones mesarun was given must. */
static void cloexec_if_ours(int fd)
{
    for (size_t i = 0; i < ninherited; i++)
        if (inherited[i] == fd)
            return;
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0 && !(fl & FD_CLOEXEC))
        fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

/* ------------------------------------------------------------ spawn */

/* Is COMMAND a path inside the mount? The kernel cannot exec it; a shell
 * with the shim preloaded can. */
static int in_mount(const mr_t *m, const char *cmd)
{
    char norm[PATH_MAX];
    if (!strchr(cmd, '/'))
        return 0; /* PATH lookup */
    if (cmd[0] != '/')
        return m->vcwd[0] != '\0';
    return mesa_path_normalize(m->o.prefix, "/", cmd, norm, sizeof norm) == 0 &&
           mesa_path_under(m->o.prefix, norm);
}

/* COMMAND's argv, through "/bin/sh -c 'exec "$0" "$@"'" for a path in
 * the mount. *tramp is malloc'd (or NULL). */
static char **command_argv(mr_t *m, char ***tramp)
{
    static char sh[] = "/bin/sh", dash_c[] = "-c", script[] = "exec \"$0\" \"$@\"";
    size_t n = 0;
    *tramp = NULL;
    if (!in_mount(m, m->o.argv[0]))
        return m->o.argv;
    while (m->o.argv[n])
        n++;
    char **a = calloc(n + 4, sizeof *a); /* sh -c script argv... NULL */
    if (!a)
        return m->o.argv;
    a[0] = sh;
    a[1] = dash_c;
    a[2] = script;
    memcpy(a + 3, m->o.argv, n * sizeof *a);
    *tramp = a;
    return a;
}

/* Is the entry "NAME=..." named in --unset-env? */
static int unset_by_option(const mr_t *m, const char *entry)
{
    for (size_t i = 0; i < m->o.nunset; i++) {
        size_t l = strlen(m->o.unset_env[i]);
        if (strncmp(entry, m->o.unset_env[i], l) == 0 && entry[l] == '=')
            return 1;
    }
    return 0;
}

/* COMMAND's environment: m->envp without the --unset-env variables, with
 * TMPDIR for --private-tmp (an array of borrowed strings, malloc'd). */
static char **command_env(mr_t *m, char *tmpdir_var)
{
    size_t n = 0, k = 0;
    while (m->envp[n])
        n++;
    char **e = calloc(n + 2, sizeof *e);
    if (!e)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int tmpdir = m->privtmp[0] && strncmp(m->envp[i], "TMPDIR=", 7) == 0;
        if (!tmpdir && !unset_by_option(m, m->envp[i]))
            e[k++] = m->envp[i];
    }
    if (m->privtmp[0])
        e[k++] = tmpdir_var;
    return e;
}

/* The embedded server's data and key directories, canonical, that exist
 * and are not beneath a writable place (which would make them readable:
 * Landlock rules only add). Says so with -v. */
static size_t sandbox_hidden(const mr_t *m, const char *const *rw, size_t nrw,
                             char out[2][PATH_MAX])
{
    char dirs[2][PATH_MAX];
    size_t n = 0;
    if (mesa_embedded_dirs(dirs[0], dirs[1], PATH_MAX) < 0)
        return 0;
    for (int i = 0; i < 2; i++) {
        char *c = realpath(dirs[i], NULL);
        size_t k = 0;
        while (c && k < nrw && !mr_beneath(c, rw[k]))
            k++;
        if (c && k < nrw && m->o.verbose)
            fprintf(stderr, "mesarun: sandbox: %s stays readable: it is beneath %s\n", c, rw[k]);
        else if (c)
            snprintf(out[n++], PATH_MAX, "%s", c);
        free(c);
    }
    return n;
}

/* --sandbox: build the filter and the ruleset (before the fork). The
 * writable places: the run's own files but its state, the local store of
 * ignored files, /tmp (or the private one); the caches are read-only (the
 * proxy fills them) and the embedded server's key and data unreadable. */
static int sandbox_prepare(mr_t *m)
{
    static const char *const run_rw[] = {"cwd", "exec", "journal", "staging", "lib", "tmp"};
    char paths[8][PATH_MAX], hidden[2][PATH_MAX];
    const char *rw[16], *hid[2];
    size_t n = 0, nh;
    char err[300];
    for (size_t i = 0; i < sizeof run_rw / sizeof run_rw[0]; i++) {
        if (mr_path(paths[i], "%s/%s", m->run, run_rw[i]) < 0)
            return ENAMETOOLONG;
        if (strcmp(run_rw[i], "lib") == 0) /* made on first use, in a directory we keep */
            mkdir(paths[i], 0700);
        rw[n++] = paths[i];
    }
    if (mr_path(paths[6], "%s/local", m->cache) < 0)
        return ENAMETOOLONG;
    mkdir(paths[6], 0700);
    rw[n++] = paths[6];
    if (m->execdir[0])
        rw[n++] = m->execdir;
    if (!m->o.private_tmp)
        rw[n++] = "/tmp";
    nh = sandbox_hidden(m, rw, n, hidden);
    for (size_t k = 7; m->o.verbose && k < n; k++) /* rw[7..]: exec/, /tmp */
        if (mr_beneath(m->cache, rw[k]))
            fprintf(stderr, "mesarun: sandbox: the cache %s stays writable: it is beneath %s\n",
                    m->cache, rw[k]);
    for (size_t i = 0; i < nh; i++)
        hid[i] = hidden[i];
    mr_sandbox_conf_t c = {.allow_net = m->o.allow_net, .verbose = m->o.verbose && !m->o.trap_raw, .rw = rw,
                           .nrw = n, .hidden = hid, .nhidden = nh};
    int rc = mr_sandbox_prepare(&c, &m->sandbox, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "mesarun: --sandbox: %s\n", err);
        return -rc;
    }
    char sock[PATH_MAX], state[PATH_MAX];
    mr_proxy_conf_t pc = {.socket = sock, .state = state, .url = m->url, .token = m->token,
                          .cache = m->cache, .cache_size = m->o.cache_size,
                          .verbose = m->o.verbose};
    if (mr_path(sock, "%s/proxy.sock", m->run) < 0 || mr_path(state, "%s/state", m->run) < 0 ||
        (rc = mr_proxy_start(&pc, &m->proxy)) < 0) {
        fprintf(stderr, "mesarun: --sandbox: cannot start the proxy on %s: %s\n", sock,
                strerror(rc < 0 ? -rc : ENAMETOOLONG));
        return rc < 0 ? -rc : ENAMETOOLONG;
    }
    /* the token lives in this process: not readable through /proc by the
     * sandbox (nor by other programs of the user) */
    prctl(PR_SET_DUMPABLE, 0);
    int abi = mr_sandbox_landlock_abi(m->sandbox);
    if (m->o.verbose && abi)
        fprintf(stderr, "mesarun: sandbox: Landlock ABI %d: the host is read-only outside %s%s\n",
                abi, m->run, m->o.private_tmp ? "" : " and /tmp");
    else if (m->o.verbose)
        fprintf(stderr, "mesarun: sandbox: this kernel has no Landlock: the host filesystem "
                        "stays writable (the seccomp filter still applies)\n");
    return 0;
}

/* --sandbox (or --trap-raw for a COMMAND to trap): fork, confine, hand
 * the trap's listener over, exec. The child only makes system calls (the
 * filters were built before); an exec failure comes back on a pipe. */
static int spawn_sandboxed(mr_t *m, pid_t *pid, char **argv, char **envp, int trap)
{
    int ep[2], err = 0;
    if (pipe2(ep, O_CLOEXEC) < 0)
        return errno;
    pid_t p = fork();
    if (p < 0) {
        err = errno;
        close(ep[0]);
        close(ep[1]);
        return err;
    }
    if (p == 0) {
        if (!ignored_at_start[SIGPIPE])
            signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &m->oldmask, NULL);
        int rc = chdir(m->kcwd) < 0 ? -errno : m->sandbox ? mr_sandbox_apply(m->sandbox) : 0;
        if (rc == 0 && trap)
            mr_trap_apply(m->trap);
        if (rc == 0) {
            execvpe(argv[0], argv, envp);
            rc = -errno;
        }
        err = -rc;
        (void)!write(ep[1], &err, sizeof err);
        _exit(127);
    }
    close(ep[1]);
    ssize_t r;
    while ((r = read(ep[0], &err, sizeof err)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (r == (ssize_t)sizeof err) {
        while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
            ;
        return err;
    }
    *pid = p;
    if (m->sandbox && mr_sandbox_start(m->sandbox) < 0)
        mr_log(NULL, "warning: --sandbox -v: refused calls will not be logged");
    return 0;
}

/* Start COMMAND: 0 and *pid, or an errno (exec failed: ENOENT, EACCES, ...). */
static int spawn(mr_t *m, pid_t *pid)
{
    posix_spawnattr_t a;
    posix_spawn_file_actions_t fa;
    sigset_t def;
    char **tramp;
    sigemptyset(&def);
    if (!ignored_at_start[SIGPIPE])
        sigaddset(&def, SIGPIPE);
    posix_spawnattr_init(&a);
    posix_spawnattr_setflags(&a, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&a, &m->oldmask);
    posix_spawnattr_setsigdefault(&a, &def);
    posix_spawn_file_actions_init(&fa);
    int rc = posix_spawn_file_actions_addchdir_np(&fa, m->kcwd);
    char **argv = command_argv(m, &tramp);
    char tmpdir_var[PATH_MAX + 8];
    snprintf(tmpdir_var, sizeof tmpdir_var, "TMPDIR=%s", m->privtmp);
    char **envp = command_env(m, tmpdir_var);
    if (rc == 0 && !envp)
        rc = ENOMEM;
    int trap = rc == 0 && mr_trap_wants(m->trap, argv[0], m->kcwd);
    if (rc == 0 && (m->o.sandbox || trap))
        rc = spawn_sandboxed(m, pid, argv, envp, trap);
    else if (rc == 0)
        rc = posix_spawnp(pid, argv[0], &fa, &a, argv, envp);
    free(envp);
    free(tramp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&a);
    return rc;
}

/* ------------------------------------------------------------ waiting */

/* Reap every child that has exited; 1 if pid was one (*status). */
static int reap(pid_t pid, int *status)
{
    int found = 0, st;
    pid_t w;
    while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
        if (w == pid) {
            *status = st;
            found = 1;
        }
    }
    return found;
}

/* Wait for COMMAND, forwarding signals; its wait status. */
static int wait_command(mr_t *m, pid_t pid)
{
    int status = 0;
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(m->sigfd, &si, sizeof si);
        if (n < 0 && errno == EINTR)
            continue;
        if (n != (ssize_t)sizeof si) { /* cannot happen: wait without forwarding */
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return status;
        }
        if (si.ssi_signo == SIGCHLD && reap(pid, &status))
            return status;
        if (si.ssi_signo != SIGCHLD)
            forward(pid, &si);
    }
}

/* ------------------------------------------------------------ stragglers */

typedef struct proc {
    pid_t pid, ppid;
    char state;
} proc_t;

static int read_proc(pid_t pid, proc_t *p)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')'); /* comm may hold spaces and ')' */
    int ppid;
    if (!rp || sscanf(rp + 1, " %c %d", &p->state, &ppid) != 2)
        return -1;
    p->pid = pid;
    p->ppid = (pid_t)ppid;
    return 0;
}

/* Every process on the system (malloc'd array, count in *n). */
static proc_t *all_procs(size_t *n)
{
    DIR *d = opendir("/proc");
    proc_t *ps = NULL;
    size_t cap = 0;
    struct dirent *de;
    *n = 0;
    while (d && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0)
            continue;
        if (*n == cap) {
            proc_t *np = realloc(ps, (cap = cap ? cap * 2 : 512) * sizeof *ps);
            if (!np)
                break;
            ps = np;
        }
        if (read_proc((pid_t)pid, &ps[*n]) == 0)
            (*n)++;
    }
    if (d)
        closedir(d);
    return ps;
}

/* Is ppid this process or one already known to descend from it? */
static int parent_is_mine(const proc_t *ps, size_t n, const char *mine, pid_t ppid, pid_t self)
{
    if (ppid == self)
        return 1;
    for (size_t j = 0; j < n; j++)
        if (mine[j] && ps[j].pid == ppid)
            return 1;
    return 0;
}

/* The live (not zombie) descendants of this process, up to max. */
static size_t descendants(pid_t *out, size_t max)
{
    size_t n, k = 0;
    proc_t *ps = all_procs(&n);
    char *mine = calloc(n ? n : 1, 1);
    pid_t self = getpid();
    for (int changed = 1; changed && mine;) {
        changed = 0;
        for (size_t i = 0; i < n; i++)
            if (!mine[i] && parent_is_mine(ps, n, mine, ps[i].ppid, self))
                mine[i] = changed = 1;
    }
    for (size_t i = 0; mine && i < n && k < max; i++)
        if (mine[i] && ps[i].state != 'Z')
            out[k++] = ps[i].pid;
    free(mine);
    free(ps);
    return k;
}

/* Wait up to ms for a signal: 1 if it asks to stop now (INT, TERM, ...). */
static int wait_signal(mr_t *m, int ms)
{
    struct pollfd p = {.fd = m->sigfd, .events = POLLIN};
    struct signalfd_siginfo si;
    if (poll(&p, 1, ms) <= 0 || read(m->sigfd, &si, sizeof si) != (ssize_t)sizeof si)
        return 0;
    return si.ssi_signo != SIGCHLD && si.ssi_signo < NSIG && !ignored_at_start[si.ssi_signo];
}

static int contains(const pid_t *a, size_t n, pid_t p)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] == p)
            return 1;
    return 0;
}

/* SIGTERM (and SIGCONT, for stopped ones) once to each straggler. */
static void terminate(pid_t *done, size_t *ndone, size_t cap, const pid_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (contains(done, *ndone, d[i]))
            continue;
        kill(d[i], SIGTERM);
        kill(d[i], SIGCONT);
        if (*ndone < cap)
            done[(*ndone)++] = d[i];
    }
}

/* After COMMAND: no process of the mount may outlive it (they could write
 * after the drain). SIGTERM, SIGKILL after --grace (or at once on another
 * INT/TERM), until none is left. */
static void reap_stragglers(mr_t *m)
{
    enum { MAX = 4096 };
    static pid_t d[MAX], termed[MAX];
    size_t nterm = 0, n;
    int64_t deadline = now_ms() + m->o.grace * 1000, kill_deadline = -1;
    int status, kill_all = m->o.grace == 0;
    for (int round = 0; reap(-1, &status), (n = descendants(d, MAX)) > 0; round++) {
        int64_t now = now_ms();
        if (round == 0 && m->o.verbose)
            fprintf(stderr, "mesarun: COMMAND exited; ending %zu leftover process(es)\n", n);
        kill_all = kill_all || now >= deadline;
        if (!kill_all)
            terminate(termed, &nterm, MAX, d, n);
        for (size_t i = 0; kill_all && i < n; i++)
            kill(d[i], SIGKILL);
        if (kill_all && kill_deadline < 0)
            kill_deadline = now + KILL_WAIT_MS;
        if (kill_deadline >= 0 && now > kill_deadline) {
            fprintf(stderr, "mesarun: warning: %zu process(es) survive SIGKILL\n", n);
            return;
        }
        if (wait_signal(m, 50))
            kill_all = 1;
    }
}

int mr_run_command(mr_t *m)
{
    pid_t pid;
    /* The setup clients' connections close now; the threads that open
     * others (the follower; the pusher once there is something to push)
     * do so after the spawn, so no socket can leak into COMMAND. */
    mesa_client_free(m->client);
    mesa_client_free(m->tclient);
    m->client = m->tclient = NULL;
    each_fd(cloexec_if_ours);
    int rc = 0;
    if (m->o.private_tmp &&
        (mr_path(m->privtmp, "%s/tmp", m->run) < 0 || (mkdir(m->privtmp, 0700) < 0 && errno != EEXIST)))
        rc = errno;
    if (rc == 0 && m->o.sandbox)
        rc = sandbox_prepare(m);
    if (rc == 0)
        rc = mr_trap_begin(m);
    if (rc == 0)
        rc = spawn(m, &pid);
    if (rc == 0 && mr_follow_start(m, &m->follow) < 0)
        mr_log(NULL, "warning: cannot follow the event stream: remote writes stay unseen");
    if (rc != 0) {
        fprintf(stderr, "mesarun: %s: %s\n", m->o.argv[0], strerror(rc));
        reap_stragglers(m);
        mr_trap_free(m->trap);
        m->trap = NULL;
        mr_proxy_stop(m->proxy);
        m->proxy = NULL;
        return rc == ENOENT || rc == ENOTDIR ? MR_EXIT_NOT_FOUND : MR_EXIT_CANNOT_EXEC;
    }
    int status = wait_command(m, pid);
    reap_stragglers(m);
    mr_trap_free(m->trap);
    m->trap = NULL;
    mr_sandbox_free(m->sandbox);
    m->sandbox = NULL;
    mr_proxy_stop(m->proxy);
    m->proxy = NULL;
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

/* ------------------------------------------------------------ drain */

static void print_pending(void *ctx, const char *path)
{
    (void)ctx;
    fprintf(stderr, "  %s\n", path);
}

int mr_drain(mr_t *m, int status)
{
    mesa_error_t e = {0};
    mr_pusher_stop(m);
    int rc = mesa_pusher_drain(m->pusher, 20, &e);
    if (rc == 0)
        return 0;
    char why[700];
    if (rc == -EAGAIN)
        snprintf(why, sizeof why, "still pending after 20 batches");
    else if (rc == -EBADMSG && !e.message[0])
        snprintf(why, sizeof why, "the journal has a malformed record");
    else if (e.status)
        snprintf(why, sizeof why, "%s (HTTP %ld%s%s)", e.message, e.status, e.code[0] ? ", " : "",
                 e.code);
    else
        snprintf(why, sizeof why, "%s", e.message[0] ? e.message : strerror(-rc));
    fprintf(stderr, "mesarun: could not push %zu path(s): %s\n",
            mesa_pusher_pending(m->pusher, NULL, NULL), why);
    mesa_pusher_pending(m->pusher, print_pending, NULL);
    fprintf(stderr, "mesarun: COMMAND exited with status %d\n", status);
    fprintf(stderr, "mesarun: pending writes kept in %s; run: mesa push-pending %s\n", m->run,
            m->run);
    return MR_EXIT_PENDING;
}
