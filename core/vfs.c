/* core/vfs.c - one process's view of its mount: set-up from the
 * environment, keeping the view current (state generation + journal
 * replay), lookup, stat and directory listings (see vfs.h).
 *
 * Invariant: every answer is computed from (state slot, overlay, tree
 * listing, local store) after vfs_sync, so all processes of a mount agree
 * as soon as a journal record is written. Lookups allocate nothing.
 * Called by the shim (the shim/ wrappers) under its lock.
 */
#include "config.h"
#include "vfs_int.h"
#include "fetch.h"
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

int64_t vfs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* FNV-1a, 64 bits: inode numbers and the mount's device number. */
static uint64_t fnv(const char *s)
{
    uint64_t h = 14695981039346656037ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

uint64_t mesa_vfs_ino(const char *path)
{
    uint64_t h = fnv(path);
    return h ? h : 1;
}

dev_t mesa_vfs_dev(const mesa_vfs_t *v)
{
    return v->dev;
}

const char *mesa_vfs_prefix(const mesa_vfs_t *v)
{
    return v->prefix;
}

const char *mesa_vfs_run(const mesa_vfs_t *v)
{
    return v->run;
}

/* ------------------------------------------------------------ set-up */

static const char *(*env_get)(const char *name);

static int env_copy(const char *name, char *out, size_t n)
{
    const char *s = env_get(name);
    if (!s || !*s || strlen(s) >= n)
        return -1;
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static void slot_local(mesa_vfs_t *v, size_t i)
{
    const mesa_state_repo_t *r = &v->slot[i].r;
    snprintf(v->slot[i].local, sizeof v->slot[i].local, "%s/local/%s/%s/%s", v->cache, r->org,
             r->repo, r->mount_key);
}

mesa_vfs_t *mesa_vfs_open_env(const char *(*get)(const char *name))
{
    mesa_vfs_t *v = calloc(1, sizeof *v);
    char path[PATH_MAX];
    if (!v)
        return NULL;
    v->jfd = v->lockfd = -1;
    env_get = get;
    if (env_copy("MESA_MOUNT", v->run, sizeof v->run) < 0 ||
        env_copy("MESA_CACHE", v->cache, sizeof v->cache) < 0)
        goto fail;
    if (env_copy("MESA_PREFIX", v->prefix, sizeof v->prefix) < 0)
        strcpy(v->prefix, "/mesa");
    v->plen = strlen(v->prefix);
    env_copy("MESA_URL", v->url, sizeof v->url);
    v->token = strdup(get("MESA_ACCESS_TOKEN") ?: "");
    v->push_ignored = get("MESA_PUSH_IGNORED") && strcmp(get("MESA_PUSH_IGNORED"), "1") == 0;
    v->sandboxed = get("MESA_SANDBOX") && strcmp(get("MESA_SANDBOX"), "1") == 0;
    v->dev = (dev_t)(fnv(v->run) & 0xffffffffu) | 0x100000u;
    snprintf(path, sizeof path, "%s/state", v->run);
    if (!v->token || mesa_state_open(path, &v->st) < 0)
        goto fail;
    struct stat sst;
    if (stat(path, &sst) == 0) /* directories without a time of their own: the mount's */
        v->t0 = (int64_t)sst.st_mtim.tv_sec * 1000000000 + sst.st_mtim.tv_nsec;
    snprintf(path, sizeof path, "%s/journal", v->run);
    struct stat jst;
    if ((v->jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0 || fstat(v->jfd, &jst) < 0 ||
        mesa_journal_reader_open(path, 0, &v->jr) < 0 || !(v->ov = mesa_overlay_new()))
        goto fail;
    v->jdev = jst.st_dev;
    v->jino = jst.st_ino;
    const char *cap = get("MESA_CACHE_SIZE"); /* mesarun --cache-size, bytes */
    if (mesa_blobcache_open(v->cache, cap ? strtoull(cap, NULL, 10) : 0, &v->bc) < 0)
        goto fail;
    v->nslots = mesa_state_count(v->st);
    for (size_t i = 0; i < v->nslots; i++) {
        mesa_state_get(v->st, i, &v->slot[i].r);
        slot_local(v, i);
    }
    return v;
fail:
    mesa_vfs_close(v);
    return NULL;
}

void mesa_vfs_close(mesa_vfs_t *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->nslots; i++) {
        mesa_tree_close(v->slot[i].tree);
        mesa_tree_close(v->slot[i].base);
        mesa_ignore_free(v->slot[i].ig);
    }
    if (v->jfd >= 0)
        close(v->jfd);
    if (v->lockfd >= 0)
        close(v->lockfd);
    mesa_journal_reader_close(v->jr);
    mesa_overlay_free(v->ov);
    mesa_state_close(v->st);
    mesa_blobcache_close(v->bc);
    mesa_client_free(v->cl);
    free(v->token);
    free(v);
}

void mesa_vfs_atfork_child(mesa_vfs_t *v)
{
    v->lockpid = 0; /* the inherited lock descriptor is the parent's */
}

mesa_client_t *vfs_client(mesa_vfs_t *v)
{
    if (!v->cl) {
        mesa_client_opts_t o = {
            .url = v->url, .bearer = v->token, .retries = 3, .delegate_fills = v->sandboxed};
        if (mesa_client_new(&o, &v->cl) < 0)
            v->cl = NULL;
    }
    return v->cl;
}

int vfs_api_error(mesa_vfs_t *v, int rc, const mesa_error_t *e)
{
    if (rc == -EACCES && !v->expired_said && strstr(e->message, "expired")) {
        static const char msg[] = "mesafs: the mount token expired; calls that need the "
                                  "server fail with EACCES (mesarun --ttl)\n";
        v->expired_said = 1;
        if (write(2, msg, sizeof msg - 1) < 0) {
            /* nothing else to do */
        }
    }
    return rc;
}

/* ------------------------------------------------------------ sync */

/* Is fd still the journal? (A program may close every descriptor, e.g.
 * python's subprocess before exec, and the number be reused.) */
static int is_journal(const mesa_vfs_t *v, int fd, struct stat *st)
{
    return fstat(fd, st) == 0 && st->st_dev == v->jdev && st->st_ino == v->jino;
}

/* Reopen the journal descriptors that are not the journal any more; the
 * old numbers are not closed (they are someone else's now). */
static int journal_fds(mesa_vfs_t *v, struct stat *st)
{
    char path[PATH_MAX];
    struct stat rs;
    snprintf(path, sizeof path, "%s/journal", v->run);
    if (!is_journal(v, mesa_journal_reader_fd(v->jr), &rs)) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return -errno;
        mesa_journal_reader_set_fd(v->jr, fd);
    }
    if (is_journal(v, v->jfd, st))
        return 0;
    v->lockpid = 0; /* the lock descriptor may be gone too */
    v->lockfd = -1;
    if ((v->jfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0 || fstat(v->jfd, st) < 0)
        return -EIO;
    return 0;
}

int vfs_lock(mesa_vfs_t *v)
{
    struct stat st;
    if (v->lockpid == getpid() && !is_journal(v, v->lockfd, &st))
        v->lockpid = 0, v->lockfd = -1; /* closed behind our back: not ours to close */
    if (v->lockpid != getpid()) {
        char path[PATH_MAX];
        if (v->lockfd >= 0)
            close(v->lockfd);
        snprintf(path, sizeof path, "%s/journal", v->run);
        v->lockfd = open(path, O_RDONLY | O_CLOEXEC);
        if (v->lockfd < 0)
            return -errno;
        v->lockpid = getpid();
    }
    while (flock(v->lockfd, LOCK_EX) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

void vfs_unlock(mesa_vfs_t *v)
{
    flock(v->lockfd, LOCK_UN);
}

static int ends_with_gitignore(const char *p)
{
    size_t n = strlen(p);
    return n >= 10 && strcmp(p + n - 10, ".gitignore") == 0 && (n == 10 || p[n - 11] == '/');
}

static void replay_one(mesa_vfs_t *v, const mesa_jrec_t *r)
{
    if (r->slot >= v->nslots)
        return;
    mesa_overlay_apply(v->ov, r);
    mesa_overlay_clear_dirty(v->ov, r->slot); /* only the pusher tracks dirt */
    if (r->type == MESA_J_EPOCH || ends_with_gitignore(r->path) ||
        (r->type == MESA_J_RENAME && ends_with_gitignore(r->arg)) || r->type == MESA_J_RMDIR) {
        mesa_ignore_free(v->slot[r->slot].ig);
        v->slot[r->slot].ig = NULL;
    }
}

static int replay(mesa_vfs_t *v)
{
    struct stat st;
    if (!is_journal(v, v->jfd, &st) && journal_fds(v, &st) < 0)
        return -EIO;
    if ((uint64_t)st.st_size == mesa_journal_offset(v->jr))
        return 0;
    mesa_jrec_t r;
    int rc;
    while ((rc = mesa_journal_next(v->jr, &r)) == 1)
        replay_one(v, &r);
    return rc < 0 ? rc : 0;
}

int vfs_sync(mesa_vfs_t *v)
{
    uint64_t g = mesa_state_generation(v->st);
    if (!v->gen_valid || g != v->gen) {
        for (size_t i = 0; i < v->nslots; i++) {
            vslot_t *s = &v->slot[i];
            mesa_state_repo_t r;
            mesa_state_get(v->st, i, &r);
            if (strcmp(r.commit, s->r.commit) != 0 || strcmp(r.change_id, s->r.change_id) != 0) {
                mesa_ignore_free(s->ig);
                s->ig = NULL;
            }
            s->r = r;
        }
        v->gen = g;
        v->gen_valid = 1;
    }
    return replay(v);
}

int vfs_append(mesa_vfs_t *v, int slot, mesa_jtype_t type, int64_t mtime, const char *arg,
               const char *rel)
{
    mesa_jrec_t r = {.type = type, .slot = (unsigned)slot, .mtime_ns = mtime,
                     .arg = arg ? arg : "-", .path = rel};
    int rc = mesa_journal_append(v->jfd, &r);
    if (rc < 0)
        return rc;
    return replay(v); /* our record, and any that came before it */
}

/* ------------------------------------------------------------ trees */

mesa_tree_t *vfs_tree(mesa_vfs_t *v, int slot, int base)
{
    vslot_t *s = &v->slot[slot];
    const char *want = base && s->r.base_commit[0] ? s->r.base_commit : s->r.commit;
    mesa_tree_t **t = base ? &s->base : &s->tree;
    if (*t && strcmp(mesa_tree_commit(*t), want) == 0)
        return *t;
    mesa_tree_close(*t);
    *t = NULL;
    if (mesa_tree_open(v->cache, want, t) == 0)
        return *t;
    mesa_client_t *c = vfs_client(v);
    mesa_error_t e = {0};
    if (c && mesa_fetch_tree(c, v->cache, s->r.org, s->r.repo, want, t, &e) == 0)
        return *t;
    *t = NULL;
    return NULL;
}

void vfs_staging_path(const mesa_vfs_t *v, const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/staging/%s", v->run, id);
}

int vfs_local_path(const mesa_vfs_t *v, int slot, const char *rel, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s%s%s", v->slot[slot].local, *rel ? "/" : "", rel);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/* ------------------------------------------------------------ blobs */

typedef struct sib {
    mesa_vfs_t *v;
    const char **oids;
    uint64_t *sizes;
    size_t n, cap;
} sib_t;

/* Small missing siblings go in the same batch (a directory per round trip). */
static int add_sibling(void *ctx, const mesa_tree_ent_t *e)
{
    sib_t *s = ctx;
    char p[PATH_MAX];
    if (s->n >= s->cap || e->type != MESA_ENT_FILE || e->size > 65536 || !e->oid[0])
        return s->n >= s->cap;
    if (mesa_blobcache_lookup(s->v->bc, e->oid, p, sizeof p) == 0)
        return 0;
    s->oids[s->n] = strdup(e->oid);
    s->sizes[s->n++] = e->size;
    return 0;
}

int vfs_blob(mesa_vfs_t *v, int slot, const char *oid, char *out, size_t outlen)
{
    if (mesa_blobcache_lookup(v->bc, oid, out, outlen) == 0)
        return 0;
    mesa_client_t *c = vfs_client(v);
    if (!c)
        return -EIO;
    const char *oids[1] = {oid};
    mesa_error_t e = {0};
    int rc = mesa_fetch_blobs(c, v->bc, v->slot[slot].r.org, v->slot[slot].r.repo, oids, NULL, 1,
                              &e);
    if (rc < 0)
        return vfs_api_error(v, rc, &e);
    return mesa_blobcache_lookup(v->bc, oid, out, outlen);
}

void vfs_prefetch_dir(mesa_vfs_t *v, int slot, const char *dir)
{
    mesa_tree_t *t = vfs_tree(v, slot, 0);
    mesa_client_t *c = vfs_client(v);
    enum { MAXB = 256 };
    const char *oids[MAXB];
    uint64_t sizes[MAXB];
    sib_t s = {v, oids, sizes, 0, MAXB};
    if (!t || !c)
        return;
    mesa_tree_children(t, dir, add_sibling, &s);
    if (s.n > 1) {
        mesa_error_t e = {0};
        mesa_fetch_blobs(c, v->bc, v->slot[slot].r.org, v->slot[slot].r.repo, oids, sizes, s.n,
                         &e);
    }
    for (size_t i = 0; i < s.n; i++)
        free((char *)oids[i]);
}

/* ------------------------------------------------------------ ignore */

static void ig_add_file(mesa_vfs_t *v, int slot, const char *rel)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    char path[PATH_MAX];
    if (!n)
        return;
    snprintf(path, sizeof path, "%s/%s/%s/%s", v->prefix, v->slot[slot].r.org,
             v->slot[slot].r.repo, rel);
    if (mesa_vfs_lookup(v, path, 1, n) == 0 && S_ISREG(n->mode)) {
        char real[PATH_MAX];
        const char *src = n->real;
        if (n->where == MESA_VW_TREE) {
            if (vfs_blob(v, slot, n->oid, real, sizeof real) < 0)
                goto out;
            src = real;
        }
        int fd = open(src, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[65536];
            ssize_t len = read(fd, buf, sizeof buf);
            close(fd);
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", rel);
            char *sl = strrchr(dir, '/');
            if (sl)
                *sl = '\0';
            else
                dir[0] = '\0';
            if (len > 0)
                mesa_ignore_add(v->slot[slot].ig, dir, buf, (size_t)len);
        }
    }
out:
    free(n);
}

/* The rules of the .gitignore files of the commit's tree (as the view
 * has them now: local edits count) and of the root, even when new. A new
 * .gitignore in a subdirectory is not looked for: that would cost a
 * listing of every directory. */
static void ig_build(mesa_vfs_t *v, int slot)
{
    vslot_t *s = &v->slot[slot];
    s->ig = mesa_ignore_new();
    if (!s->ig)
        return;
    mesa_tree_t *t = vfs_tree(v, slot, 0);
    uint32_t n = t ? mesa_tree_count(t) : 0;
    char seen_root = 0;
    for (uint32_t i = 0; i < n; i++) {
        mesa_tree_ent_t e;
        mesa_tree_at(t, i, &e);
        if (e.type == MESA_ENT_FILE && ends_with_gitignore(e.path)) {
            ig_add_file(v, slot, e.path);
            if (strcmp(e.path, ".gitignore") == 0)
                seen_root = 1;
        }
    }
    if (!seen_root)
        ig_add_file(v, slot, ".gitignore");
}

int vfs_ignored(mesa_vfs_t *v, int slot, const char *rel, int is_dir)
{
    if (v->push_ignored)
        return strcmp(rel, ".git") == 0 || strncmp(rel, ".git/", 5) == 0;
    if (!v->slot[slot].ig)
        ig_build(v, slot);
    if (!v->slot[slot].ig)
        return 0;
    return mesa_ignore_match(v->slot[slot].ig, rel, is_dir);
}

/* ------------------------------------------------------------ lookup */

static int find_slot(const mesa_vfs_t *v, const char *org, const char *repo)
{
    for (size_t i = 0; i < v->nslots; i++)
        if (strcmp(v->slot[i].r.org, org) == 0 && strcmp(v->slot[i].r.repo, repo) == 0)
            return (int)i;
    return -1;
}

int vfs_slot_of(const mesa_vfs_t *v, const char *path, const char **rel)
{
    mesa_vpath_t vp;
    if (mesa_path_split(v->prefix, path, &vp) != MESA_VP_REPO)
        return -1;
    *rel = vp.rel;
    return find_slot(v, vp.org, vp.repo);
}

static int org_known(const mesa_vfs_t *v, const char *org)
{
    for (size_t i = 0; i < v->nslots; i++)
        if (strcmp(v->slot[i].r.org, org) == 0)
            return 1;
    return 0;
}

static void set_virt_dir(mesa_vfs_t *v, mesa_vnode_t *n)
{
    n->where = MESA_VW_VIRT;
    n->mode = S_IFDIR | 0755;
    n->size = 4096;
    n->mtime_ns = v->t0;
}

static void from_tree_ent(mesa_vnode_t *n, const mesa_tree_ent_t *e, int64_t t0)
{
    n->where = MESA_VW_TREE;
    n->size = e->size;
    n->mtime_ns = e->mtime_ns;
    snprintf(n->oid, sizeof n->oid, "%s", e->oid);
    if (e->type == MESA_ENT_DIR) {
        n->mode = S_IFDIR | 0755;
        n->size = 4096;
        if (!n->mtime_ns)
            n->mtime_ns = t0;
    } else if (e->type == MESA_ENT_LINK) {
        n->mode = S_IFLNK | 0777;
    } else {
        n->mode = S_IFREG | ((e->mode & 0111) ? 0755 : 0644);
    }
}

/* A tree object at tp (base tree when the overlay refers to it). */
static int tree_at(mesa_vfs_t *v, int slot, int base, const char *tp, mesa_vnode_t *n)
{
    mesa_tree_t *t = vfs_tree(v, slot, base);
    mesa_tree_ent_t e;
    if (!*tp) {
        n->where = MESA_VW_TREE;
        n->mode = S_IFDIR | 0755;
        n->size = 4096;
        n->mtime_ns = v->t0;
        return 0;
    }
    if (!t)
        return -EIO;
    if (mesa_tree_lookup(t, tp, &e) < 0)
        return -ENOENT;
    from_tree_ent(n, &e, v->t0);
    return 0;
}

/* The symlink target of a tree link: its blob's content. */
static int tree_link_target(mesa_vfs_t *v, int slot, mesa_vnode_t *n)
{
    char p[PATH_MAX];
    int rc = vfs_blob(v, slot, n->oid, p, sizeof p);
    if (rc < 0)
        return rc;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t len = read(fd, n->target, sizeof n->target - 1);
    close(fd);
    if (len < 0)
        return -EIO;
    n->target[len] = '\0';
    n->size = (uint64_t)len;
    return 0;
}

static int local_at(mesa_vfs_t *v, int slot, const char *rel, mesa_vnode_t *n)
{
    struct stat st;
    /* A path too long for the local store cannot be in it. */
    if (vfs_local_path(v, slot, rel, n->real, sizeof n->real) < 0)
        return -ENOENT;
    if (lstat(n->real, &st) < 0)
        return -ENOENT;
    n->where = MESA_VW_LOCAL;
    n->mode = st.st_mode;
    n->size = (uint64_t)st.st_size;
    n->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (S_ISLNK(st.st_mode)) {
        ssize_t len = readlink(n->real, n->target, sizeof n->target - 1);
        n->target[len > 0 ? len : 0] = '\0';
    }
    return 0;
}

/* The view of slot/rel without following anything. */
static int view(mesa_vfs_t *v, int slot, const char *rel, mesa_vnode_t *n)
{
    mesa_ov_ent_t e;
    char tp[MESA_PATH_MAX];
    struct stat st;
    int rc;
    if (mesa_overlay_lookup(v->ov, (unsigned)slot, rel, &e, tp, sizeof tp) < 0)
        return -ENAMETOOLONG;
    switch (e.kind) {
    case MESA_OV_FILE:
        if (e.staging_id) {
            vfs_staging_path(v, e.staging_id, n->real, sizeof n->real);
            if (stat(n->real, &st) < 0)
                return -EIO;
            n->where = MESA_VW_STAGE;
            n->size = (uint64_t)st.st_size;
            n->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
            int exec = e.exec;
            if (exec < 0) {
                mesa_vnode_t o;
                exec = e.origin && tree_at(v, slot, 1, e.origin, &o) == 0 && (o.mode & 0100);
            }
            n->mode = S_IFREG | (exec ? 0755 : 0644);
            return 0;
        }
        if ((rc = tree_at(v, slot, 1, e.origin ? e.origin : rel, n)) < 0)
            return rc;
        if (e.exec >= 0 && S_ISREG(n->mode))
            n->mode = S_IFREG | (e.exec ? 0755 : 0644);
        if (e.mtime_ns)
            n->mtime_ns = e.mtime_ns;
        return 0;
    case MESA_OV_DIR:
        n->where = MESA_VW_OVL;
        n->mode = S_IFDIR | 0755;
        n->size = 4096;
        n->mtime_ns = e.mtime_ns ? e.mtime_ns : v->t0;
        return 0;
    case MESA_OV_LINK:
        n->where = MESA_VW_OVL;
        n->mode = S_IFLNK | 0777;
        snprintf(n->target, sizeof n->target, "%s", e.target);
        n->size = strlen(n->target);
        n->mtime_ns = e.mtime_ns;
        return 0;
    case MESA_OV_DELETED:
        return local_at(v, slot, rel, n);
    case MESA_OV_NONE:
    default:
        break;
    }
    int base = e.origin != NULL || strcmp(tp, rel) != 0;
    rc = tree_at(v, slot, base, e.origin ? e.origin : tp, n);
    if (rc == -ENOENT)
        return local_at(v, slot, rel, n);
    if (rc < 0)
        return rc;
    if (e.exec >= 0 && S_ISREG(n->mode))
        n->mode = S_IFREG | (e.exec ? 0755 : 0644);
    if (e.mtime_ns)
        n->mtime_ns = e.mtime_ns;
    if (S_ISLNK(n->mode))
        return tree_link_target(v, slot, n);
    return 0;
}

/* Lookup without symlink resolution of intermediate components. */
static int lookup_plain(mesa_vfs_t *v, const char *path, mesa_vnode_t *n)
{
    mesa_vpath_t vp;
    memset(n, 0, sizeof *n);
    snprintf(n->path, sizeof n->path, "%s", path);
    n->slot = -1;
    n->rel = "";
    switch (mesa_path_split(v->prefix, n->path, &vp)) {
    case MESA_VP_PREFIX:
        set_virt_dir(v, n);
        return 0;
    case MESA_VP_ORG:
        if (!org_known(v, vp.org))
            return -ENOENT;
        set_virt_dir(v, n);
        return 0;
    case MESA_VP_REPO:
        break;
    default:
        return -EXDEV;
    }
    n->slot = find_slot(v, vp.org, vp.repo);
    if (n->slot < 0)
        return -ENOENT;
    n->rel = vp.rel;
    return view(v, n->slot, n->rel, n);
}

typedef struct rl_ctx {
    mesa_vfs_t *v;
    mesa_vnode_t *tmp;
} rl_ctx_t;

static int rl_cb(void *ctx, const char *abs, char *target, size_t targetlen)
{
    rl_ctx_t *c = ctx;
    int rc = lookup_plain(c->v, abs, c->tmp);
    if (rc < 0)
        return rc == -EXDEV ? 0 : rc;
    if (!S_ISLNK(c->tmp->mode))
        return 0;
    size_t len = strlen(c->tmp->target);
    if (len >= targetlen)
        return -ENAMETOOLONG;
    memcpy(target, c->tmp->target, len + 1);
    return (int)len;
}

/* Does a proper ancestor of n's path exist as a non-directory? */
static int parent_notdir(mesa_vfs_t *v, const char *path, mesa_vnode_t *tmp)
{
    char p[MESA_PATH_MAX];
    snprintf(p, sizeof p, "%s", path);
    for (char *sl = strrchr(p, '/'); sl && sl > p; sl = strrchr(p, '/')) {
        *sl = '\0';
        if (lookup_plain(v, p, tmp) == 0)
            return !S_ISDIR(tmp->mode);
    }
    return 0;
}

int mesa_vfs_lookup(mesa_vfs_t *v, const char *path, int follow, mesa_vnode_t *out)
{
    int rc = vfs_sync(v);
    if (rc < 0)
        return rc;
    rc = lookup_plain(v, path, out);
    if (rc == 0 && (!follow || !S_ISLNK(out->mode)))
        return 0;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    /* a symlink on the way (or at the end): resolve, then look up again */
    mesa_vnode_t *tmp = malloc(sizeof *tmp);
    char *res = malloc(MESA_PATH_MAX);
    if (!tmp || !res) {
        rc = -ENOMEM;
        goto out;
    }
    rl_ctx_t c = {v, tmp};
    rc = mesa_path_resolve(v->prefix, path, follow, rl_cb, &c, res, MESA_PATH_MAX);
    if (rc < 0)
        goto out;
    if (!mesa_path_under(v->prefix, res)) {
        rc = -EXDEV; /* the caller goes to the real filesystem with out->path */
        snprintf(out->path, sizeof out->path, "%s", res);
        goto out;
    }
    rc = lookup_plain(v, res, out);
    if (rc == -ENOENT && parent_notdir(v, res, tmp))
        rc = -ENOTDIR;
out:
    free(tmp);
    free(res);
    return rc;
}

/* ------------------------------------------------------------ stat */

static unsigned subdirs(mesa_vfs_t *v, const char *path)
{
    mesa_dirent_t *d;
    size_t n, k = 0;
    if (mesa_vfs_list(v, path, &d, &n) < 0)
        return 0;
    for (size_t i = 2; i < n; i++)
        k += d[i].type == DT_DIR;
    mesa_vfs_list_free(d, n);
    return (unsigned)k;
}

int mesa_vfs_stat(mesa_vfs_t *v, const mesa_vnode_t *n, struct stat *st)
{
    memset(st, 0, sizeof *st);
    if (n->where == MESA_VW_LOCAL && lstat(n->real, st) < 0)
        return -errno;
    st->st_dev = v->dev;
    st->st_ino = mesa_vfs_ino(n->path);
    st->st_mode = n->mode;
    st->st_uid = getuid();
    st->st_gid = getgid();
    st->st_blksize = 4096;
    if (n->where != MESA_VW_LOCAL) {
        st->st_size = (off_t)n->size;
        st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
        int64_t m = n->mtime_ns;
        st->st_mtim.tv_sec = m / 1000000000;
        st->st_mtim.tv_nsec = m % 1000000000;
        st->st_atim = st->st_ctim = st->st_mtim;
    }
    st->st_nlink = S_ISDIR(n->mode) ? 2 + subdirs(v, n->path) : 1;
    return 0;
}

int mesa_vfs_access(mesa_vfs_t *v, const char *path, int mode, int follow)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, follow, n);
    if (rc == 0 && (mode & W_OK) && n->slot >= 0 &&
        (v->slot[n->slot].r.flags & MESA_STATE_RO))
        rc = -EROFS;
    else if (rc == 0 && (mode & W_OK) && n->slot < 0)
        rc = -EACCES;
    else if (rc == 0 && (mode & X_OK) && !(n->mode & 0111))
        rc = -EACCES;
    free(n);
    return rc;
}

int mesa_vfs_slashed(const char *path)
{
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/' && path[l - 2] == '/')
        l--;
    if (l > 1 && path[l - 1] == '/')
        return 1;
    return l > 1 && path[l - 1] == '.' && path[l - 2] == '/';
}

int mesa_vfs_want_dir(mesa_vfs_t *v, const char *path, int creat)
{
    mesa_vnode_t *n;
    if (!*path)
        return 0; /* a path the shim already failed */
    if (!(n = malloc(sizeof *n)))
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, 1, n);
    if (rc == 0 && !S_ISDIR(n->mode))
        rc = -ENOTDIR;
    else if (rc == -ENOENT && creat)
        rc = -EISDIR;
    else if (rc == -EXDEV)
        rc = 0; /* outside the mount: the real call decides */
    free(n);
    return rc;
}

/* Is the real file behind n's content the file st describes? */
static int same_backing(mesa_vfs_t *v, const mesa_vnode_t *n, const struct stat *st)
{
    char blob[PATH_MAX];
    const char *p = n->real;
    struct stat bs;
    if (S_ISDIR(n->mode))
        return S_ISDIR(st->st_mode);
    if (n->where == MESA_VW_TREE) {
        if (mesa_blobcache_lookup(v->bc, n->oid, blob, sizeof blob) < 0)
            return 0;
        p = blob;
    } else if (n->where != MESA_VW_STAGE && n->where != MESA_VW_LOCAL) {
        return 0;
    }
    return stat(p, &bs) == 0 && bs.st_dev == st->st_dev && bs.st_ino == st->st_ino;
}

int mesa_vfs_fstat(mesa_vfs_t *v, const char *path, int fd, struct stat *st)
{
    struct stat fs;
    if (fstat(fd, &fs) < 0)
        return -errno;
    mesa_vnode_t *n = malloc(sizeof *n);
    int rc = n ? mesa_vfs_lookup(v, path, 1, n) : -ENOMEM;
    if (rc == 0 && same_backing(v, n, &fs)) {
        rc = mesa_vfs_stat(v, n, st);
    } else if (rc == -EXDEV) { /* opened through a symlink out of the mount */
        *st = fs;
        rc = 0;
    } else {
        /* path names another file now, or nothing (or cannot be looked
         * up): the descriptor's own file, as the mount shows files; with
         * no links left when its name is gone */
        mode_t perm = rc == 0 && S_ISREG(n->mode) ? n->mode : fs.st_mode;
        *st = fs;
        st->st_dev = v->dev;
        st->st_ino = mesa_vfs_ino(path);
        st->st_mode = (fs.st_mode & S_IFMT) | ((perm & 0111) ? 0755 : 0644);
        st->st_uid = getuid();
        st->st_gid = getgid();
        st->st_nlink = rc != -ENOENT && rc != -ENOTDIR;
        st->st_atim = st->st_ctim = st->st_mtim;
        rc = 0;
    }
    free(n);
    return rc;
}

/* ------------------------------------------------------------ listings */

typedef struct lst {
    mesa_vfs_t *v;
    const char *dir; /* mount path of the directory */
    mesa_dirent_t *d;
    size_t n, cap;
    int err;
} lst_t;

static mesa_dirent_t *lst_find(lst_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->d[i].name, name) == 0)
            return &l->d[i];
    return NULL;
}

static void lst_put(lst_t *l, const char *name, unsigned char type)
{
    mesa_dirent_t *x = lst_find(l, name);
    if (!x) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 32;
            mesa_dirent_t *d = realloc(l->d, cap * sizeof *d);
            if (!d) {
                l->err = -ENOMEM;
                return;
            }
            l->d = d;
            l->cap = cap;
        }
        x = &l->d[l->n++];
        x->name = strdup(name);
        if (!x->name) {
            l->n--;
            l->err = -ENOMEM;
            return;
        }
        char p[MESA_PATH_MAX];
        if (name[0] != '.' || mesa_path_normalize(l->v->prefix, l->dir, name, p, sizeof p) < 0)
            snprintf(p, sizeof p, "%s/%s", l->dir, name); /* "." and "..": as stat names them */
        x->ino = mesa_vfs_ino(p);
    }
    x->type = type;
}

static void lst_drop(lst_t *l, const char *name)
{
    mesa_dirent_t *x = lst_find(l, name);
    if (x) {
        free(x->name);
        *x = l->d[--l->n];
    }
}

static unsigned char dtype(int t)
{
    return t == MESA_ENT_DIR ? DT_DIR : t == MESA_ENT_LINK ? DT_LNK : DT_REG;
}

static int tree_child(void *ctx, const mesa_tree_ent_t *e)
{
    lst_t *l = ctx;
    const char *name = strrchr(e->path, '/');
    lst_put(l, name ? name + 1 : e->path, dtype(e->type));
    return 0;
}

typedef struct ovc {
    lst_t *l;
    int slot;
} ovc_t;

static int ov_child(void *ctx, const char *name, const mesa_ov_ent_t *e)
{
    ovc_t *c = ctx;
    mesa_vnode_t n;
    switch (e->kind) {
    case MESA_OV_DELETED:
        lst_drop(c->l, name);
        break;
    case MESA_OV_FILE:
        lst_put(c->l, name, DT_REG);
        break;
    case MESA_OV_DIR:
        lst_put(c->l, name, DT_DIR);
        break;
    case MESA_OV_LINK:
        lst_put(c->l, name, DT_LNK);
        break;
    default:
        if (e->origin && tree_at(c->l->v, c->slot, 1, e->origin, &n) == 0)
            lst_put(c->l, name, S_ISDIR(n.mode) ? DT_DIR : S_ISLNK(n.mode) ? DT_LNK : DT_REG);
        break;
    }
    return 0;
}

static void local_children(lst_t *l, const char *real)
{
    DIR *d = opendir(real);
    struct dirent *de;
    if (!d)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            lst_find(l, de->d_name))
            continue;
        lst_put(l, de->d_name, de->d_type == DT_DIR ? DT_DIR : de->d_type == DT_LNK ? DT_LNK
                                                                                   : DT_REG);
    }
    closedir(d);
}

static void repo_children(mesa_vfs_t *v, lst_t *l, const mesa_vnode_t *n)
{
    const char *origin = NULL;
    ovc_t c = {l, n->slot};
    char real[PATH_MAX];
    if (n->where != MESA_VW_LOCAL) {
        /* overlay first to learn the origin, then tree, then overlay again to
         * apply whiteouts and overrides over the tree's children */
        mesa_overlay_children(v->ov, (unsigned)n->slot, n->rel, ov_child, &c, &origin);
        if (origin) {
            char o[MESA_PATH_MAX];
            snprintf(o, sizeof o, "%s", origin);
            int base = strcmp(o, n->rel) != 0 || n->where != MESA_VW_TREE;
            mesa_tree_t *t = vfs_tree(v, n->slot, base);
            if (t)
                mesa_tree_children(t, o, tree_child, l);
            mesa_overlay_children(v->ov, (unsigned)n->slot, n->rel, ov_child, &c, &origin);
        }
    }
    if (vfs_local_path(v, n->slot, n->rel, real, sizeof real) == 0)
        local_children(l, real);
}

int mesa_vfs_list(mesa_vfs_t *v, const char *path, mesa_dirent_t **out, size_t *count)
{
    mesa_vnode_t *n = malloc(sizeof *n);
    lst_t l = {v, path, NULL, 0, 0, 0};
    int rc = n ? mesa_vfs_lookup(v, path, 1, n) : -ENOMEM;
    if (rc < 0)
        goto out;
    if (!S_ISDIR(n->mode)) {
        rc = -ENOTDIR;
        goto out;
    }
    lst_put(&l, ".", DT_DIR);
    lst_put(&l, "..", DT_DIR);
    if (n->slot >= 0) {
        repo_children(v, &l, n);
    } else {
        mesa_vpath_t vp;
        int top = mesa_path_split(v->prefix, n->path, &vp) == MESA_VP_PREFIX;
        for (size_t i = 0; i < v->nslots; i++)
            if (top)
                lst_put(&l, v->slot[i].r.org, DT_DIR);
            else if (strcmp(v->slot[i].r.org, vp.org) == 0)
                lst_put(&l, v->slot[i].r.repo, DT_DIR);
    }
    rc = l.err;
out:
    free(n);
    if (rc < 0) {
        mesa_vfs_list_free(l.d, l.n);
        return rc;
    }
    *out = l.d;
    *count = l.n;
    return 0;
}

void mesa_vfs_list_free(mesa_dirent_t *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(d[i].name);
    free(d);
}

/* ------------------------------------------------------------ ".." */

static int has_dotdot(const char *p)
{
    for (const char *s = strstr(p, ".."); s; s = strstr(s + 1, ".."))
        if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
            return 1;
    return 0;
}

/* ".." after a mount directory: the parent of what it resolves to (a
 * symlink to a directory climbs from the target, as the kernel does);
 * ENOTDIR after a file. cur is absolute and normalised; rewritten. */
static int climb(mesa_vfs_t *v, char *cur, size_t len, mesa_vnode_t *n, int is_cwd)
{
    if (mesa_path_under(v->prefix, cur)) {
        int rc = mesa_vfs_lookup(v, cur, 1, n);
        if (rc == 0 && !S_ISDIR(n->mode))
            return -ENOTDIR;
        if (rc < 0 && rc != -EXDEV && !(rc == -ENOENT && is_cwd))
            return rc;
        if (rc != -ENOENT) /* a removed cwd's ".." is its old parent */
            snprintf(cur, len, "%s", n->path); /* the resolved directory */
    }
    char tmp[MESA_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", cur);
    return mesa_path_normalize(v->prefix, tmp, "..", cur, len);
}

int mesa_vfs_normalize(mesa_vfs_t *v, const char *cwd, const char *path, char *out, size_t len)
{
    if (!has_dotdot(path))
        return mesa_path_normalize(v->prefix, cwd, path, out, len);
    mesa_vnode_t *n = malloc(sizeof *n);
    char *cur = malloc(MESA_PATH_MAX), *seg = malloc(MESA_PATH_MAX);
    int rc = n && cur && seg ? 0 : -ENOMEM;
    if (rc == 0)
        rc = mesa_path_normalize(v->prefix, path[0] == '/' ? "/" : cwd, ".", cur, MESA_PATH_MAX);
    int is_cwd = path[0] != '/'; /* cur is still the cwd itself */
    for (const char *p = path; rc == 0 && *p;) {
        size_t l = strcspn(p, "/");
        if (l == 2 && p[0] == '.' && p[1] == '.') {
            rc = climb(v, cur, MESA_PATH_MAX, n, is_cwd);
            is_cwd = 0;
        } else if (l && !(l == 1 && p[0] == '.')) {
            is_cwd = 0;
            char tmp[MESA_PATH_MAX];
            snprintf(seg, MESA_PATH_MAX, "%.*s", (int)l, p);
            snprintf(tmp, sizeof tmp, "%s", cur);
            rc = mesa_path_normalize(v->prefix, tmp, seg, cur, MESA_PATH_MAX);
        }
        p += l;
        while (*p == '/')
            p++;
    }
    if (rc == 0 && strlen(cur) >= len)
        rc = -ENAMETOOLONG;
    if (rc == 0)
        strcpy(out, cur);
    free(n);
    free(cur);
    free(seg);
    return rc;
}
