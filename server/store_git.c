/* server/store_git.c - mesad's git storage: bare repositories in Jujutsu's format.
 *
 * Everything mesad does with git goes through this module (API in store_git.h),
 * so the rest of the server never includes <git2.h> and the storage can be
 * swapped. Invariants: every commit written here carries a change-id header and
 * is kept reachable by refs/jj/keep/<oid>; refs only move by compare-and-swap;
 * empty directories are kept as empty trees - which git's index cannot hold, so
 * tree edits use treebuilders, and merges put empty directories back afterwards.
 * Called by mesad's repository layer; one sg_repo_t per thread at a time.
 */
#include "server/store_git.h"
#include "core/utf8.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/rand.h>

#define BOOKMARK_MAX 200
#define KEEP_PREFIX "refs/jj/keep/"
#define HEADS_PREFIX "refs/heads/"
#define MODE_TREE 0040000u
#define MODE_BLOB 0100644u
#define MODE_EXEC 0100755u
#define MODE_LINK 0120000u

struct sg_repo {
    git_repository *repo;
    git_odb *odb;
};

/* ------------------------------------------------------------------ helpers */

/* libgit2 error code -> negative errno. */
static int gerr(int e)
{
    const git_error *le;

    switch (e) {
    case GIT_ENOTFOUND:
        return -ENOENT;
    case GIT_EEXISTS:
        return -EEXIST;
    case GIT_EINVALIDSPEC:
    case GIT_EINVALID:
    case GIT_EAMBIGUOUS:
        return -EINVAL;
    case GIT_EMODIFIED:
    case GIT_ELOCKED:
        return -EAGAIN;
    default:
        break;
    }
    le = git_error_last();
    if (le && le->klass == GIT_ERROR_NOMEMORY)
        return -ENOMEM;
    if (le && le->klass == GIT_ERROR_INVALID)
        return -EINVAL;
    return -EIO;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Exactly 40 hex digits -> oid, else -EINVAL. */
static int parse_oid(const char *hex, git_oid *out)
{
    size_t i;

    if (!hex)
        return -EINVAL;
    for (i = 0; i < GIT_OID_HEXSZ; i++)
        if (!is_hex(hex[i]))
            return -EINVAL;
    if (hex[i] != '\0' || git_oid_fromstrn(out, hex, GIT_OID_HEXSZ) < 0)
        return -EINVAL;
    return 0;
}

static void fmt_oid(char out[SG_OID_HEX], const git_oid *id)
{
    git_oid_tostr(out, SG_OID_HEX, id);
}

static int empty_tree_oid(git_oid *out)
{
    return git_odb_hash(out, "", 0, GIT_OBJECT_TREE) < 0 ? -EIO : 0;
}

/* "dir" + "/" + "name", or just "name" at the root. malloc'd; NULL on ENOMEM. */
static char *join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    char *p = malloc(dl + nl + 2);

    if (!p)
        return NULL;
    if (dl) {
        memcpy(p, dir, dl);
        p[dl++] = '/';
    }
    memcpy(p + dl, name, nl + 1);
    return p;
}

static int has_type(sg_repo_t *r, const git_oid *id, git_object_t want)
{
    git_object_t t;
    size_t len;
    int rc = git_odb_read_header(&len, &t, r->odb, id);

    if (rc == GIT_ENOTFOUND)
        return -ENOENT;
    if (rc < 0)
        return gerr(rc);
    return t == want;
}

/* hex -> tree; NULL or "" gives *out = NULL (the empty tree). */
static int lookup_tree_opt(sg_repo_t *r, const char *hex, git_tree **out)
{
    git_oid id;
    int rc;

    *out = NULL;
    if (!hex || !*hex)
        return 0;
    if ((rc = parse_oid(hex, &id)) < 0)
        return rc;
    rc = git_tree_lookup(out, r->repo, &id);
    return rc < 0 ? gerr(rc) : 0;
}

static int write_empty_tree(sg_repo_t *r, git_oid *out)
{
    git_treebuilder *b = NULL;
    int rc = git_treebuilder_new(&b, r->repo, NULL);

    if (rc == 0)
        rc = git_treebuilder_write(out, b);
    git_treebuilder_free(b);
    return rc < 0 ? gerr(rc) : 0;
}

/* Like lookup_tree_opt, but NULL/"" gives a real (written) empty tree. */
static int lookup_tree_or_empty(sg_repo_t *r, const char *hex, git_tree **out)
{
    git_oid id;
    int rc;

    if ((rc = lookup_tree_opt(r, hex, out)) < 0 || *out)
        return rc;
    if ((rc = write_empty_tree(r, &id)) < 0)
        return rc;
    rc = git_tree_lookup(out, r->repo, &id);
    return rc < 0 ? gerr(rc) : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---------------------------------------------------------- init and repos */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void global_init_once(void)
{
    if (git_libgit2_init() < 0)
        init_rc = -EIO;
    else if (git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1) < 0)
        init_rc = -EIO;
}

int sg_global_init(void)
{
    pthread_once(&init_once, global_init_once);
    return init_rc;
}

static int init_bare(const char *path, const char *bookmark)
{
    git_repository_init_options o;
    git_repository *repo = NULL;
    int rc;

    if (git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION) < 0)
        return -EIO;
    o.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_NO_REINIT;
    o.initial_head = bookmark;
    rc = git_repository_init_ext(&repo, path, &o);
    git_repository_free(repo);
    return rc < 0 ? gerr(rc) : 0;
}

static int write_root(const char *path, const char *bookmark, char oid[SG_OID_HEX])
{
    static const sg_sig_t root = {"root", "root@mesa", 0, 0};
    char tree[SG_OID_HEX], ref[sizeof HEADS_PREFIX + BOOKMARK_MAX];
    sg_repo_t *r = NULL;
    int rc;

    if ((rc = sg_repo_open(path, &r)) < 0)
        return rc;
    if ((rc = sg_tree_apply(r, NULL, NULL, 0, tree)) < 0)
        goto out;
    rc = sg_commit_write(r, tree, NULL, 0, SG_ROOT_CHANGE_ID, &root, &root, "", oid);
    if (rc == 0)
        rc = sg_commit_keep(r, oid);
    if (rc < 0)
        goto out;
    snprintf(ref, sizeof ref, HEADS_PREFIX "%s", bookmark);
    rc = sg_ref_cas(r, ref, oid, NULL);
out:
    sg_repo_close(r);
    return rc;
}

int sg_repo_create(const char *path, const char *default_bookmark, char root_oid[SG_OID_HEX])
{
    int rc;

    if ((rc = sg_global_init()) < 0)
        return rc;
    if (!path || !*path || !sg_bookmark_name_valid(default_bookmark))
        return -EINVAL;
    if (mkdir(path, 0777) < 0)
        return -errno;
    rc = init_bare(path, default_bookmark);
    if (rc == 0)
        rc = write_root(path, default_bookmark, root_oid);
    if (rc < 0)
        sg_repo_destroy(path);
    return rc;
}

int sg_repo_open(const char *path, sg_repo_t **out)
{
    unsigned flags = GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_BARE;
    sg_repo_t *r;
    int rc;

    *out = NULL;
    if ((rc = sg_global_init()) < 0)
        return rc;
    if (!path)
        return -EINVAL;
    if (!(r = calloc(1, sizeof *r)))
        return -ENOMEM;
    rc = git_repository_open_ext(&r->repo, path, flags, NULL);
    if (rc == 0)
        rc = git_repository_odb(&r->odb, r->repo);
    if (rc < 0) {
        rc = gerr(rc);
        sg_repo_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

void sg_repo_close(sg_repo_t *r)
{
    if (!r)
        return;
    git_odb_free(r->odb);
    git_repository_free(r->repo);
    free(r);
}

static int rm_at(int dfd, const char *name);

/* Remove everything inside the directory open at fd (consumed). */
static int rm_contents(int fd)
{
    DIR *d = fdopendir(fd);
    struct dirent *de;
    int rc = 0;

    if (!d) {
        rc = -errno;
        close(fd);
        return rc;
    }
    while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            rc = rm_at(dirfd(d), de->d_name);
        if (rc == -ENOENT)
            rc = 0;
    }
    if (rc == 0 && errno)
        rc = -errno;
    closedir(d);
    return rc;
}

static int rm_at(int dfd, const char *name)
{
    int fd, rc;

    if (unlinkat(dfd, name, 0) == 0)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if ((rc = rm_contents(fd)) < 0)
        return rc;
    return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Unlink *.lock files below dirfd (recursively); returns the count. */
static int clear_locks_at(int dirfd)
{
    DIR *d = fdopendir(dirfd);
    struct dirent *de;
    int n = 0;
    if (!d) {
        close(dirfd);
        return 0;
    }
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (de->d_type == DT_DIR) {
            int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
            if (sub >= 0)
                n += clear_locks_at(sub);
        } else if (len > 5 && strcmp(de->d_name + len - 5, ".lock") == 0 &&
                   unlinkat(dirfd, de->d_name, 0) == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

int sg_repo_clear_stale_locks(const char *path)
{
    char p[4200];
    int n = 0;
    snprintf(p, sizeof p, "%s/packed-refs.lock", path);
    if (unlink(p) == 0)
        n++;
    snprintf(p, sizeof p, "%s/refs", path);
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? n : -errno;
    return n + clear_locks_at(fd);
}

int sg_repo_destroy(const char *path)
{
    if (!path || !*path)
        return -EINVAL;
    return rm_at(AT_FDCWD, path);
}

/* ------------------------------------------------------------------- blobs */

int sg_blob_write(sg_repo_t *r, const void *data, size_t len, char oid[SG_OID_HEX])
{
    git_oid id;
    int rc;

    if (!data && len)
        return -EINVAL;
    rc = git_blob_create_from_buffer(&id, r->repo, len ? data : "", len);
    if (rc < 0)
        return gerr(rc);
    fmt_oid(oid, &id);
    return 0;
}

int sg_blob_read(sg_repo_t *r, const char *oid, void **data, size_t *len)
{
    git_odb_object *obj = NULL;
    git_oid id;
    char *buf;
    size_t n;
    int rc;

    *data = NULL;
    *len = 0;
    if ((rc = parse_oid(oid, &id)) < 0)
        return rc;
    if ((rc = git_odb_read(&obj, r->odb, &id)) < 0)
        return gerr(rc);
    rc = -EINVAL;
    if (git_odb_object_type(obj) != GIT_OBJECT_BLOB)
        goto out;
    n = git_odb_object_size(obj);
    rc = -ENOMEM;
    if (!(buf = malloc(n + 1)))
        goto out;
    memcpy(buf, git_odb_object_data(obj), n);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    rc = 0;
out:
    git_odb_object_free(obj);
    return rc;
}

int sg_blob_size(sg_repo_t *r, const char *oid, uint64_t *size)
{
    git_object_t t;
    git_oid id;
    size_t n;
    int rc;

    if ((rc = parse_oid(oid, &id)) < 0)
        return rc;
    if ((rc = git_odb_read_header(&n, &t, r->odb, &id)) < 0)
        return gerr(rc);
    if (t != GIT_OBJECT_BLOB)
        return -EINVAL;
    *size = n;
    return 0;
}

int sg_blob_exists(sg_repo_t *r, const char *oid)
{
    git_oid id;
    int rc;

    if ((rc = parse_oid(oid, &id)) < 0)
        return rc;
    rc = has_type(r, &id, GIT_OBJECT_BLOB);
    return rc == -ENOENT ? 0 : rc;
}

/* ------------------------------------------------------------- tree edits */

/* An edit session keeps, per directory touched, a treebuilder seeded from the
 * base tree. Only loaded directories on modified paths are written back, so a
 * change costs one tree write per path segment, not per tree in the repo. */
struct tnode {
    char *name; /* segment; NULL for the root */
    struct tnode *parent;
    git_treebuilder *bld;
    git_oid orig; /* the tree it was loaded from, if has_orig */
    int has_orig, dirty;
    struct tnode **kids; /* loaded subdirectories, sorted by name */
    size_t nkids, capkids;
};

typedef struct tapply {
    sg_repo_t *r;
    struct tnode *root;
} tapply_t;

static void tnode_free(struct tnode *n)
{
    size_t i;

    if (!n)
        return;
    for (i = 0; i < n->nkids; i++)
        tnode_free(n->kids[i]);
    free(n->kids);
    git_treebuilder_free(n->bld);
    free(n->name);
    free(n);
}

static int tnode_new(tapply_t *t, struct tnode *parent, const char *name, const git_tree *src,
                     struct tnode **out)
{
    struct tnode *n = calloc(1, sizeof *n);
    int rc;

    if (!n)
        return -ENOMEM;
    n->parent = parent;
    if (name && !(n->name = strdup(name))) {
        tnode_free(n);
        return -ENOMEM;
    }
    if ((rc = git_treebuilder_new(&n->bld, t->r->repo, src)) < 0) {
        tnode_free(n);
        return gerr(rc);
    }
    if (src) {
        git_oid_cpy(&n->orig, git_tree_id(src));
        n->has_orig = 1;
    }
    *out = n;
    return 0;
}

/* Mark n and its ancestors as needing a rewrite. */
static void mark_dirty(struct tnode *n)
{
    for (; n && !n->dirty; n = n->parent)
        n->dirty = 1;
}

/* 1 and *idx if found, else 0 and *idx = insertion point. */
static int kid_find(const struct tnode *n, const char *name, size_t *idx)
{
    size_t lo = 0, hi = n->nkids;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(n->kids[mid]->name, name);
        if (c == 0) {
            *idx = mid;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *idx = lo;
    return 0;
}

/* Insert kid at idx; frees kid on failure. */
static int kid_insert(struct tnode *n, size_t idx, struct tnode *kid)
{
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? 2 * n->capkids : 4;
        struct tnode **v = realloc(n->kids, cap * sizeof *v);
        if (!v) {
            tnode_free(kid);
            return -ENOMEM;
        }
        n->kids = v;
        n->capkids = cap;
    }
    memmove(n->kids + idx + 1, n->kids + idx, (n->nkids - idx) * sizeof *n->kids);
    n->kids[idx] = kid;
    n->nkids++;
    return 0;
}

static void kid_remove(struct tnode *n, size_t idx)
{
    tnode_free(n->kids[idx]);
    memmove(n->kids + idx, n->kids + idx + 1, (n->nkids - idx - 1) * sizeof *n->kids);
    n->nkids--;
}

static int kid_load(tapply_t *t, struct tnode *n, size_t idx, const git_tree_entry *e,
                    struct tnode **out)
{
    git_tree *tree = NULL;
    int rc = git_tree_lookup(&tree, t->r->repo, git_tree_entry_id(e));

    if (rc < 0)
        return gerr(rc);
    rc = tnode_new(t, n, git_tree_entry_name(e), tree, out);
    git_tree_free(tree);
    return rc < 0 ? rc : kid_insert(n, idx, *out);
}

static int kid_create(tapply_t *t, struct tnode *n, size_t idx, const char *name,
                      struct tnode **out)
{
    int rc = tnode_new(t, n, name, NULL, out);

    if (rc == 0 && (rc = kid_insert(n, idx, *out)) == 0)
        mark_dirty(*out);
    return rc;
}

/* The subdirectory seg of n: loaded, or created when missing and create is set.
 * -ENOTDIR if seg is a file, -ENOENT if missing and !create. */
static int descend(tapply_t *t, struct tnode *n, const char *seg, int create, struct tnode **out)
{
    const git_tree_entry *e;
    size_t i;

    if (kid_find(n, seg, &i)) {
        *out = n->kids[i];
        return 0;
    }
    e = git_treebuilder_get(n->bld, seg);
    if (e && git_tree_entry_type(e) != GIT_OBJECT_TREE)
        return -ENOTDIR;
    if (!e && !create)
        return -ENOENT;
    return e ? kid_load(t, n, i, e, out) : kid_create(t, n, i, seg, out);
}

/* Segments git cannot store (".git" is refused by git itself). */
static int check_seg(const char *s)
{
    return (!*s || !strcmp(s, ".") || !strcmp(s, "..") || !strcasecmp(s, ".git")) ? -EINVAL : 0;
}

/* Split p (modified in place) into its parent directory node and leaf name. */
static int walk_parents(tapply_t *t, char *p, int create, struct tnode **dir, char **leaf)
{
    struct tnode *n = t->root;
    char *seg = p, *slash;
    int rc;

    while ((slash = strchr(seg, '/')) != NULL) {
        *slash = '\0';
        if ((rc = check_seg(seg)) < 0 || (rc = descend(t, n, seg, create, &n)) < 0)
            return rc;
        seg = slash + 1;
    }
    if ((rc = check_seg(seg)) < 0)
        return rc;
    *dir = n;
    *leaf = seg;
    return 0;
}

/* Explain a failed treebuilder insert of blob id: missing, not a blob, or
 * a name git refuses. */
static int insert_error(sg_repo_t *r, int err, const git_oid *id)
{
    int rc = gerr(err);

    if (rc == -ENOMEM)
        return rc;
    rc = has_type(r, id, GIT_OBJECT_BLOB);
    return rc < 0 ? rc : -EINVAL;
}

static int is_file_mode(unsigned m)
{
    return m == MODE_BLOB || m == MODE_EXEC || m == MODE_LINK;
}

static int op_upsert(tapply_t *t, char *p, const sg_op_t *op)
{
    const git_tree_entry *e;
    struct tnode *dir;
    git_oid id;
    char *leaf;
    size_t i;
    int rc;

    if (!is_file_mode(op->mode) || parse_oid(op->oid, &id) < 0)
        return -EINVAL;
    if ((rc = walk_parents(t, p, 1, &dir, &leaf)) < 0)
        return rc;
    e = git_treebuilder_get(dir->bld, leaf);
    if (kid_find(dir, leaf, &i) || (e && git_tree_entry_type(e) == GIT_OBJECT_TREE))
        return -EISDIR;
    if (e && git_oid_equal(git_tree_entry_id(e), &id) &&
        (unsigned)git_tree_entry_filemode(e) == op->mode)
        return 0;
    rc = git_treebuilder_insert(NULL, dir->bld, leaf, &id, (git_filemode_t)op->mode);
    if (rc < 0)
        return insert_error(t->r, rc, &id);
    mark_dirty(dir);
    return 0;
}

static int op_delete(tapply_t *t, char *p)
{
    struct tnode *dir;
    char *leaf;
    size_t i;
    int rc, changed = 0;

    rc = walk_parents(t, p, 0, &dir, &leaf);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return 0;
    if (rc < 0)
        return rc;
    if (kid_find(dir, leaf, &i)) {
        kid_remove(dir, i);
        changed = 1;
    }
    if (git_treebuilder_get(dir->bld, leaf)) {
        if ((rc = git_treebuilder_remove(dir->bld, leaf)) < 0)
            return gerr(rc);
        changed = 1;
    }
    if (changed)
        mark_dirty(dir);
    return 0;
}

static int op_mkdir(tapply_t *t, char *p)
{
    const git_tree_entry *e;
    struct tnode *dir, *kid;
    char *leaf;
    size_t i;
    int rc;

    if ((rc = walk_parents(t, p, 1, &dir, &leaf)) < 0)
        return rc;
    if (kid_find(dir, leaf, &i))
        return 0;
    e = git_treebuilder_get(dir->bld, leaf);
    if (e)
        return git_tree_entry_type(e) == GIT_OBJECT_TREE ? 0 : -EEXIST;
    return kid_create(t, dir, i, leaf, &kid);
}

static int tapply_op(tapply_t *t, const sg_op_t *op)
{
    char *p;
    int rc;

    if (!op->path || !*op->path)
        return -EINVAL;
    if (!(p = strdup(op->path)))
        return -ENOMEM;
    switch (op->kind) {
    case SG_OP_UPSERT:
        rc = op_upsert(t, p, op);
        break;
    case SG_OP_DELETE:
        rc = op_delete(t, p);
        break;
    case SG_OP_MKDIR:
        rc = op_mkdir(t, p);
        break;
    default:
        rc = -EINVAL;
    }
    free(p);
    return rc;
}

/* Start a session on base (NULL = empty tree). */
static int tapply_begin(tapply_t *t, sg_repo_t *r, const git_oid *base)
{
    git_tree *tree = NULL;
    int rc;

    t->r = r;
    t->root = NULL;
    if (base && (rc = git_tree_lookup(&tree, r->repo, base)) < 0)
        return gerr(rc);
    rc = tnode_new(t, NULL, NULL, tree, &t->root);
    git_tree_free(tree);
    if (rc == 0 && !base)
        t->root->dirty = 1;
    return rc;
}

/* Write n bottom-up; untouched directories keep their oid. */
static int tnode_write(struct tnode *n, git_oid *out)
{
    git_oid id;
    size_t i;
    int rc;

    if (!n->dirty && n->has_orig) {
        git_oid_cpy(out, &n->orig);
        return 0;
    }
    for (i = 0; i < n->nkids; i++) {
        struct tnode *k = n->kids[i];
        if (!k->dirty)
            continue;
        if ((rc = tnode_write(k, &id)) < 0)
            return rc;
        if ((rc = git_treebuilder_insert(NULL, n->bld, k->name, &id, GIT_FILEMODE_TREE)) < 0)
            return gerr(rc);
    }
    rc = git_treebuilder_write(out, n->bld);
    return rc < 0 ? gerr(rc) : 0;
}

static int tapply_finish(tapply_t *t, git_oid *out)
{
    return tnode_write(t->root, out);
}

static void tapply_end(tapply_t *t)
{
    tnode_free(t->root);
    t->root = NULL;
}

int sg_tree_apply(sg_repo_t *r, const char *base_tree, const sg_op_t *ops, size_t nops,
                  char out_tree[SG_OID_HEX])
{
    int has_base = base_tree && *base_tree;
    git_oid base, id;
    tapply_t t;
    size_t i;
    int rc;

    if (!ops && nops)
        return -EINVAL;
    if (has_base && (rc = parse_oid(base_tree, &base)) < 0)
        return rc;
    if ((rc = tapply_begin(&t, r, has_base ? &base : NULL)) < 0)
        return rc;
    for (i = 0; i < nops && rc == 0; i++)
        rc = tapply_op(&t, &ops[i]);
    if (rc == 0 && (rc = tapply_finish(&t, &id)) == 0)
        fmt_oid(out_tree, &id);
    tapply_end(&t);
    return rc;
}

/* ----------------------------------------------------------------- commits */

static int make_sig(git_signature **out, const sg_sig_t *s)
{
    int rc;

    if (!s || !s->name || !s->email)
        return -EINVAL;
    rc = git_signature_new(out, s->name, s->email, (git_time_t)s->when, s->offset_min);
    return rc < 0 ? gerr(rc) : 0;
}

static void free_parents(git_commit **v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        git_commit_free(v[i]);
    free(v);
}

static int lookup_parents(sg_repo_t *r, const char *const *hex, size_t n, git_commit ***out)
{
    git_commit **v;
    git_oid id;
    size_t i;
    int rc = 0;

    *out = NULL;
    if (n == 0)
        return 0;
    if (!hex)
        return -EINVAL;
    if (!(v = calloc(n, sizeof *v)))
        return -ENOMEM;
    for (i = 0; i < n && rc == 0; i++) {
        if ((rc = parse_oid(hex[i], &id)) == 0 && (rc = git_commit_lookup(&v[i], r->repo, &id)))
            rc = gerr(rc);
    }
    if (rc < 0) {
        free_parents(v, n);
        return rc;
    }
    *out = v;
    return 0;
}

/* Write buf as a commit with "change-id <cid>" added as the last header. */
/* unique: refuse (-EEXIST) to produce a commit that already exists: a
 * rewrite that comes back to an earlier tree within the same second would
 * otherwise get that commit's id again, and clients cache what they know
 * of a commit (its listing, its per-path mtimes) by id, as immutable. */
static int write_with_change_id(sg_repo_t *r, const git_buf *buf, const char *cid, git_oid *id,
                                int unique)
{
    static const char key[] = "change-id ";
    const size_t extra = sizeof key - 1 + SG_CHANGE_ID_LEN + 1;
    const char *end = strstr(buf->ptr, "\n\n");
    size_t head, n = buf->size + extra;
    char *obj;
    int rc;

    if (!end)
        return -EIO;
    head = (size_t)(end - buf->ptr) + 1;
    if (!(obj = malloc(n)))
        return -ENOMEM;
    memcpy(obj, buf->ptr, head);
    memcpy(obj + head, key, sizeof key - 1);
    memcpy(obj + head + sizeof key - 1, cid, SG_CHANGE_ID_LEN);
    obj[head + extra - 1] = '\n';
    memcpy(obj + head + extra, buf->ptr + head, buf->size - head);
    if (unique && git_odb_hash(id, obj, n, GIT_OBJECT_COMMIT) == 0 && git_odb_exists(r->odb, id)) {
        free(obj);
        return -EEXIST;
    }
    rc = git_odb_write(id, r->odb, obj, n, GIT_OBJECT_COMMIT);
    free(obj);
    return rc < 0 ? gerr(rc) : 0;
}

/* refs/jj/keep/<oid>, written only when not already there. */
static int keep_ref(sg_repo_t *r, const git_oid *id)
{
    char name[sizeof KEEP_PREFIX + GIT_OID_HEXSZ];
    git_reference *ref = NULL;
    git_oid cur;
    int rc;

    memcpy(name, KEEP_PREFIX, sizeof KEEP_PREFIX - 1);
    git_oid_tostr(name + sizeof KEEP_PREFIX - 1, GIT_OID_HEXSZ + 1, id);
    if (git_reference_name_to_id(&cur, r->repo, name) == 0 && git_oid_equal(&cur, id))
        return 0;
    rc = git_reference_create(&ref, r->repo, name, id, 1, NULL);
    git_reference_free(ref);
    return rc < 0 ? gerr(rc) : 0;
}

int sg_commit_keep(sg_repo_t *r, const char *oid)
{
    git_oid id;
    if (!oid || git_oid_fromstrn(&id, oid, strlen(oid)) < 0 || strlen(oid) != GIT_OID_HEXSZ)
        return -EINVAL;
    return keep_ref(r, &id);
}

static int lookup_tree(sg_repo_t *r, const char *hex, git_tree **out)
{
    *out = NULL;
    if (!hex || !*hex)
        return -EINVAL;
    return lookup_tree_opt(r, hex, out);
}

int sg_commit_write(sg_repo_t *r, const char *tree, const char *const *parents, size_t nparents,
                    const char *change_id, const sg_sig_t *author, const sg_sig_t *committer,
                    const char *message, char out[SG_OID_HEX])
{
    git_signature *a = NULL, *c = NULL;
    git_buf buf = GIT_BUF_INIT;
    git_commit **pv = NULL;
    git_tree *t = NULL;
    git_oid id;
    int rc;

    if (!sg_change_id_valid(change_id))
        return -EINVAL;
    if ((rc = lookup_tree(r, tree, &t)) < 0 || (rc = lookup_parents(r, parents, nparents, &pv)))
        goto out;
    if ((rc = make_sig(&a, author)) < 0)
        goto out;
    sg_sig_t cs = *committer;
    for (int tries = 0;; tries++) { /* a commit id is never handed out twice */
        if ((rc = make_sig(&c, &cs)) < 0)
            goto out;
        rc = git_commit_create_buffer(&buf, r->repo, a, c, NULL, message ? message : "", t,
                                      nparents, (const git_commit **)pv);
        if (rc < 0) {
            rc = gerr(rc);
            goto out;
        }
        rc = write_with_change_id(r, &buf, change_id, &id, nparents > 0 && tries < 100);
        if (rc != -EEXIST)
            break;
        git_buf_dispose(&buf);
        git_signature_free(c);
        c = NULL;
        cs.when++;
    }
    if (rc < 0)
        goto out;
    fmt_oid(out, &id);
out:
    git_buf_dispose(&buf);
    git_signature_free(c);
    git_signature_free(a);
    free_parents(pv, nparents);
    git_tree_free(t);
    return rc;
}

static int read_change_id(const git_commit *c, char out[SG_CHANGE_ID_LEN + 1])
{
    git_buf b = GIT_BUF_INIT;
    int rc = git_commit_header_field(&b, c, "change-id");

    out[0] = '\0';
    if (rc == GIT_ENOTFOUND)
        return 0;
    if (rc < 0)
        return gerr(rc);
    if (sg_change_id_valid(b.ptr))
        memcpy(out, b.ptr, SG_CHANGE_ID_LEN + 1);
    git_buf_dispose(&b);
    return 0;
}

static int read_people(const git_commit *c, sg_commit_info_t *out)
{
    const git_signature *a = git_commit_author(c), *m = git_commit_committer(c);

    out->author_name = strdup(a->name);
    out->author_email = strdup(a->email);
    out->committer_name = strdup(m->name);
    out->committer_email = strdup(m->email);
    out->author_time = a->when.time;
    out->author_offset = a->when.offset;
    out->committer_time = m->when.time;
    out->committer_offset = m->when.offset;
    if (!out->author_name || !out->author_email || !out->committer_name || !out->committer_email)
        return -ENOMEM;
    return 0;
}

static int read_parents(const git_commit *c, sg_commit_info_t *out)
{
    size_t i, n = git_commit_parentcount(c);

    out->nparents = n;
    if (n == 0)
        return 0;
    if (!(out->parents = calloc(n, sizeof *out->parents)))
        return -ENOMEM;
    for (i = 0; i < n; i++)
        fmt_oid(out->parents[i], git_commit_parent_id(c, (unsigned)i));
    return 0;
}

int sg_commit_read(sg_repo_t *r, const char *oid, sg_commit_info_t *out)
{
    git_commit *c = NULL;
    const char *msg;
    git_oid id;
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = parse_oid(oid, &id)) < 0)
        return rc;
    if ((rc = git_commit_lookup(&c, r->repo, &id)) < 0)
        return gerr(rc);
    fmt_oid(out->oid, &id);
    fmt_oid(out->tree, git_commit_tree_id(c));
    msg = git_commit_message_raw(c);
    if ((rc = read_change_id(c, out->change_id)) < 0 || (rc = read_people(c, out)) < 0 ||
        (rc = read_parents(c, out)) < 0)
        goto out;
    if (!(out->message = strdup(msg ? msg : "")))
        rc = -ENOMEM;
out:
    if (rc < 0)
        sg_commit_info_free(out);
    git_commit_free(c);
    return rc;
}

void sg_commit_info_free(sg_commit_info_t *c)
{
    if (!c)
        return;
    free(c->parents);
    free(c->message);
    free(c->author_name);
    free(c->author_email);
    free(c->committer_name);
    free(c->committer_email);
    memset(c, 0, sizeof *c);
}

/* ---------------------------------------------------------------- listings */

typedef struct evec {
    sg_entry_t *v;
    size_t n, cap;
} evec_t;

/* Fill e from a tree entry; path is taken over. 1 = skip (submodule). */
static int entry_fill(sg_repo_t *r, const git_tree_entry *te, char *path, sg_entry_t *e)
{
    git_object_t t = git_tree_entry_type(te), ht;
    size_t size = 0;
    int rc;

    memset(e, 0, sizeof *e);
    if (t != GIT_OBJECT_TREE && t != GIT_OBJECT_BLOB) {
        free(path);
        return 1;
    }
    e->path = path;
    e->mode = (unsigned)git_tree_entry_filemode(te);
    fmt_oid(e->oid, git_tree_entry_id(te));
    e->type = t == GIT_OBJECT_TREE ? SG_TREE : e->mode == MODE_LINK ? SG_LINK : SG_BLOB;
    if (t == GIT_OBJECT_TREE)
        return 0;
    if ((rc = git_odb_read_header(&size, &ht, r->odb, git_tree_entry_id(te))) < 0) {
        free(path);
        e->path = NULL;
        return gerr(rc);
    }
    e->size = size;
    return 0;
}

static int evec_push(evec_t *ev, sg_repo_t *r, const char *dir, const git_tree_entry *te)
{
    char *path = join(dir, git_tree_entry_name(te));
    int rc;

    if (!path)
        return -ENOMEM;
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? 2 * ev->cap : 16;
        sg_entry_t *v = realloc(ev->v, cap * sizeof *v);
        if (!v) {
            free(path);
            return -ENOMEM;
        }
        ev->v = v;
        ev->cap = cap;
    }
    rc = entry_fill(r, te, path, &ev->v[ev->n]);
    if (rc == 0)
        ev->n++;
    return rc < 0 ? rc : 0;
}

/* Entries of tree (at dir) down to depth levels; depth <= 0 = unlimited. */
static int walk(sg_repo_t *r, const git_tree *tree, const char *dir, int depth, evec_t *ev)
{
    size_t i, n = git_tree_entrycount(tree);
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++) {
        const git_tree_entry *te = git_tree_entry_byindex(tree, i);
        git_tree *sub = NULL;
        if ((rc = evec_push(ev, r, dir, te)) < 0)
            break;
        if (git_tree_entry_type(te) != GIT_OBJECT_TREE || depth == 1)
            continue;
        if ((rc = git_tree_lookup(&sub, r->repo, git_tree_entry_id(te))) < 0) {
            rc = gerr(rc);
            break;
        }
        rc = walk(r, sub, ev->v[ev->n - 1].path, depth > 0 ? depth - 1 : 0, ev);
        git_tree_free(sub);
    }
    return rc;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const sg_entry_t *)a)->path, ((const sg_entry_t *)b)->path);
}

/* Walk, sort and hand over the result (or free it on error). */
static int list_tree(sg_repo_t *r, const git_tree *tree, const char *dir, int depth,
                     sg_entry_t **out, size_t *n)
{
    evec_t ev = {0};
    int rc = tree ? walk(r, tree, dir, depth, &ev) : 0;

    if (rc < 0) {
        sg_entries_free(ev.v, ev.n);
        return rc;
    }
    if (ev.n)
        qsort(ev.v, ev.n, sizeof *ev.v, cmp_entry);
    *out = ev.v;
    *n = ev.n;
    return 0;
}

int sg_tree_list_flat(sg_repo_t *r, const char *tree, sg_entry_t **out, size_t *n)
{
    git_tree *t = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = lookup_tree_opt(r, tree, &t)) < 0)
        return rc;
    rc = list_tree(r, t, "", 0, out, n);
    git_tree_free(t);
    return rc;
}

/* The entry at path (not "") below root; -ENOENT / -ENOTDIR on the way. */
static int lookup_entry(sg_repo_t *r, git_tree *root, const char *path, git_tree_entry **out)
{
    char *p = strdup(path), *seg, *slash;
    git_tree *cur = root, *next;
    const git_tree_entry *te;
    int rc;

    if (!p)
        return -ENOMEM;
    for (seg = p;; seg = slash + 1) {
        if ((slash = strchr(seg, '/')) != NULL)
            *slash = '\0';
        rc = -ENOENT;
        if (!(te = git_tree_entry_byname(cur, seg)))
            break;
        if (!slash) {
            rc = git_tree_entry_dup(out, te) < 0 ? -ENOMEM : 0;
            break;
        }
        rc = -ENOTDIR;
        if (git_tree_entry_type(te) != GIT_OBJECT_TREE)
            break;
        if ((rc = git_tree_lookup(&next, r->repo, git_tree_entry_id(te))) < 0) {
            rc = gerr(rc);
            break;
        }
        if (cur != root)
            git_tree_free(cur);
        cur = next;
    }
    if (cur != root)
        git_tree_free(cur);
    free(p);
    return rc;
}

static int root_entry(const git_tree *t, sg_entry_t *out)
{
    git_oid empty;
    int rc;

    memset(out, 0, sizeof *out);
    if (!(out->path = strdup("")))
        return -ENOMEM;
    out->type = SG_TREE;
    out->mode = MODE_TREE;
    if (t) {
        fmt_oid(out->oid, git_tree_id(t));
        return 0;
    }
    if ((rc = empty_tree_oid(&empty)) == 0)
        fmt_oid(out->oid, &empty);
    return rc;
}

int sg_tree_lookup(sg_repo_t *r, const char *tree, const char *path, sg_entry_t *out)
{
    git_tree_entry *te = NULL;
    git_tree *t = NULL;
    char *p;
    int rc;

    memset(out, 0, sizeof *out);
    if (!path)
        return -EINVAL;
    if ((rc = lookup_tree_opt(r, tree, &t)) < 0)
        return rc;
    if (!*path) {
        rc = root_entry(t, out);
        goto out;
    }
    rc = -ENOENT;
    if (!t || (rc = lookup_entry(r, t, path, &te)) < 0)
        goto out;
    rc = -ENOMEM;
    if (!(p = strdup(path)))
        goto out;
    rc = entry_fill(r, te, p, out);
    if (rc == 1)
        rc = -ENOENT;
out:
    git_tree_entry_free(te);
    git_tree_free(t);
    return rc;
}

/* The directory at path below root ("" = root itself); *dir may be NULL
 * for an empty root. */
static int lookup_dir(sg_repo_t *r, git_tree *root, const char *path, git_tree **dir)
{
    git_tree_entry *te = NULL;
    int rc;

    *dir = NULL;
    if (!*path) {
        if (root && (rc = git_tree_dup(dir, root)) < 0)
            return gerr(rc);
        return 0;
    }
    if (!root)
        return -ENOENT;
    if ((rc = lookup_entry(r, root, path, &te)) < 0)
        return rc;
    if (git_tree_entry_type(te) != GIT_OBJECT_TREE)
        rc = -ENOTDIR;
    else if ((rc = git_tree_lookup(dir, r->repo, git_tree_entry_id(te))) < 0)
        rc = gerr(rc);
    git_tree_entry_free(te);
    return rc;
}

int sg_tree_list_dir(sg_repo_t *r, const char *tree, const char *path, int depth, sg_entry_t **out,
                     size_t *n)
{
    git_tree *t = NULL, *d = NULL;
    int rc;

    *out = NULL;
    *n = 0;
    if (!path || depth < 1)
        return -EINVAL;
    if ((rc = lookup_tree_opt(r, tree, &t)) < 0)
        return rc;
    if ((rc = lookup_dir(r, t, path, &d)) == 0)
        rc = list_tree(r, d, path, depth, out, n);
    git_tree_free(d);
    git_tree_free(t);
    return rc;
}

void sg_entries_free(sg_entry_t *e, size_t n)
{
    size_t i;

    if (!e)
        return;
    for (i = 0; i < n; i++)
        free(e[i].path);
    free(e);
}

/* -------------------------------------------------------------------- diff */

typedef struct cvec {
    sg_change_t *v;
    size_t n, cap;
} cvec_t;

/* Append (path taken over, freed on failure). */
static int cvec_push(cvec_t *cv, char *path, char status)
{
    if (!path)
        return -ENOMEM;
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? 2 * cv->cap : 16;
        sg_change_t *v = realloc(cv->v, cap * sizeof *v);
        if (!v) {
            free(path);
            return -ENOMEM;
        }
        cv->v = v;
        cv->cap = cap;
    }
    cv->v[cv->n].path = path;
    cv->v[cv->n].status = status;
    cv->n++;
    return 0;
}

static int cmp_change(const void *a, const void *b)
{
    return strcmp(((const sg_change_t *)a)->path, ((const sg_change_t *)b)->path);
}

/* Sort by path; one entry per path, 'A' + 'D' of one path becoming 'M'. */
static void changes_normalize(cvec_t *cv)
{
    size_t i, w = 0;

    if (cv->n)
        qsort(cv->v, cv->n, sizeof *cv->v, cmp_change);
    for (i = 0; i < cv->n; i++) {
        if (w && strcmp(cv->v[w - 1].path, cv->v[i].path) == 0) {
            if (cv->v[w - 1].status != cv->v[i].status)
                cv->v[w - 1].status = 'M';
            free(cv->v[i].path);
            continue;
        }
        cv->v[w++] = cv->v[i];
    }
    cv->n = w;
}

static int diff_files(sg_repo_t *r, git_tree *a, git_tree *b, cvec_t *cv)
{
    git_diff_options o;
    git_diff *d = NULL;
    size_t i, n;
    int rc;

    if (git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION) < 0)
        return -EIO;
    o.flags = GIT_DIFF_INCLUDE_TYPECHANGE;
    if ((rc = git_diff_tree_to_tree(&d, r->repo, a, b, &o)) < 0)
        return gerr(rc);
    n = git_diff_num_deltas(d);
    for (i = 0; i < n && rc == 0; i++) {
        const git_diff_delta *dd = git_diff_get_delta(d, i);
        if (dd->status == GIT_DELTA_ADDED)
            rc = cvec_push(cv, strdup(dd->new_file.path), 'A');
        else if (dd->status == GIT_DELTA_DELETED)
            rc = cvec_push(cv, strdup(dd->old_file.path), 'D');
        else if (dd->status == GIT_DELTA_MODIFIED || dd->status == GIT_DELTA_TYPECHANGE)
            rc = cvec_push(cv, strdup(dd->new_file.path), 'M');
    }
    git_diff_free(d);
    return rc;
}

/* Push every empty directory at or below tree id (at path) with status. */
static int collect_empty(sg_repo_t *r, const git_oid *id, const char *path, char status, cvec_t *cv)
{
    git_tree *t = NULL;
    git_oid empty;
    size_t i, n;
    int rc;

    if ((rc = empty_tree_oid(&empty)) < 0)
        return rc;
    if (git_oid_equal(id, &empty))
        return *path ? cvec_push(cv, strdup(path), status) : 0;
    if ((rc = git_tree_lookup(&t, r->repo, id)) < 0)
        return gerr(rc);
    n = git_tree_entrycount(t);
    for (i = 0; i < n && rc == 0; i++) {
        const git_tree_entry *te = git_tree_entry_byindex(t, i);
        char *sub;
        if (git_tree_entry_type(te) != GIT_OBJECT_TREE)
            continue;
        if (!(sub = join(path, git_tree_entry_name(te)))) {
            rc = -ENOMEM;
            break;
        }
        rc = collect_empty(r, git_tree_entry_id(te), sub, status, cv);
        free(sub);
    }
    git_tree_free(t);
    return rc;
}

static int diff_dirs(sg_repo_t *r, git_tree *a, git_tree *b, const char *dir, cvec_t *cv);

static int is_tree_entry(const git_tree_entry *e)
{
    return e && git_tree_entry_type(e) == GIT_OBJECT_TREE;
}

/* One name present in a and/or b: recurse into changed directories. */
static int diff_dir_entry(sg_repo_t *r, const git_tree_entry *ea, const git_tree_entry *eb,
                          const char *dir, cvec_t *cv)
{
    int da = is_tree_entry(ea), db = is_tree_entry(eb), rc;
    git_tree *ta = NULL, *tb = NULL;
    char *path;

    if ((!da && !db) || (da && db && git_oid_equal(git_tree_entry_id(ea), git_tree_entry_id(eb))))
        return 0;
    if (!(path = join(dir, git_tree_entry_name(da ? ea : eb))))
        return -ENOMEM;
    if (!da || !db) {
        rc = collect_empty(r, git_tree_entry_id(da ? ea : eb), path, da ? 'D' : 'A', cv);
        goto out;
    }
    if ((rc = git_tree_lookup(&ta, r->repo, git_tree_entry_id(ea))) < 0 ||
        (rc = git_tree_lookup(&tb, r->repo, git_tree_entry_id(eb))) < 0) {
        rc = gerr(rc);
        goto out;
    }
    rc = diff_dirs(r, ta, tb, path, cv);
out:
    git_tree_free(tb);
    git_tree_free(ta);
    free(path);
    return rc;
}

/* Empty directories that appear in b or vanish from a (either may be NULL). */
static int diff_dirs(sg_repo_t *r, git_tree *a, git_tree *b, const char *dir, cvec_t *cv)
{
    size_t i, na = a ? git_tree_entrycount(a) : 0, nb = b ? git_tree_entrycount(b) : 0;
    int rc = 0;

    for (i = 0; i < na && rc == 0; i++) {
        const git_tree_entry *ea = git_tree_entry_byindex(a, i);
        const git_tree_entry *eb = b ? git_tree_entry_byname(b, git_tree_entry_name(ea)) : NULL;
        rc = diff_dir_entry(r, ea, eb, dir, cv);
    }
    for (i = 0; i < nb && rc == 0; i++) {
        const git_tree_entry *eb = git_tree_entry_byindex(b, i);
        if (!a || !git_tree_entry_byname(a, git_tree_entry_name(eb)))
            rc = diff_dir_entry(r, NULL, eb, dir, cv);
    }
    return rc;
}

int sg_tree_diff(sg_repo_t *r, const char *old_tree, const char *new_tree, sg_change_t **out,
                 size_t *n)
{
    git_tree *a = NULL, *b = NULL;
    cvec_t cv = {0};
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = lookup_tree_opt(r, old_tree, &a)) < 0 || (rc = lookup_tree_opt(r, new_tree, &b)))
        goto out;
    if ((rc = diff_files(r, a, b, &cv)) < 0 || (rc = diff_dirs(r, a, b, "", &cv)) < 0)
        goto out;
    changes_normalize(&cv);
    *out = cv.v;
    *n = cv.n;
    cv.v = NULL;
    cv.n = 0;
out:
    sg_changes_free(cv.v, cv.n);
    git_tree_free(b);
    git_tree_free(a);
    return rc;
}

void sg_changes_free(sg_change_t *c, size_t n)
{
    size_t i;

    if (!c)
        return;
    for (i = 0; i < n; i++)
        free(c[i].path);
    free(c);
}

/* -------------------------------------------------------------------- refs */

int sg_ref_read(sg_repo_t *r, const char *name, char oid[SG_OID_HEX])
{
    git_oid id;
    int rc;

    if (!name)
        return -EINVAL;
    if ((rc = git_reference_name_to_id(&id, r->repo, name)) < 0)
        return gerr(rc);
    fmt_oid(oid, &id);
    return 0;
}

/* Map a failed ref write: a lost race is -EAGAIN, a missing target -ENOENT. */
static int cas_error(sg_repo_t *r, int err, const git_oid *target)
{
    int rc;

    if (err == GIT_EMODIFIED || err == GIT_EEXISTS || err == GIT_ELOCKED || err == GIT_ENOTFOUND)
        return -EAGAIN;
    rc = gerr(err);
    if (rc == -EIO && git_odb_exists(r->odb, target) == 0)
        return -ENOENT;
    return rc;
}

int sg_ref_cas(sg_repo_t *r, const char *name, const char *new_oid, const char *expected_old)
{
    git_reference *ref = NULL;
    git_oid id, old;
    int rc, valid = 0;

    if (!name || parse_oid(new_oid, &id) < 0)
        return -EINVAL;
    if (expected_old && parse_oid(expected_old, &old) < 0)
        return -EINVAL;
    if (git_reference_name_is_valid(&valid, name) < 0 || !valid)
        return -EINVAL;
    if (expected_old)
        rc = git_reference_create_matching(&ref, r->repo, name, &id, 1, &old, NULL);
    else
        rc = git_reference_create(&ref, r->repo, name, &id, 0, NULL);
    git_reference_free(ref);
    return rc < 0 ? cas_error(r, rc, &id) : 0;
}

int sg_ref_delete_cas(sg_repo_t *r, const char *name, const char *expected_old)
{
    git_reference *ref = NULL;
    const git_oid *cur;
    git_oid old;
    int rc;

    if (!name || parse_oid(expected_old, &old) < 0)
        return -EINVAL;
    rc = git_reference_lookup(&ref, r->repo, name);
    if (rc == GIT_ENOTFOUND)
        return -EAGAIN;
    if (rc < 0)
        return gerr(rc);
    cur = git_reference_target(ref);
    if (!cur || !git_oid_equal(cur, &old))
        rc = -EAGAIN;
    else if ((rc = git_reference_delete(ref)) < 0)
        rc = (rc == GIT_EMODIFIED || rc == GIT_ELOCKED || rc == GIT_ENOTFOUND) ? -EAGAIN : gerr(rc);
    git_reference_free(ref);
    return rc;
}

static int cmp_ref(const void *a, const void *b)
{
    return strcmp(((const sg_ref_t *)a)->name, ((const sg_ref_t *)b)->name);
}

/* Append branch ref to v (grown as needed); dangling symbolic refs are skipped. */
static int push_branch(git_reference *ref, sg_ref_t **v, size_t *n, size_t *cap)
{
    git_reference *res = NULL;
    const char *name;
    int rc;

    if (git_branch_name(&name, ref) < 0 || git_reference_resolve(&res, ref) < 0)
        return 0;
    rc = -ENOMEM;
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        sg_ref_t *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            goto out;
        *v = nv;
        *cap = c;
    }
    if (!((*v)[*n].name = strdup(name)))
        goto out;
    fmt_oid((*v)[*n].oid, git_reference_target(res));
    (*n)++;
    rc = 0;
out:
    git_reference_free(res);
    return rc;
}

/* Iterates with a glob on refs/heads/ rather than git_branch_iterator,
 * which reads every loose ref of the repository (one per commit ever
 * written, under refs/jj/keep/): this stays O(bookmarks) as history grows. */
int sg_branches_list(sg_repo_t *r, sg_ref_t **out, size_t *n)
{
    git_reference_iterator *it = NULL;
    git_reference *ref;
    sg_ref_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;

    *out = NULL;
    *n = 0;
    if ((rc = git_reference_iterator_glob_new(&it, r->repo, HEADS_PREFIX "*")) < 0)
        return gerr(rc);
    while ((rc = git_reference_next(&ref, it)) == 0) {
        rc = push_branch(ref, &v, &cnt, &cap);
        git_reference_free(ref);
        if (rc < 0)
            break;
    }
    git_reference_iterator_free(it);
    if (rc != GIT_ITEROVER) {
        sg_refs_free(v, cnt);
        return rc < 0 && rc != -ENOMEM ? gerr(rc) : rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_ref);
    *out = v;
    *n = cnt;
    return 0;
}

void sg_refs_free(sg_ref_t *refs, size_t n)
{
    size_t i;

    if (!refs)
        return;
    for (i = 0; i < n; i++)
        free(refs[i].name);
    free(refs);
}

/* Bookmark names travel in JSON: valid UTF-8 only (git itself allows any bytes). */
int sg_bookmark_name_valid(const char *name)
{
    char ref[sizeof HEADS_PREFIX + BOOKMARK_MAX];
    int valid = 0;

    if (!name || !*name || strlen(name) > BOOKMARK_MAX || name[0] == '-' || !mesa_utf8_valid(name) ||
        strcmp(name, "HEAD") == 0 || strcmp(name, "@") == 0)
        return 0;
    if (sg_global_init() < 0)
        return 0;
    snprintf(ref, sizeof ref, HEADS_PREFIX "%s", name);
    if (git_reference_name_is_valid(&valid, ref) < 0)
        return 0;
    return valid ? 1 : 0;
}

/* ------------------------------------------------------------------- graph */

int sg_merge_base(sg_repo_t *r, const char *a, const char *b, char out[SG_OID_HEX])
{
    git_oid ia, ib, base;
    int rc;

    if (parse_oid(a, &ia) < 0 || parse_oid(b, &ib) < 0)
        return -EINVAL;
    if ((rc = git_merge_base(&base, r->repo, &ia, &ib)) < 0)
        return gerr(rc);
    fmt_oid(out, &base);
    return 0;
}

int sg_is_ancestor(sg_repo_t *r, const char *ancestor, const char *descendant)
{
    git_oid ia, id;
    int rc;

    if (parse_oid(ancestor, &ia) < 0 || parse_oid(descendant, &id) < 0)
        return -EINVAL;
    if ((rc = has_type(r, &ia, GIT_OBJECT_COMMIT)) <= 0 ||
        (rc = has_type(r, &id, GIT_OBJECT_COMMIT)) <= 0)
        return rc < 0 ? rc : -ENOENT;
    if (git_oid_equal(&ia, &id))
        return 1;
    rc = git_graph_descendant_of(r->repo, &id, &ia);
    return rc < 0 ? gerr(rc) : rc;
}

/* ------------------------------------------------------------------- merge */

typedef struct conflict {
    char *path;
    git_index_entry e[3]; /* ancestor, ours, theirs */
    int has[3];
} conflict_t;

typedef struct conflicts {
    conflict_t *v;
    size_t n, cap;
} conflicts_t;

static void conflicts_free(conflicts_t *cs)
{
    size_t i;

    for (i = 0; i < cs->n; i++)
        free(cs->v[i].path);
    free(cs->v);
}

static int conflict_push(conflicts_t *cs, const git_index_entry *const e[3])
{
    const char *path = e[1] ? e[1]->path : e[2] ? e[2]->path : e[0]->path;
    conflict_t *c;
    int i;

    if (cs->n == cs->cap) {
        size_t cap = cs->cap ? 2 * cs->cap : 8;
        conflict_t *v = realloc(cs->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        cs->v = v;
        cs->cap = cap;
    }
    c = &cs->v[cs->n];
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path)))
        return -ENOMEM;
    for (i = 0; i < 3; i++) {
        if (!e[i])
            continue;
        c->has[i] = 1;
        c->e[i].mode = e[i]->mode;
        git_oid_cpy(&c->e[i].id, &e[i]->id);
        c->e[i].path = c->path;
    }
    cs->n++;
    return 0;
}

/* Copy the conflicts out, since resolving them changes the index. */
static int conflicts_collect(git_index *idx, conflicts_t *cs)
{
    git_index_conflict_iterator *it = NULL;
    const git_index_entry *e[3];
    int rc;

    if ((rc = git_index_conflict_iterator_new(&it, idx)) < 0)
        return gerr(rc);
    while ((rc = git_index_conflict_next(&e[0], &e[1], &e[2], it)) == 0)
        if ((rc = conflict_push(cs, e)) < 0)
            break;
    git_index_conflict_iterator_free(it);
    if (rc == GIT_ITEROVER)
        return 0;
    return rc == -ENOMEM ? rc : gerr(rc);
}

static int blob_is_binary(sg_repo_t *r, const git_oid *id)
{
    git_blob *b = NULL;
    int bin;

    if (git_blob_lookup(&b, r->repo, id) < 0)
        return 1;
    bin = git_blob_is_binary(b);
    git_blob_free(b);
    return bin;
}

static int mergeable(sg_repo_t *r, const conflict_t *c)
{
    return c->has[1] && c->has[2] && c->e[1].mode != MODE_LINK && c->e[2].mode != MODE_LINK &&
           !blob_is_binary(r, &c->e[1].id) && !blob_is_binary(r, &c->e[2].id);
}

/* Content with conflict markers (ours = target, theirs = source) into *res. */
static int merge_text(sg_repo_t *r, const conflict_t *c, git_index_entry *res)
{
    git_merge_file_options o;
    git_merge_file_result m = {0};
    int rc;

    if (git_merge_file_options_init(&o, GIT_MERGE_FILE_OPTIONS_VERSION) < 0)
        return -EIO;
    o.ancestor_label = "base";
    o.our_label = "target";
    o.their_label = "source";
    rc =
        git_merge_file_from_index(&m, r->repo, c->has[0] ? &c->e[0] : NULL, &c->e[1], &c->e[2], &o);
    if (rc == 0)
        rc = git_blob_create_from_buffer(&res->id, r->repo, m.ptr ? m.ptr : "", m.len);
    if (rc == 0)
        res->mode = m.mode ? m.mode : c->e[1].mode;
    git_merge_file_result_free(&m);
    return rc < 0 ? gerr(rc) : 0;
}

static int strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof *nv);

    if (!nv)
        return -ENOMEM;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -ENOMEM;
    (*n)++;
    return 0;
}

static void strv_sort_unique(char **v, size_t *n)
{
    size_t i, w = 0;

    if (*n)
        qsort(v, *n, sizeof *v, cmp_str);
    for (i = 0; i < *n; i++) {
        if (w && strcmp(v[w - 1], v[i]) == 0)
            free(v[i]);
        else
            v[w++] = v[i];
    }
    *n = w;
}

/* Stage-0 index entries that a file at path would clash with: entries below
 * it, or files at its parent paths. They are reported as conflicts, and
 * dropped when remove is set (git's index must not hold both a file and a
 * directory at one path). Returns the number found or -errno. */
static int clashes(git_index *idx, const char *path, int remove, char ***paths, size_t *npaths)
{
    size_t i, pos, len = strlen(path), n0 = *npaths;
    char *pfx = malloc(len + 2);
    const git_index_entry *e;
    int rc = 0;

    if (!pfx)
        return -ENOMEM;
    memcpy(pfx, path, len);
    memcpy(pfx + len, "/", 2);
    if (git_index_find_prefix(&pos, idx, pfx) == 0)
        for (; rc == 0 && (e = git_index_get_byindex(idx, pos)) != NULL; pos++) {
            if (strncmp(e->path, pfx, len + 1) != 0)
                break;
            if (GIT_INDEX_ENTRY_STAGE(e) == 0)
                rc = strv_push(paths, npaths, e->path);
        }
    if (rc == 0 && remove && (rc = git_index_remove_directory(idx, path, 0)) < 0)
        rc = gerr(rc);
    for (i = 1; rc == 0 && i < len; i++) {
        if (path[i] != '/')
            continue;
        memcpy(pfx, path, i);
        pfx[i] = '\0';
        if (!git_index_get_bypath(idx, pfx, 0) || (rc = strv_push(paths, npaths, pfx)) < 0)
            continue;
        if (remove && (rc = git_index_remove(idx, pfx, 0)) < 0)
            rc = gerr(rc);
    }
    free(pfx);
    return rc < 0 ? rc : (int)(*npaths - n0);
}

/* Resolve one conflict in the index: a text merge with markers when both
 * sides have text, else the target's side, else whichever side exists. The
 * target's version also wins a directory/file clash with other entries. */
static int resolve_one(sg_repo_t *r, git_index *idx, const conflict_t *c, char ***paths,
                       size_t *npaths)
{
    const git_index_entry *keep = c->has[1] ? &c->e[1] : c->has[2] ? &c->e[2] : NULL;
    git_index_entry res;
    int rc;

    if ((rc = git_index_conflict_remove(idx, c->path)) < 0)
        return gerr(rc);
    if (!keep)
        return 0;
    /* a clash drops the source's version, or makes way for the target's */
    if ((rc = clashes(idx, c->path, c->has[1], paths, npaths)) < 0 || (rc > 0 && !c->has[1]))
        return rc < 0 ? rc : 0;
    memset(&res, 0, sizeof res);
    res.path = c->path;
    res.mode = keep->mode;
    git_oid_cpy(&res.id, &keep->id);
    if (mergeable(r, c) && (rc = merge_text(r, c, &res)) < 0)
        return rc;
    rc = git_index_add(idx, &res);
    return rc < 0 ? gerr(rc) : 0;
}

/* Resolve all conflicts; paths go to *paths. Those without the target's
 * version go first, so that the target's entries see every clash. */
static int resolve_conflicts(sg_repo_t *r, git_index *idx, char ***paths, size_t *npaths)
{
    conflicts_t cs = {0};
    size_t i;
    int pass, rc;

    if ((rc = conflicts_collect(idx, &cs)) < 0)
        goto out;
    for (pass = 0; pass < 2; pass++)
        for (i = 0; i < cs.n && rc == 0; i++)
            if (cs.v[i].has[1] == pass)
                rc = resolve_one(r, idx, &cs.v[i], paths, npaths);
    for (i = 0; i < cs.n && rc == 0; i++)
        rc = strv_push(paths, npaths, cs.v[i].path);
out:
    conflicts_free(&cs);
    return rc;
}

static int in_set(const cvec_t *s, const char *path)
{
    sg_change_t key = {(char *)path, 0};

    return s->n && bsearch(&key, s->v, s->n, sizeof *s->v, cmp_change) != NULL;
}

/* Three-way merge of the sets of empty directories: kept on both sides, or
 * added on one side; a deletion on either side wins. */
static int empty_dirs_merged(sg_repo_t *r, git_tree *const t[3], cvec_t *out)
{
    cvec_t s[3] = {{0}};
    size_t i;
    int k, rc = 0;

    for (k = 0; k < 3 && rc == 0; k++)
        if ((rc = collect_empty(r, git_tree_id(t[k]), "", 0, &s[k])) == 0)
            changes_normalize(&s[k]);
    for (i = 0; i < s[1].n && rc == 0; i++)
        if (in_set(&s[2], s[1].v[i].path) || !in_set(&s[0], s[1].v[i].path))
            rc = cvec_push(out, strdup(s[1].v[i].path), 0);
    for (i = 0; i < s[2].n && rc == 0; i++)
        if (!in_set(&s[1], s[2].v[i].path) && !in_set(&s[0], s[2].v[i].path))
            rc = cvec_push(out, strdup(s[2].v[i].path), 0);
    for (k = 0; k < 3; k++)
        sg_changes_free(s[k].v, s[k].n);
    return rc;
}

/* git's index drops empty directories; put the merged set back into tree. */
static int restore_empty_dirs(sg_repo_t *r, git_tree *const t[3], git_oid *tree)
{
    cvec_t dirs = {0};
    tapply_t ta = {0};
    size_t i;
    int rc;

    if ((rc = empty_dirs_merged(r, t, &dirs)) < 0 || dirs.n == 0)
        goto out;
    if ((rc = tapply_begin(&ta, r, tree)) < 0)
        goto out;
    for (i = 0; i < dirs.n && rc == 0; i++) {
        sg_op_t op = {.kind = SG_OP_MKDIR, .path = dirs.v[i].path};
        rc = tapply_op(&ta, &op);
        if (rc == -EEXIST || rc == -ENOTDIR || rc == -EINVAL)
            rc = 0; /* a file took its place, or a name git refuses */
    }
    if (rc == 0)
        rc = tapply_finish(&ta, tree);
    tapply_end(&ta);
out:
    sg_changes_free(dirs.v, dirs.n);
    return rc;
}

static int merge_index(sg_repo_t *r, git_tree *const t[3], git_oid *out, char ***paths,
                       size_t *npaths)
{
    git_merge_options mo;
    git_index *idx = NULL;
    int rc;

    if (git_merge_options_init(&mo, GIT_MERGE_OPTIONS_VERSION) < 0)
        return -EIO;
    mo.flags = 0; /* no rename detection: conflicts stay per path */
    if ((rc = git_merge_trees(&idx, r->repo, t[0], t[1], t[2], &mo)) < 0)
        return gerr(rc);
    if ((rc = resolve_conflicts(r, idx, paths, npaths)) == 0 &&
        (rc = git_index_write_tree_to(out, idx, r->repo)) < 0)
        rc = gerr(rc);
    git_index_free(idx);
    return rc;
}

int sg_tree_merge(sg_repo_t *r, const char *base_tree, const char *ours_tree,
                  const char *theirs_tree, char out_tree[SG_OID_HEX], char ***conflicts,
                  size_t *nconflicts)
{
    git_tree *t[3] = {NULL, NULL, NULL};
    char **paths = NULL;
    size_t npaths = 0;
    git_oid id;
    int k, rc;

    *conflicts = NULL;
    *nconflicts = 0;
    if ((rc = lookup_tree_or_empty(r, base_tree, &t[0])) < 0 ||
        (rc = lookup_tree_or_empty(r, ours_tree, &t[1])) < 0 ||
        (rc = lookup_tree_or_empty(r, theirs_tree, &t[2])) < 0)
        goto out;
    if ((rc = merge_index(r, t, &id, &paths, &npaths)) < 0 ||
        (rc = restore_empty_dirs(r, t, &id)) < 0)
        goto out;
    strv_sort_unique(paths, &npaths);
    fmt_oid(out_tree, &id);
    *conflicts = paths;
    *nconflicts = npaths;
    paths = NULL;
    npaths = 0;
out:
    sg_strv_free(paths, npaths);
    for (k = 0; k < 3; k++)
        git_tree_free(t[k]);
    return rc;
}

void sg_strv_free(char **v, size_t n)
{
    size_t i;

    if (!v)
        return;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* -------------------------------------------------------------- change ids */

int sg_change_id_new(char out[SG_CHANGE_ID_LEN + 1])
{
    unsigned char b[SG_CHANGE_ID_LEN / 2];
    size_t i;

    if (RAND_bytes(b, sizeof b) != 1)
        return -EIO;
    for (i = 0; i < sizeof b; i++) {
        out[2 * i] = (char)('z' - (b[i] >> 4));
        out[2 * i + 1] = (char)('z' - (b[i] & 0xf));
    }
    out[SG_CHANGE_ID_LEN] = '\0';
    return 0;
}

int sg_change_id_valid(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; i < SG_CHANGE_ID_LEN; i++)
        if (s[i] < 'k' || s[i] > 'z')
            return 0;
    return s[i] == '\0';
}
