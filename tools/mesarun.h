/* tools/mesarun.h - shared state of the launcher `mesarun` (DESIGN §7,
 * docs/MOUNT.md "What mesarun exports"), split by phase:
 *   mesarun.c         options, main: the order of the phases, exit status
 *   mesarun_setup.c   connection, repo states, token, $RUN, $CACHE, COMMAND's environment
 *   mesarun_follow.c  the event follower thread (remote writes to mounted changes)
 *   mesarun_child.c   COMMAND: spawn, signal forwarding, straggler reaping; the drain
 * Exit status: COMMAND's (128+N for signal N), 2 for a bad option (before
 * COMMAND starts), 1 when the mount cannot be set up, 75 when writes are
 * left unpushed, 126/127 when COMMAND cannot be executed / is not found.
 */
#ifndef MESARUN_H
#define MESARUN_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "client.h"
#include "layout.h"
#include "pusher.h"
#include "state.h"

#define MR_ROOT_CHANGE "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
#define MR_MAX_REPOS MESA_STATE_MAX_REPOS

enum {
    MR_EXIT_FAIL = 1,
    MR_EXIT_USAGE = 2,
    MR_EXIT_PENDING = 75,
    MR_EXIT_CANNOT_EXEC = 126,
    MR_EXIT_NOT_FOUND = 127,
};

typedef struct mr_repo {
    char org[101]; /* "" until the client's org is known, unless given as ORG/NAME */
    char name[101];
    const char *want_bookmark; /* --bookmark, or NULL */
    const char *want_change;   /* --change, or NULL */
    const char *want_branched; /* --branched-from BOOKMARK|CHANGE, or NULL */
    const char *want_as;       /* --as BOOKMARK (with --branched-from), or NULL */
    int read_only;             /* --read-only */
    /* resolved against the server */
    char bookmark[256]; /* "" when mounted at a change */
    char change_id[33];
    char commit[41];
    char after[24]; /* event cursor: the newest event id before the state was read */
} mr_repo_t;

typedef struct mr_opts {
    mr_repo_t repos[MR_MAX_REPOS];
    size_t nrepos;
    long ttl;
    int ttl_given;
    const char *cache_dir; /* --cache-dir or NULL */
    uint64_t cache_size;   /* 0 = auto */
    int memory_cache, push_ignored, verbose;
    int sandbox, allow_net, private_tmp; /* --sandbox and its options */
    int trap_raw;                        /* --trap-raw: 1, --trap-raw=all: 2 */
    const char *unset_env[64];           /* --unset-env NAME */
    char author_name[256], author_email[256]; /* --author, else "" */
    size_t nunset;
    long grace;
    char prefix[256]; /* normalised, default /mesa */
    int prefix_given; /* --prefix: with --layout, the canonical tree stays visible */
    const char *cwd;  /* --cwd or NULL */
    const char *org, *url;
    char **argv; /* COMMAND */
    const char *layout_file; /* --layout FILE, or NULL */
    mesa_layout_t layout;    /* its mount points (core/layout.h) */
} mr_opts_t;

typedef struct mr_follow mr_follow_t;

typedef struct mr {
    mr_opts_t o;
    /* connection */
    char url[4300];
    char org[101];
    char api_key[256];      /* "" when only an access token was given */
    char *token;            /* the mount's token (malloc'd) */
    mesa_client_t *client;  /* raw key (or the given token): setup calls only */
    mesa_client_t *tclient; /* the mount's token: clones go to the threads */
    /* local layout */
    char shim[PATH_MAX];
    /* the LD_AUDIT module ("" without one: MESA_AUDIT=), its resolver */
    char audit[PATH_MAX], ldhelper[PATH_MAX];
    char run[PATH_MAX];     /* $RUN */
    char cache[PATH_MAX];   /* $CACHE */
    char memdir[PATH_MAX];  /* the --memory-cache directory, or "" */
    char execdir[PATH_MAX]; /* exec/ when it is not $RUN/exec, or "" */
    char vcwd[PATH_MAX];    /* COMMAND's virtual cwd, "" for a real one */
    char kcwd[PATH_MAX];    /* the directory COMMAND starts in (kernel view) */
    char **envp;            /* COMMAND's environment (malloc'd) */
    char privtmp[PATH_MAX]; /* --private-tmp: $RUN/tmp, else "" */
    struct mr_sandbox *sandbox; /* --sandbox: mesarun_sandbox.c, or NULL */
    struct mr_trap *trap;       /* --trap-raw (or --sandbox): mesarun_trap.c, or NULL */
    char trap_sock[PATH_MAX];   /* COMMAND's MESA_TRAP: $RUN/trap.sock, or "" */
    struct mr_proxy *proxy;     /* --sandbox: mesarun_proxy.c, or NULL */
    char proxy_url[PATH_MAX];   /* --sandbox: "unix:$RUN/proxy.sock", COMMAND's MESA_URL */
    /* running */
    mesa_pusher_t *pusher;
    mesa_client_t *pclient;
    pthread_t pusher_th;
    int pusher_started;
    volatile int pusher_stop;
    mr_follow_t *follow;
    sigset_t oldmask; /* the signal mask COMMAND gets back */
    int sigfd;        /* signalfd of the signals mesarun handles, -1 before */
} mr_t;

/* mesarun.c */
/* Print "mesarun: <what>: <message>" and return MR_EXIT_USAGE. */
int mr_usage(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "mesarun: <message>" (one line) and return MR_EXIT_FAIL. */
int mr_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "mesarun: <what>: <API error>" and return MR_EXIT_FAIL. */
int mr_fail_api(const char *what, const mesa_error_t *e);
/* The -v log: "mesarun: <line>" on stderr (any thread). */
void mr_log(void *ctx, const char *line);
/* snprintf into out (PATH_MAX bytes); -ENAMETOOLONG if it does not fit. */
int mr_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* mesarun_setup.c: each returns 0 or an exit status, having said why. */
/* The preload library, the LD_AUDIT module and its resolver. */
int mr_find_shim(mr_t *m);
/* "Name <email>" into name and email (256 bytes each). 0 or -EINVAL. */
int mr_parse_author(const char *s, char *name, char *email);
/* The commits' author when --author is not given: MESA_AUTHOR_NAME and
 * MESA_AUTHOR_EMAIL, else git's user.name and user.email, else none. */
void mr_default_author(mr_t *m);
/* A helper program of ours (name): next to mesarun (a build tree), else in
 * PKGLIBEXECDIR; its absolute path into out (PATH_MAX). 0 or -ENOENT. */
int mr_find_helper(const char *name, char *out);
int mr_connect(mr_t *m);
int mr_resolve(mr_t *m);
int mr_sign(mr_t *m);
int mr_prepare(mr_t *m);
int mr_build_env(mr_t *m);
/* rm -r of $RUN and the per-run directories (memory cache, exec/). */
void mr_cleanup(mr_t *m, int keep_run);
/* rm -r path (also of read-only directories). 0 or -errno. */
int mr_rmtree(const char *path);

/* mesarun_fork.c: --branched-from/--as (called by mr_resolve). Resolve
 * r->want_branched to r's change id and commit (nothing written); then,
 * once every repo has resolved, create the fork (and bookmark --as) and
 * point r at it. 0 or an exit status, having said why. */
int mr_fork_resolve(mr_t *m, mr_repo_t *r, const char *what);
int mr_fork_create(mr_t *m, mr_repo_t *r);

/* mesarun_follow.c */
/* Start following the events of every slot (cursor: each repo's after).
 * 0 or -errno. */
int mr_follow_start(mr_t *m, mr_follow_t **out);
/* Stop promptly (wakes the thread's poll), join and free. */
void mr_follow_stop(mr_follow_t *f);

/* mesarun_trap.c: --trap-raw (on by default under --sandbox). After
 * mr_prepare: the filter and the socket (0 or an exit status). Before the
 * spawn, after the sandbox's set-up: the supervisor thread (0 or an
 * errno, having said why). */
int mr_trap_setup(mr_t *m);
int mr_trap_begin(mr_t *m);

/* mesarun_child.c */
/* Block the signals mesarun handles (before any thread starts: threads
 * inherit the mask) and open a signalfd for them; become a child
 * subreaper. 0 or an exit status. */
int mr_signals_setup(mr_t *m);
/* Start the pusher thread. 0 or an exit status. */
int mr_pusher_start(mr_t *m);
/* Remember the descriptors mesarun was started with (COMMAND inherits
 * them; mesarun's own are closed on exec). Call first thing in main. */
void mr_note_fds(void);
/* Spawn COMMAND (the setup clients are closed first), start the event
 * follower, forward signals, wait, reap stragglers; COMMAND's exit status
 * (126/127 when it could not be started). */
int mr_run_command(mr_t *m);
/* Stop the pusher thread (if started); no drain. */
void mr_pusher_stop(mr_t *m);
/* Stop the pusher thread and drain. 0 when nothing is left pending;
 * otherwise lists the pending paths and returns MR_EXIT_PENDING. */
int mr_drain(mr_t *m, int status);

#endif
