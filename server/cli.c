/* server/cli.c - mesad's subcommands: init, key create|revoke|list, serve.
 *
 * Invariant: an API key is printed once and never stored; the database
 * keeps only S = base64url(SHA-256(key)). A data directory is served by at
 * most one mesad (an exclusive flock on DIR/serve.lock).
 * Called by main.c.
 */
#include "config.h"
#include "cli.h"
#include "fsutil.h"
#include "http.h"
#include "repo.h"
#include "store_db.h"
#include "store_git.h"
#include "token.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

enum { OPT_DATA = 1000, OPT_ORG, OPT_JSON, OPT_SCOPES, OPT_NAME, OPT_LISTEN, OPT_READY,
       OPT_MAXBODY, OPT_RATE, OPT_KEEPALIVE, OPT_HELP, OPT_VERSION };

typedef struct opts {
    const char *data, *org, *scopes, *name, *ready;
    const char *listen[8];
    size_t nlisten;
    int json;
    long long max_body;
    double rate;
    int keepalive;
} opts_t;

static const struct option all_opts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"org", required_argument, NULL, OPT_ORG},
    {"json", no_argument, NULL, OPT_JSON},
    {"scopes", required_argument, NULL, OPT_SCOPES},
    {"name", required_argument, NULL, OPT_NAME},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"ready-file", required_argument, NULL, OPT_READY},
    {"max-body", required_argument, NULL, OPT_MAXBODY},
    {"rate-limit", required_argument, NULL, OPT_RATE},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Parse options; only those named in `allowed` (option values) are accepted.
 * Returns -1 to exit 0 (help/version printed), -2 on a usage error, else
 * optind. */
static int parse_opts(int argc, char **argv, const char *cmd, const char *help,
                      const int *allowed, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->keepalive = 15;
    o->max_body = 64LL << 20;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", all_opts, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            fputs(help, stdout);
            return -1;
        }
        if (c == OPT_VERSION) {
            printf("mesad %s\n", PACKAGE_VERSION);
            return -1;
        }
        int ok = 0;
        for (const int *a = allowed; *a; a++)
            ok |= *a == c;
        if (c == '?' || c == ':' || !ok) {
            fprintf(stderr, "mesad %s: unknown or incomplete option '%s' (try --help)\n", cmd,
                    argv[optind - 1]);
            return -2;
        }
        char *end = NULL;
        switch (c) {
        case OPT_DATA: o->data = optarg; break;
        case OPT_ORG: o->org = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_SCOPES: o->scopes = optarg; break;
        case OPT_NAME: o->name = optarg; break;
        case OPT_READY: o->ready = optarg; break;
        case OPT_LISTEN:
            if (o->nlisten == 8) {
                fprintf(stderr, "mesad %s: at most 8 --listen addresses\n", cmd);
                return -2;
            }
            o->listen[o->nlisten++] = optarg;
            break;
        case OPT_MAXBODY:
            o->max_body = strtoll(optarg, &end, 10);
            if (*end || o->max_body < 1024) {
                fprintf(stderr, "mesad %s: --max-body must be a number of bytes >= 1024\n", cmd);
                return -2;
            }
            break;
        case OPT_RATE:
            o->rate = strtod(optarg, &end);
            if (*end || o->rate < 0) {
                fprintf(stderr, "mesad %s: --rate-limit must be requests per second >= 0\n",
                        cmd);
                return -2;
            }
            break;
        case OPT_KEEPALIVE:
            o->keepalive = (int)strtol(optarg, &end, 10);
            if (*end || o->keepalive < 1 || o->keepalive > 3600) {
                fprintf(stderr, "mesad %s: --keepalive must be 1..3600 seconds\n", cmd);
                return -2;
            }
            break;
        }
    }
    if (!o->data) {
        fprintf(stderr, "mesad %s: --data DIR is required\n", cmd);
        return -2;
    }
    return optind;
}

static int valid_org(const char *org)
{
    size_t n = strlen(org);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((org[i] >= 'a' && org[i] <= 'z') || (org[i] >= '0' && org[i] <= '9') ||
              (org[i] == '-' && i > 0)))
            return 0;
    return 1;
}

/* Open an existing data directory's database. */
static int open_data(const char *data)
{
    char p[4200];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", data, DB_FILE);
    if (stat(p, &st) < 0) {
        fprintf(stderr, "mesad: %s is not a mesad data directory (run 'mesad init --data %s')\n",
                data, data);
        return -1;
    }
    if (db_setup(data) < 0) {
        fprintf(stderr, "mesad: cannot open the database in %s\n", data);
        return -1;
    }
    return 0;
}

/* Create a key and print it once. */
static int make_key(const db_org_t *org, const char *name, unsigned scopes, int json)
{
    char key[46] = "mesa_", secret[MESA_TOKEN_SECRET_LEN + 1];
    if (mesa_random_base62(key + 5, 40) < 0) {
        fprintf(stderr, "mesad: no randomness available\n");
        return 1;
    }
    mesa_token_derive_secret(key, secret);
    db_key_t k;
    if (db_key_create(org->id, name, secret, scopes, &k) < 0) {
        fprintf(stderr, "mesad: cannot store the key\n");
        return 1;
    }
    if (json) {
        json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:o}", "org", org->slug, "key_id", k.id,
                              "api_key", key, "name", name, "scopes", db_scopes_json(scopes));
        json_dumpf(v, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(v);
    } else {
        printf("org:     %s\nkey id:  %s\napi key: %s\n", org->slug, k.id, key);
        printf("This API key is shown once: store it now (mesad keeps only its hash).\n");
    }
    return 0;
}

static const char init_help[] =
    "usage: mesad init --data DIR [--org ORG] [--json]\n"
    "Create a data directory (mode 0700: SQLite database and repos/), the org ORG\n"
    "(default 'local') and an admin API key (read,write,admin), printed once.\n"
    "On an existing data directory, adds ORG if it does not exist yet.\n";

int cli_init(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_ORG, OPT_JSON, 0};
    opts_t o;
    int rc = parse_opts(argc, argv, "init", init_help, allowed, &o);
    if (rc < 0)
        return rc == -1 ? 0 : 2;
    if (rc < argc) {
        fprintf(stderr, "mesad init: unexpected argument '%s'\n", argv[rc]);
        return 2;
    }
    const char *org = o.org ? o.org : "local";
    if (!valid_org(org)) {
        fprintf(stderr, "mesad init: org must be 1..64 of [a-z0-9-], not starting with '-'\n");
        return 2;
    }
    char repos[4200];
    snprintf(repos, sizeof repos, "%s/repos", o.data);
    if (mesa_mkdirs(o.data, 0700) < 0 || chmod(o.data, 0700) < 0 ||
        mesa_mkdirs(repos, 0700) < 0) {
        fprintf(stderr, "mesad init: cannot create %s: %s\n", o.data, strerror(errno));
        return 1;
    }
    if (db_setup(o.data) < 0) {
        fprintf(stderr, "mesad init: cannot create the database in %s\n", o.data);
        return 1;
    }
    db_org_t rec;
    if (db_org_by_slug(org, &rec) == 0) {
        fprintf(stderr, "mesad init: org '%s' already exists in %s\n", org, o.data);
        return 1;
    }
    if (db_org_create(org, &rec) < 0) {
        fprintf(stderr, "mesad init: cannot create org '%s'\n", org);
        return 1;
    }
    if (!o.json)
        printf("Initialised %s\n", o.data);
    return make_key(&rec, "admin", SCOPE_READ | SCOPE_WRITE | SCOPE_ADMIN, o.json);
}

static const char key_help[] =
    "usage: mesad key create --data DIR --org ORG [--scopes read,write,admin] [--name NAME] "
    "[--json]\n"
    "       mesad key revoke --data DIR --org ORG KEY_ID\n"
    "       mesad key list   --data DIR --org ORG [--json]\n";

static int key_list(const db_org_t *org, int json)
{
    json_t *keys = db_key_list(org->id);
    if (json) {
        json_t *v = json_pack("{s:o}", "keys", keys);
        json_dumpf(v, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(v);
        return 0;
    }
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        char *scopes = json_dumps(json_object_get(k, "scopes"), JSON_COMPACT);
        printf("%s  %-12s %s %s%s\n", json_string_value(json_object_get(k, "key_id")),
               json_string_value(json_object_get(k, "name")), scopes,
               json_string_value(json_object_get(k, "created_at")),
               json_is_true(json_object_get(k, "revoked")) ? "  revoked" : "");
        free(scopes);
    }
    json_decref(keys);
    return 0;
}

int cli_key(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA, OPT_ORG, OPT_JSON, OPT_SCOPES, OPT_NAME, 0};
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            fputs(key_help, stdout);
            return 0;
        }
        if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
            printf("mesad %s\n", PACKAGE_VERSION);
            return 0;
        }
        fputs(key_help, stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "create") && strcmp(sub, "revoke") && strcmp(sub, "list")) {
        fprintf(stderr, "mesad key: unknown subcommand '%s' (create, revoke, list)\n", sub);
        return 2;
    }
    opts_t o;
    int rc = parse_opts(argc - 1, argv + 1, "key", key_help, allowed, &o);
    if (rc < 0)
        return rc == -1 ? 0 : 2;
    int rest = argc - 1 - rc;
    char **args = argv + 1 + rc;
    unsigned scopes = SCOPE_READ | SCOPE_WRITE;
    if (!o.org) {
        fprintf(stderr, "mesad key %s: --org ORG is required\n", sub);
        return 2;
    }
    if (o.scopes && db_scopes_parse(o.scopes, &scopes) < 0) {
        fprintf(stderr, "mesad key %s: --scopes takes read,write,admin\n", sub);
        return 2;
    }
    if (rest != (strcmp(sub, "revoke") == 0 ? 1 : 0)) {
        fprintf(stderr, "mesad key %s: wrong number of arguments\n", sub);
        return 2;
    }
    if (open_data(o.data) < 0)
        return 1;
    db_org_t org;
    if (db_org_by_slug(o.org, &org) < 0) {
        fprintf(stderr, "mesad key %s: org '%s' does not exist\n", sub, o.org);
        return 1;
    }
    if (strcmp(sub, "list") == 0)
        return key_list(&org, o.json);
    if (strcmp(sub, "create") == 0)
        return make_key(&org, o.name ? o.name : "key", scopes, o.json);
    if (db_key_revoke(org.id, args[0]) < 0) {
        fprintf(stderr, "mesad key revoke: no active key '%s' in org '%s'\n", args[0], o.org);
        return 1;
    }
    printf("revoked %s\n", args[0]);
    return 0;
}

static const char serve_help[] =
    "usage: mesad serve --data DIR --listen ADDR [--listen ADDR...] [--ready-file FILE]\n"
    "                   [--max-body BYTES] [--rate-limit N] [--keepalive SECONDS]\n"
    "Serve Mesa's REST API for the data directory DIR.\n"
    "  --listen ADDR      HOST:PORT (port 0 picks a free one) or unix:PATH; repeatable\n"
    "  --ready-file FILE  when listening, write the bound addresses there, one per line\n"
    "  --max-body BYTES   largest request body (default 67108864); larger -> 413\n"
    "  --rate-limit N     requests per second per credential (default: no limit) -> 429\n"
    "  --keepalive S      seconds between event-stream keep-alive comments (default 15)\n"
    "SIGTERM or SIGINT: stop accepting, finish requests in flight, exit 0.\n";

/* Hold DIR/serve.lock for the life of the process; -1 if another has it. */
static int lock_data(const char *data)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/serve.lock", data);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "mesad serve: cannot open %s: %s\n", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = read(fd, pid, sizeof pid - 1);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        fprintf(stderr, "mesad serve: data directory %s is in use by another mesad (pid %s)\n",
                data, pid[0] ? pid : "?");
        close(fd);
        return -1;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        fprintf(stderr, "mesad serve: warning: cannot record pid in %s\n", p);
    return fd; /* kept open: the lock lives as long as the process */
}

int cli_serve(int argc, char **argv)
{
    static const int allowed[] = {OPT_DATA,    OPT_LISTEN, OPT_READY, OPT_MAXBODY,
                                  OPT_RATE,    OPT_KEEPALIVE, 0};
    opts_t o;
    int rc = parse_opts(argc, argv, "serve", serve_help, allowed, &o);
    if (rc < 0)
        return rc == -1 ? 0 : 2;
    if (rc < argc || o.nlisten == 0) {
        fprintf(stderr, "mesad serve: %s\n",
                rc < argc ? "unexpected argument" : "at least one --listen ADDR is required");
        return 2;
    }
    if (open_data(o.data) < 0 || lock_data(o.data) < 0)
        return 1;
    http_cfg.data_dir = o.data;
    http_cfg.max_body = (size_t)o.max_body;
    http_cfg.rate_limit = o.rate;
    http_cfg.keepalive = o.keepalive;
    if (sg_global_init() < 0 || repo_recover_all(o.data) < 0) {
        fprintf(stderr, "mesad serve: cannot open the repositories in %s\n", o.data);
        return 1;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* every thread inherits this */
    signal(SIGPIPE, SIG_IGN);
    if (http_start(o.listen, o.nlisten, o.ready) < 0) {
        http_stop();
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "mesad: %s received, draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_stop();
    db_thread_close();
    fprintf(stderr, "mesad: stopped\n");
    return 0;
}
