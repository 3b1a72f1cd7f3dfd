/* tests/core/test_pusher.c - the pusher against a real mesad.
 *
 * Starts `$MESAD serve` on a unix socket in a mkdtemp directory, sets up
 * mount runtime directories (state, journal, staging/) by hand as mesarun
 * and the shim would, and checks every push against the server: content
 * byte-exact, modes, oids, mtimes, the state slot, the pending set and the
 * acknowledged journal offset. Scenarios: the first write on the root
 * change, one commit per batch, renames of files and directories (staged and
 * tree-only), a stale base after another client's write, type changes at a
 * path, a transport failure then a replay, drain, a 3 MiB upload, an epoch,
 * and a close seen before the journal record.
 * Skipped (exit 0) when MESAD is not set.
 */
#include "core/client.h"
#include "core/journal.h"
#include "core/pusher.h"
#include "core/state.h"
#include "tests/lib/ctest.h"
#include "tests/lib/livemesad.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROOT "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"

static void change_field(const char *repo, const char *change, const char *field, char *out,
                         size_t n)
{
    char path[300];
    snprintf(path, sizeof path, "/acme/%s/changes/%s", repo, change);
    json_t *v = api("GET", path, NULL);
    snprintf(out, n, "%s", json_string_value(json_object_get(v, field)) ?: "");
    json_decref(v);
}

/* Raw content of path at change: malloc'd, *len; NULL when not 200 (*status). */
static char *content(const char *repo, const char *change, const char *path, size_t *len,
                     long *status)
{
    static const char *const h[] = {"Accept: application/octet-stream", NULL};
    char esc[1024], url[1400];
    mesa_resp_t r;
    mesa_client_escape(path, esc, sizeof esc);
    snprintf(url, sizeof url, "/acme/%s/content?path=%s&change_id=%s", repo, esc, change);
    *status = 0;
    if (mesa_client_request(g_c, "GET", url, h, NULL, 0, &r, NULL) < 0)
        return NULL;
    *status = r.status;
    char *out = NULL;
    if (r.status == 200) {
        out = r.body;
        *len = r.len;
        r.body = NULL;
    }
    mesa_resp_free(&r);
    return out;
}

static int content_is(const char *repo, const char *change, const char *path, const char *want)
{
    size_t len = 0;
    long st;
    char *got = content(repo, change, path, &len, &st);
    int ok = got && len == strlen(want) && memcmp(got, want, len) == 0;
    if (!ok)
        printf("# %s: status %ld, got \"%.*s\", want \"%s\"\n", path, st, got ? (int)len : 0,
               got ? got : "", want);
    free(got);
    return ok;
}

static long content_status(const char *repo, const char *change, const char *path)
{
    size_t len;
    long st;
    free(content(repo, change, path, &len, &st));
    return st;
}

/* The /tree listing of a commit (new reference) or NULL. */
static json_t *tree_of(const char *repo, const char *commit)
{
    char path[300];
    snprintf(path, sizeof path, "/acme/%s/tree?commit=%s", repo, commit);
    return api("GET", path, NULL);
}

/* The entry of path in listing t (borrowed) or NULL. */
static json_t *tree_ent(json_t *t, const char *path)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(t, "entries"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "path")) ?: "", path) == 0)
            return x;
    }
    return NULL;
}

static const char *ent_str(json_t *t, const char *path, const char *field)
{
    return json_string_value(json_object_get(tree_ent(t, path), field));
}

/* The id of the newest event, and the number of change.evolved/created
 * events for change after `after`. */
static long events_after(const char *repo, long after, const char *change, int *count)
{
    char path[200];
    long last = after;
    *count = 0;
    for (int page = 0; page < 100; page++) {
        snprintf(path, sizeof path, "/acme/%s/events?after=%ld&wait=0", repo, last);
        json_t *v = api("GET", path, NULL);
        size_t i, n = json_array_size(json_object_get(v, "events"));
        json_t *x;
        json_array_foreach(json_object_get(v, "events"), i, x)
        {
            const char *type = json_string_value(json_object_get(x, "type")) ?: "";
            const char *id =
                json_string_value(json_object_get(json_object_get(x, "data"), "change_id")) ?: "";
            if (strncmp(type, "change.", 7) == 0 && strcmp(id, change) == 0)
                (*count)++;
        }
        json_t *l = json_object_get(v, "last_event_id");
        if (json_is_integer(l))
            last = (long)json_integer_value(l);
        else if (json_is_string(l))
            last = strtol(json_string_value(l), NULL, 10);
        json_decref(v);
        if (n == 0)
            break;
    }
    return last;
}

/* ------------------------------------------------------------ mount helpers */

typedef struct mount {
    char run[PATH_MAX];
    char repo[64];
    int jfd;
    mesa_state_t *st;
    int nid;
} mount_t;

static int mount_setup(mount_t *m, const char *name, const char *repo, const char *bookmark,
                       const char *change, const char *commit)
{
    char p[PATH_MAX + 32];
    memset(m, 0, sizeof *m);
    m->jfd = -1;
    snprintf(m->run, sizeof m->run, "%s/%s", g_tmp, name);
    snprintf(m->repo, sizeof m->repo, "%s", repo);
    if (mkdir(m->run, 0700) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/staging", m->run);
    if (mkdir(p, 0700) < 0)
        return -1;
    mesa_state_repo_t r;
    memset(&r, 0, sizeof r);
    snprintf(r.org, sizeof r.org, "acme");
    snprintf(r.repo, sizeof r.repo, "%s", repo);
    snprintf(r.bookmark, sizeof r.bookmark, "%s", bookmark);
    snprintf(r.change_id, sizeof r.change_id, "%s", change);
    snprintf(r.commit, sizeof r.commit, "%s", commit);
    snprintf(p, sizeof p, "%s/state", m->run);
    if (mesa_state_create(p, &r, 1) < 0 || mesa_state_open(p, &m->st) < 0)
        return -1;
    snprintf(p, sizeof p, "%s/journal", m->run);
    m->jfd = open(p, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    return m->jfd < 0 ? -1 : 0;
}

static void mount_done(mount_t *m)
{
    if (m->jfd >= 0)
        close(m->jfd);
    mesa_state_close(m->st);
    m->jfd = -1;
    m->st = NULL;
}

/* A new repo and a mount of it at its root change, bookmark main; the root
 * commit into root. 0, or -1 after a failed CHECK (m is cleaned up). */
static int new_mount(mount_t *m, const char *run, const char *repo, char *root, size_t n)
{
    memset(m, 0, sizeof *m);
    m->jfd = -1;
    root[0] = '\0';
    if (make_repo(repo) == 0) {
        change_field(repo, ROOT, "current_commit_oid", root, n);
        if (root[0] && mount_setup(m, run, repo, "main", ROOT, root) == 0)
            return 0;
    }
    CHECK(0, "set up a mount");
    mount_done(m);
    return -1;
}

static void jrec(mount_t *m, mesa_jtype_t t, int64_t mtime, const char *arg, const char *path)
{
    mesa_jrec_t r = {.type = t, .slot = 0, .mtime_ns = mtime, .arg = arg, .path = path};
    int rc = mesa_journal_append(m->jfd, &r);
    if (rc < 0)
        printf("# journal append %c %s: %d\n", t, path, rc);
}

/* Write staging/<id> with data (mode 0600 or 0700), journal W path; the id
 * into id (17 bytes); returns the file's mtime in ns. */
static int64_t jwrite(mount_t *m, const char *path, const void *data, size_t len, int exec,
                      char id[17])
{
    char p[PATH_MAX + 64];
    snprintf(id, 17, "%08x%08x", (unsigned)getpid(), (unsigned)++m->nid);
    snprintf(p, sizeof p, "%s/staging/%s", m->run, id);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exec ? 0700 : 0600);
    struct stat st;
    memset(&st, 0, sizeof st);
    if (fd < 0 || write(fd, data, len) != (ssize_t)len || fstat(fd, &st) < 0)
        printf("# staging write %s failed\n", p);
    if (fd >= 0)
        close(fd);
    int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    jrec(m, MESA_J_WRITE, mt, id, path);
    return mt;
}

static uint64_t jsize(const mount_t *m)
{
    struct stat st;
    return fstat(m->jfd, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static mesa_pusher_t *pusher_at(mount_t *m, mesa_client_t *c)
{
    mesa_pusher_t *p = NULL;
    mesa_pusher_opts_t o = {.run_dir = m->run, .client = c};
    int rc = mesa_pusher_new(&o, &p);
    CHECK_EQ_INT(rc, 0, "mesa_pusher_new");
    return rc == 0 ? p : NULL;
}

static int push(mesa_pusher_t *p)
{
    mesa_error_t e;
    memset(&e, 0, sizeof e);
    int rc = mesa_pusher_poll(p);
    if (rc < 0) {
        printf("# poll: %d\n", rc);
        return rc;
    }
    rc = mesa_pusher_push(p, &e);
    if (rc < 0)
        printf("# push: %d (%ld %s %s)\n", rc, e.status, e.code, e.message);
    return rc;
}

static void print_path(void *ctx, const char *path)
{
    (void)ctx;
    printf("#   pending %s\n", path);
}

static size_t pending(mesa_pusher_t *p)
{
    return mesa_pusher_pending(p, print_path, NULL);
}

static void slot(const mount_t *m, mesa_state_repo_t *r)
{
    memset(r, 0, sizeof *r);
    mesa_state_get(m->st, 0, r);
}

/* The slot's commit is the change's current commit, and everything is
 * acknowledged. */
static void check_synced(const mount_t *m, mesa_pusher_t *p, const char *what)
{
    char buf[200], cur[64];
    mesa_state_repo_t r;
    slot(m, &r);
    change_field(m->repo, r.change_id, "current_commit_oid", cur, sizeof cur);
    snprintf(buf, sizeof buf, "%s: slot commit is the change's current commit", what);
    CHECK_EQ_STR(r.commit, cur, buf);
    snprintf(buf, sizeof buf, "%s: nothing pending", what);
    CHECK_EQ_INT(pending(p), 0, buf);
    snprintf(buf, sizeof buf, "%s: acked offset is the journal size", what);
    CHECK_EQ_INT(mesa_state_acked(m->st), jsize(m), buf);
}

/* ------------------------------------------------------------ scenarios */

static char root_commit[64];

/* 1-5, 7, 8 on repo app, bookmark main. */
static void test_main_mount(mesa_client_t *c)
{
    mount_t m;
    mesa_state_repo_t r;
    char id[17], id2[17];
    if (new_mount(&m, "run1", "app", root_commit, sizeof root_commit) < 0)
        return;
    mesa_pusher_t *p = pusher_at(&m, c);
    if (!p) {
        mount_done(&m);
        return;
    }

    /* 1. first write on the root change */
    int64_t mt = jwrite(&m, "a.txt", "hello\n", 6, 0, id);
    CHECK_EQ_INT(push(p), 0, "1: open staging file is not due");
    CHECK_EQ_INT(pending(p), 1, "1: a.txt pending");
    CHECK_EQ_INT(mesa_state_acked(m.st), 0, "1: nothing acked yet");
    slot(&m, &r);
    CHECK_EQ_STR(r.change_id, ROOT, "1: slot still on the root change");
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "1: closed file pushed in one batch");
    slot(&m, &r);
    CHECK(strcmp(r.change_id, ROOT) != 0 && strlen(r.change_id) == 32,
          "1: slot moved to a new change");
    char change[33];
    snprintf(change, sizeof change, "%s", r.change_id);
    json_t *v = api("GET", "/acme/app/bookmarks/main", NULL);
    CHECK_EQ_STR(json_string_value(json_object_get(v, "change_id")), change,
                 "1: bookmark main points at the new change");
    json_decref(v);
    char path[300];
    snprintf(path, sizeof path, "/acme/app/changes/%s", change);
    v = api("GET", path, NULL);
    CHECK_EQ_STR(json_string_value(json_array_get(json_object_get(v, "parents"), 0)), ROOT,
                 "1: the new change sits on the root");
    json_decref(v);
    CHECK_EQ_STR(r.bookmark, "main", "1: slot keeps its bookmark");
    CHECK(content_is("app", change, "a.txt", "hello\n"), "1: a.txt content on the server");
    json_t *t = tree_of("app", r.commit);
    CHECK_EQ_STR(ent_str(t, "a.txt", "mode"), "100644", "1: a.txt mode");
    CHECK_EQ_INT(json_integer_value(json_object_get(tree_ent(t, "a.txt"), "mtime_ns")), mt,
                 "1: a.txt mtime_ns is the staging file's");
    json_decref(t);
    check_synced(&m, p, "1");
    CHECK_EQ_INT(push(p), 0, "1: nothing more to push");

    /* 2. several operations, one commit */
    char before[64];
    snprintf(before, sizeof before, "%s", r.commit);
    int nev;
    long ev = events_after("app", 0, change, &nev);
    jwrite(&m, "b.txt", "bee", 3, 0, id);
    jrec(&m, MESA_J_MKDIR, 0, "-", "dir");
    jwrite(&m, "dir/c.txt", "sea\n", 4, 0, id2);
    jrec(&m, MESA_J_SYMLINK, 0, "a.txt", "link");
    jrec(&m, MESA_J_CHMOD, 0, "1", "b.txt");
    jrec(&m, MESA_J_UNLINK, 0, "-", "a.txt");
    mesa_pusher_closed(p, id);
    mesa_pusher_closed(p, id2);
    CHECK_EQ_INT(push(p), 1, "2: one batch");
    slot(&m, &r);
    CHECK_EQ_STR(r.change_id, change, "2: same change");
    CHECK(strcmp(r.commit, before) != 0, "2: new commit");
    events_after("app", ev, change, &nev);
    CHECK_EQ_INT(nev, 1, "2: exactly one commit (one change event)");
    CHECK(content_is("app", change, "b.txt", "bee"), "2: b.txt");
    CHECK(content_is("app", change, "dir/c.txt", "sea\n"), "2: dir/c.txt");
    CHECK(content_is("app", change, "link", "a.txt"), "2: link target");
    CHECK_EQ_INT(content_status("app", change, "a.txt"), 404, "2: a.txt deleted");
    t = tree_of("app", r.commit);
    CHECK_EQ_STR(ent_str(t, "b.txt", "mode"), "100755", "2: b.txt executable");
    CHECK_EQ_STR(ent_str(t, "link", "mode"), "120000", "2: link is a symlink");
    CHECK_EQ_STR(ent_str(t, "link", "type"), "symlink", "2: link type");
    CHECK_EQ_STR(ent_str(t, "dir", "type"), "dir", "2: dir");
    CHECK_EQ_STR(ent_str(t, "dir/c.txt", "mode"), "100644", "2: dir/c.txt mode");
    json_decref(t);
    check_synced(&m, p, "2");

    /* 3. renames: a file, and a directory of files */
    jrec(&m, MESA_J_RENAME, 0, "b.txt", "dir/b2.txt");
    CHECK_EQ_INT(push(p), 1, "3: file rename pushed");
    slot(&m, &r);
    CHECK(content_is("app", change, "dir/b2.txt", "bee"), "3: dir/b2.txt");
    CHECK_EQ_INT(content_status("app", change, "b.txt"), 404, "3: b.txt gone");
    t = tree_of("app", r.commit);
    CHECK_EQ_STR(ent_str(t, "dir/b2.txt", "mode"), "100755", "3: rename keeps the exec bit");
    json_decref(t);
    check_synced(&m, p, "3a");
    jrec(&m, MESA_J_MKDIR, 0, "-", "src");
    jwrite(&m, "src/x", "ex", 2, 0, id);
    jwrite(&m, "src/y", "why", 3, 1, id2);
    mesa_pusher_closed(p, id);
    mesa_pusher_closed(p, id2);
    CHECK_EQ_INT(push(p), 1, "3: src pushed");
    slot(&m, &r);
    t = tree_of("app", r.commit);
    char ox[48] = "", oy[48] = "";
    snprintf(ox, sizeof ox, "%s", ent_str(t, "src/x", "oid") ?: "");
    snprintf(oy, sizeof oy, "%s", ent_str(t, "src/y", "oid") ?: "");
    CHECK(ox[0] && oy[0], "3: src/x, src/y on the server");
    CHECK_EQ_STR(ent_str(t, "src/y", "mode"), "100755", "3: src/y executable (staging mode)");
    json_decref(t);
    jrec(&m, MESA_J_RENAME, 0, "src", "lib");
    CHECK_EQ_INT(push(p), 1, "3: directory rename pushed");
    slot(&m, &r);
    t = tree_of("app", r.commit);
    CHECK_EQ_STR(ent_str(t, "lib/x", "oid"), ox, "3: lib/x has src/x's blob");
    CHECK_EQ_STR(ent_str(t, "lib/y", "oid"), oy, "3: lib/y has src/y's blob");
    CHECK_EQ_STR(ent_str(t, "lib/y", "mode"), "100755", "3: lib/y still executable");
    CHECK(!tree_ent(t, "src") && !tree_ent(t, "src/x"), "3: src gone");
    json_decref(t);
    check_synced(&m, p, "3b");

    /* 4. stale base: another client writes the change */
    char cur[64];
    v = api("PATCH", path,
            json_pack("{s:[{s:s, s:s}]}", "files", "path", "other.txt", "content", "b3RoZXIK"));
    CHECK(v != NULL, "4: other client's PATCH");
    json_decref(v);
    change_field("app", change, "current_commit_oid", cur, sizeof cur);
    slot(&m, &r);
    CHECK(strcmp(cur, r.commit) != 0, "4: the change moved past the slot's commit");
    jwrite(&m, "e.txt", "eee", 3, 0, id);
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "4: push on a stale base succeeds");
    slot(&m, &r);
    CHECK(content_is("app", change, "other.txt", "other\n"), "4: other.txt kept");
    CHECK(content_is("app", change, "e.txt", "eee"), "4: e.txt");
    CHECK(content_is("app", change, "dir/c.txt", "sea\n"), "4: earlier files kept");
    check_synced(&m, p, "4");
    /* the derived listing must now include other.txt: a delete of it works */
    jrec(&m, MESA_J_UNLINK, 0, "-", "other.txt");
    CHECK_EQ_INT(push(p), 1, "4: delete of the other client's file");
    CHECK_EQ_INT(content_status("app", change, "other.txt"), 404, "4: other.txt deleted");
    check_synced(&m, p, "4b");

    /* 5. type changes at a path */
    jrec(&m, MESA_J_MKDIR, 0, "-", "d5");
    jwrite(&m, "d5/k.txt", "k", 1, 0, id);
    jwrite(&m, "f5", "file five", 9, 0, id2);
    mesa_pusher_closed(p, id);
    mesa_pusher_closed(p, id2);
    CHECK_EQ_INT(push(p), 1, "5: d5/ and f5 pushed");
    jrec(&m, MESA_J_UNLINK, 0, "-", "d5/k.txt");
    jrec(&m, MESA_J_RMDIR, 0, "-", "d5");
    jwrite(&m, "d5", "now a file", 10, 0, id);
    jrec(&m, MESA_J_UNLINK, 0, "-", "f5");
    jrec(&m, MESA_J_MKDIR, 0, "-", "f5");
    jwrite(&m, "f5/in.txt", "inside", 6, 0, id2);
    mesa_pusher_closed(p, id);
    mesa_pusher_closed(p, id2);
    CHECK_EQ_INT(push(p), 1, "5: type changes pushed");
    slot(&m, &r);
    t = tree_of("app", r.commit);
    CHECK_EQ_STR(ent_str(t, "d5", "type"), "file", "5: d5 is a file");
    CHECK(!tree_ent(t, "d5/k.txt"), "5: d5/k.txt gone");
    CHECK_EQ_STR(ent_str(t, "f5", "type"), "dir", "5: f5 is a directory");
    json_decref(t);
    CHECK(content_is("app", change, "d5", "now a file"), "5: d5 content");
    CHECK(content_is("app", change, "f5/in.txt", "inside"), "5: f5/in.txt content");
    check_synced(&m, p, "5");

    /* 7. drain: never-closed files become due */
    jwrite(&m, "g.txt", "gee", 3, 0, id);
    CHECK_EQ_INT(push(p), 0, "7: not closed, not due");
    CHECK_EQ_INT(pending(p), 1, "7: g.txt pending");
    CHECK(mesa_state_acked(m.st) < jsize(&m), "7: not acked");
    mesa_pusher_all_closed(p);
    CHECK_EQ_INT(push(p), 1, "7: all_closed pushes it");
    CHECK(content_is("app", change, "g.txt", "gee"), "7: g.txt");
    check_synced(&m, p, "7");

    /* 8. a 3 MiB file goes up raw */
    size_t big = 3u << 20;
    unsigned char *data = malloc(big);
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
    for (size_t i = 0; data && i < big; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (unsigned char)x;
    }
    if (data) {
        mt = jwrite(&m, "big.bin", data, big, 0, id);
        mesa_pusher_closed(p, id);
        CHECK_EQ_INT(push(p), 1, "8: big file pushed");
        size_t len = 0;
        long st;
        char *got = content("app", change, "big.bin", &len, &st);
        CHECK(got && len == big && memcmp(got, data, big) == 0, "8: big.bin round-trips");
        free(got);
        slot(&m, &r);
        t = tree_of("app", r.commit);
        CHECK_EQ_INT(json_integer_value(json_object_get(tree_ent(t, "big.bin"), "size")), big,
                     "8: big.bin size");
        CHECK_EQ_INT(json_integer_value(json_object_get(tree_ent(t, "big.bin"), "mtime_ns")), mt,
                     "8: big.bin mtime_ns");
        json_decref(t);
        check_synced(&m, p, "8");
        free(data);
    }
    mesa_pusher_free(p);
    mount_done(&m);
}

/* 3c. rename of a directory that only exists in the tree */
static void test_tree_rename(mesa_client_t *c)
{
    mount_t m;
    char cur[64];
    if (make_repo("lib") < 0) {
        CHECK(0, "create repo lib");
        return;
    }
    json_t *v = api("POST", "/acme/lib/changes",
                    json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s}, {s:s, s:s, s:s}]}",
                              "base_change_id", ROOT, "files", "path", "vend/p.txt", "content",
                              "cA==", "path", "vend/q/r.txt", "content", "cg==", "mode", "100755",
                              "path", "keep.txt", "content", "aw==", "path", "vend/l", "content",
                              "cC50eHQ=", "mode", "120000"));
    const char *chg = json_string_value(json_object_get(v, "id"));
    const char *cm = json_string_value(json_object_get(v, "current_commit_oid"));
    if (!chg || !cm || mount_setup(&m, "run4", "lib", "", chg, cm) < 0) {
        CHECK(0, "set up mount run4");
        json_decref(v);
        return;
    }
    char change[33];
    snprintf(change, sizeof change, "%s", chg);
    json_t *t0 = tree_of("lib", cm);
    json_decref(v);
    mesa_pusher_t *p = pusher_at(&m, c);
    if (p) {
        jrec(&m, MESA_J_RENAME, 0, "vend", "pkg");
        CHECK_EQ_INT(push(p), 1, "3c: tree directory rename pushed");
        mesa_state_repo_t r;
        slot(&m, &r);
        CHECK_EQ_STR(r.change_id, change, "3c: same change");
        change_field("lib", change, "current_commit_oid", cur, sizeof cur);
        CHECK_EQ_STR(r.commit, cur, "3c: slot commit is current");
        json_t *t = tree_of("lib", r.commit);
        static const char *const names[] = {"p.txt", "q/r.txt", "l"};
        for (size_t i = 0; i < 3; i++) {
            char a[64], b[64], what[200];
            snprintf(a, sizeof a, "vend/%s", names[i]);
            snprintf(b, sizeof b, "pkg/%s", names[i]);
            snprintf(what, sizeof what, "3c: %s has %s's oid", b, a);
            CHECK_EQ_STR(ent_str(t, b, "oid"), ent_str(t0, a, "oid") ?: "?", what);
            snprintf(what, sizeof what, "3c: %s has %s's mode", b, a);
            CHECK_EQ_STR(ent_str(t, b, "mode"), ent_str(t0, a, "mode") ?: "?", what);
        }
        CHECK(!tree_ent(t, "vend"), "3c: vend gone");
        CHECK(tree_ent(t, "keep.txt") != NULL, "3c: keep.txt untouched");
        json_decref(t);
        CHECK(content_is("lib", change, "pkg/q/r.txt", "r"), "3c: pkg/q/r.txt content");
        check_synced(&m, p, "3c");
        /* chmod of a tree file, then a utimes */
        jrec(&m, MESA_J_CHMOD, 0, "1", "keep.txt");
        jrec(&m, MESA_J_UTIMES, 1234567890123456789LL, "-", "pkg/p.txt");
        CHECK_EQ_INT(push(p), 1, "3c: chmod + utimes of tree files pushed");
        slot(&m, &r);
        t = tree_of("lib", r.commit);
        CHECK_EQ_STR(ent_str(t, "keep.txt", "mode"), "100755", "3c: keep.txt executable");
        CHECK(tree_ent(t, "pkg/p.txt") != NULL, "3c: pkg/p.txt still exists after a utimes");
        CHECK_EQ_INT(json_integer_value(json_object_get(tree_ent(t, "pkg/p.txt"), "mtime_ns")),
                     1234567890123456789LL, "3c: pkg/p.txt mtime from utimes");
        json_decref(t);
        check_synced(&m, p, "3c2");
        /* rename of a tree file, pushed, then a chmod of it */
        jrec(&m, MESA_J_RENAME, 0, "keep.txt", "moved.txt");
        CHECK_EQ_INT(push(p), 1, "3c: tree file rename pushed");
        CHECK(content_is("lib", change, "moved.txt", "k"), "3c: moved.txt");
        jrec(&m, MESA_J_CHMOD, 0, "0", "moved.txt");
        CHECK_EQ_INT(push(p), 1, "3c: chmod of the renamed file pushed");
        slot(&m, &r);
        t = tree_of("lib", r.commit);
        CHECK_EQ_STR(ent_str(t, "moved.txt", "mode"), "100644",
                     "3c: moved.txt still exists, not executable");
        json_decref(t);
        check_synced(&m, p, "3c3");
        mesa_pusher_free(p);
    }
    json_decref(t0);
    mount_done(&m);
}

/* 6. transport failure, then a replay by a working pusher */
static void test_transport(mesa_client_t *c)
{
    mount_t m;
    char rc_commit[64], id[17], dead[PATH_MAX + 32];
    mesa_state_repo_t r;
    if (new_mount(&m, "run2", "svc", rc_commit, sizeof rc_commit) < 0)
        return;
    snprintf(dead, sizeof dead, "unix:%s/no.sock", m.run);
    mesa_client_t *dc = client_at(dead, 0);
    CHECK(dc != NULL, "6: client on a dead socket");
    mesa_pusher_t *p = dc ? pusher_at(&m, dc) : NULL;
    if (p) {
        jwrite(&m, "f.txt", "eff", 3, 0, id);
        jrec(&m, MESA_J_MKDIR, 0, "-", "k");
        mesa_pusher_closed(p, id);
        int rc = push(p);
        CHECK(rc < 0, "6: push fails with a negative errno");
        CHECK_EQ_INT(pending(p), 2, "6: both paths still pending");
        CHECK_EQ_INT(mesa_state_acked(m.st), 0, "6: nothing acked");
        slot(&m, &r);
        CHECK_EQ_STR(r.change_id, ROOT, "6: slot unchanged");
        rc = push(p);
        CHECK(rc < 0, "6: push fails again");
        CHECK_EQ_INT(pending(p), 2, "6: still pending");
        mesa_pusher_free(p);
    }
    mesa_client_free(dc);
    p = pusher_at(&m, c);
    if (p) {
        CHECK_EQ_INT(mesa_pusher_poll(p), 0, "6: replay");
        CHECK_EQ_INT(pending(p), 2, "6: replay finds both paths");
        mesa_pusher_closed(p, id);
        CHECK_EQ_INT(push(p), 1, "6: working pusher pushes them");
        slot(&m, &r);
        CHECK(strcmp(r.change_id, ROOT) != 0, "6: slot on a new change");
        CHECK(content_is("svc", r.change_id, "f.txt", "eff"), "6: f.txt");
        json_t *t = tree_of("svc", r.commit);
        CHECK_EQ_STR(ent_str(t, "k", "type"), "dir", "6: k/");
        json_decref(t);
        check_synced(&m, p, "6");
        mesa_pusher_free(p);
    }
    mount_done(&m);
}

/* 9. epoch; 10. close seen before the W record */
static void test_epoch(mesa_client_t *c)
{
    mount_t m;
    char rc_commit[64], id[17], id2[17], c1[33], cur[64];
    mesa_state_repo_t r;
    if (new_mount(&m, "run3", "epo", rc_commit, sizeof rc_commit) < 0)
        return;
    mesa_pusher_t *p = pusher_at(&m, c);
    if (!p) {
        mount_done(&m);
        return;
    }
    jwrite(&m, "a.txt", "A", 1, 0, id);
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "9: first push");
    slot(&m, &r);
    snprintf(c1, sizeof c1, "%s", r.change_id);
    char c1commit[64];
    snprintf(c1commit, sizeof c1commit, "%s", r.commit);

    /* an unpushed write, then `mesa change new` */
    jwrite(&m, "b.txt", "B", 1, 0, id);
    jwrite(&m, "c.txt", "C", 1, 0, id2);
    CHECK_EQ_INT(mesa_pusher_poll(p), 0, "9: poll b.txt");
    CHECK_EQ_INT(pending(p), 2, "9: b.txt, c.txt pending (open)");
    json_t *v = api("POST", "/acme/epo/changes", json_pack("{s:s}", "base_change_id", c1));
    const char *nc = json_string_value(json_object_get(v, "id"));
    const char *ncm = json_string_value(json_object_get(v, "current_commit_oid"));
    char c2[33] = "";
    if (nc && ncm) {
        snprintf(c2, sizeof c2, "%s", nc);
        mesa_state_set(m.st, 0, nc, ncm, NULL);
        jrec(&m, MESA_J_EPOCH, 0, nc, "");
    }
    json_decref(v);
    CHECK(c2[0], "9: new change");
    mesa_pusher_closed(p, id);
    mesa_pusher_closed(p, id2);
    CHECK_EQ_INT(push(p), 0, "9: nothing pushed after the epoch");
    CHECK_EQ_INT(pending(p), 0, "9: pending cleared by the epoch");
    change_field("epo", c1, "current_commit_oid", cur, sizeof cur);
    CHECK_EQ_STR(cur, c1commit, "9: old change untouched");
    CHECK_EQ_INT(content_status("epo", c2, "b.txt"), 404, "9: b.txt not in the new change");
    CHECK_EQ_INT(content_status("epo", c1, "b.txt"), 404, "9: b.txt not in the old change");
    CHECK_EQ_INT(mesa_state_acked(m.st), jsize(&m), "9: acked up to the epoch");

    /* writes after the epoch go to the new change */
    jwrite(&m, "d.txt", "D", 1, 0, id);
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "9: write after the epoch pushed");
    slot(&m, &r);
    CHECK_EQ_STR(r.change_id, c2, "9: slot on the new change");
    CHECK(content_is("epo", c2, "d.txt", "D"), "9: d.txt in the new change");
    CHECK(content_is("epo", c2, "a.txt", "A"), "9: a.txt inherited");
    CHECK_EQ_INT(content_status("epo", c2, "b.txt"), 404, "9: still no b.txt");
    check_synced(&m, p, "9");

    /* 10. the close arrives before the pusher read the W record */
    jwrite(&m, "early.txt", "early", 5, 0, id);
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "10: a close seen before its W record still counts");
    CHECK(content_is("epo", c2, "early.txt", "early"), "10: early.txt");
    check_synced(&m, p, "10");

    /* 11. the same staging file rewritten after its push (no new W) */
    char sp[PATH_MAX + 64];
    snprintf(sp, sizeof sp, "%s/staging/%s", m.run, id);
    int fd = open(sp, O_WRONLY | O_TRUNC | O_CLOEXEC);
    CHECK(fd >= 0 && write(fd, "later!", 6) == 6, "11: rewrite the staging file");
    if (fd >= 0)
        close(fd);
    mesa_pusher_closed(p, id);
    CHECK_EQ_INT(push(p), 1, "11: rewritten content pushed");
    CHECK(content_is("epo", c2, "early.txt", "later!"), "11: early.txt has the new content");
    check_synced(&m, p, "11");

    mesa_pusher_free(p);
    mount_done(&m);
}

/* ------------------------------------------------------------ run loop, drain */

typedef struct runarg {
    mesa_pusher_t *p;
    volatile int stop;
    int rc;
} runarg_t;

static void *run_thread(void *a)
{
    runarg_t *r = a;
    r->rc = mesa_pusher_run(r->p, &r->stop, 50);
    return NULL;
}

/* Poll (50 ms steps, at most 10 s) until path at main has content want. */
static int eventually_is(const char *repo, const char *path, const char *want)
{
    for (int i = 0; i < 200; i++) {
        if (content_status(repo, "main", path) == 200 && content_is(repo, "main", path, want))
            return 1;
        struct timespec ts = {0, 50000000L};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static void test_run_loop(mesa_client_t *c)
{
    mount_t m;
    char id[17], root[64], p[PATH_MAX + 64];
    if (new_mount(&m, "run-loop", "loop", root, sizeof root) < 0)
        return;
    mesa_pusher_t *pu = pusher_at(&m, c);
    if (!pu)
        return;
    runarg_t ra = {.p = pu};
    pthread_t th;
    pthread_create(&th, NULL, run_thread, &ra);
    /* mesarun starts the loop before the command: let the watch exist first */
    struct timespec settle = {0, 300000000L};
    nanosleep(&settle, NULL);
    jwrite(&m, "live.txt", "live\n", 5, 0, id);
    CHECK(eventually_is("loop", "live.txt", "live\n"),
          "the run loop pushes a closed file (seen within 10 s)");
    /* a file its writer still has open is not due */
    snprintf(id, sizeof id, "open%012d", 1);
    snprintf(p, sizeof p, "%s/staging/%s", m.run, id);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHECK(fd >= 0 && write(fd, "still open\n", 11) == 11, "a staging file kept open");
    jrec(&m, MESA_J_WRITE, 1, id, "open.txt");
    struct timespec ts = {0, 400000000L};
    nanosleep(&ts, NULL);
    CHECK_EQ_INT(content_status("loop", "main", "open.txt"), 404,
                 "a file still open for writing is not pushed by the loop");
    ra.stop = 1;
    pthread_join(th, NULL);
    CHECK_EQ_INT(ra.rc, 0, "the run loop returns 0 once stopped");
    mesa_error_t e;
    memset(&e, 0, sizeof e);
    CHECK_EQ_INT(mesa_pusher_drain(pu, 8, &e), 0, "the drain pushes what is left");
    CHECK(content_is("loop", "main", "open.txt", "still open\n"),
          "the drain pushed the file whose close was never seen");
    CHECK_EQ_INT(pending(pu), 0, "nothing is pending after the drain");
    CHECK_EQ_INT(mesa_state_acked(m.st), jsize(&m), "the whole journal is acknowledged");
    if (fd >= 0)
        close(fd);
    mesa_pusher_free(pu);
    mount_done(&m);
}

int main(void)
{
    int rc = live_start("pusher");
    if (rc == 1)
        return 0;
    mesa_client_t *c = rc == 0 ? client_at(g_url, 2) : NULL;
    if (rc == 0)
        CHECK(c != NULL, "a second client");
    if (c) {
        test_main_mount(c);
        test_tree_rename(c);
        test_transport(c);
        test_epoch(c);
        test_run_loop(c);
    }
    mesa_client_free(c);
    live_stop();
    return ctest_done();
}
