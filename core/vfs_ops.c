/* core/vfs_ops.c - what changes a mount: open (with copy-up into staging),
 * the namespace operations, fsync, and exec plans (see vfs.h).
 *
 * Invariant: a namespace change is checked against the view and journaled
 * under the mount's journal lock, so two processes cannot both create the
 * same path's staging file; ignored paths never reach the journal: they are
 * real files in the slot's local store. Signals are the shim's business
 * (it blocks them around these calls).
 * Called by the shim.
 */
#include "config.h"
#include "vfs_int.h"
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <unistd.h>

/* A vnode on the heap (they are ~12 KB: too big for shim stacks). */
static mesa_vnode_t *vn_new(void)
{
    return malloc(sizeof(mesa_vnode_t));
}

static int writable(const mesa_vfs_t *v, const mesa_vnode_t *n)
{
    if (n->slot < 0)
        return -EACCES;
    return (v->slot[n->slot].r.flags & MESA_STATE_RO) ? -EROFS : 0;
}

static void new_id(char id[33])
{
    unsigned char b[16];
    static const char hex[] = "0123456789abcdef";
    if (getrandom(b, sizeof b, 0) != sizeof b) {
        int64_t t = vfs_now_ns() ^ (int64_t)getpid() << 32;
        memcpy(b, &t, sizeof t);
        memcpy(b + 8, &t, sizeof t);
    }
    for (int i = 0; i < 16; i++) {
        id[2 * i] = hex[b[i] >> 4];
        id[2 * i + 1] = hex[b[i] & 15];
    }
    id[32] = '\0';
}

/* Split a mount path into its parent path and last name. */
static void parent_of(const char *path, char *parent, size_t n)
{
    snprintf(parent, n, "%s", path);
    char *sl = strrchr(parent, '/');
    if (sl && sl != parent)
        *sl = '\0';
    else if (sl)
        sl[1] = '\0';
}

/* The parent of path must be an existing directory. */
static int parent_dir(mesa_vfs_t *v, const char *path, mesa_vnode_t *tmp)
{
    char p[MESA_PATH_MAX];
    parent_of(path, p, sizeof p);
    int rc = mesa_vfs_lookup(v, p, 1, tmp);
    if (rc < 0)
        return rc == -EXDEV ? -ENOENT : rc;
    return S_ISDIR(tmp->mode) ? 0 : -ENOTDIR;
}

/* n->path (resolved) does not exist yet: its parent must be a directory
 * of a mounted repo. Sets n->slot and n->rel; -EACCES outside a repo (or
 * for the repo root itself). */
static int new_entry(mesa_vfs_t *v, mesa_vnode_t *n)
{
    mesa_vnode_t *t = vn_new();
    if (!t)
        return -ENOMEM;
    int rc = parent_dir(v, n->path, t);
    free(t);
    if (rc < 0)
        return rc;
    n->slot = vfs_slot_of(v, n->path, &n->rel);
    return n->slot < 0 || !*n->rel ? -EACCES : 0;
}

/* mkdir -p of the local store's directory for slot/rel's parent. */
static int local_parent(mesa_vfs_t *v, int slot, const char *rel, char *real, size_t n)
{
    int rc = vfs_local_path(v, slot, rel, real, n);
    if (rc < 0)
        return rc;
    char dir[PATH_MAX];
    parent_of(real, dir, sizeof dir);
    return mesa_mkdirs(dir, 0755);
}

static int copy_fd(int from, int to)
{
    char buf[65536];
    ssize_t n;
    while ((n = read(from, buf, sizeof buf)) > 0) {
        int rc = mesa_write_all(to, buf, (size_t)n);
        if (rc < 0)
            return rc;
    }
    return n < 0 ? -errno : 0;
}

/* The real file with n's current content (a blob is fetched). */
static int content_path(mesa_vfs_t *v, const mesa_vnode_t *n, char *out, size_t len)
{
    if (n->where == MESA_VW_TREE) {
        char dir[MESA_PATH_MAX];
        char probe[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", n->rel);
        char *sl = strrchr(dir, '/');
        if (sl)
            *sl = '\0';
        else
            dir[0] = '\0';
        if (mesa_blobcache_lookup(v->bc, n->oid, probe, sizeof probe) < 0)
            vfs_prefetch_dir(v, n->slot, dir);
        return vfs_blob(v, n->slot, n->oid, out, len);
    }
    snprintf(out, len, "%s", n->real);
    return 0;
}

/* A new staging file for n (copy of its content unless trunc), opened
 * with the caller's flags; journaled as W (and X for a new executable). */
static int stage(mesa_vfs_t *v, mesa_vnode_t *n, int exists, int flags, mode_t mode)
{
    char id[33], path[PATH_MAX], src[PATH_MAX];
    int acc = (flags & O_ACCMODE) == O_RDONLY ? O_RDWR : (flags & O_ACCMODE);
    int fd, rc = 0;
    new_id(id);
    vfs_staging_path(v, id, path, sizeof path);
    if (exists && !(flags & O_TRUNC) && (rc = content_path(v, n, src, sizeof src)) < 0)
        return rc;
    fd = open(path, O_CREAT | O_EXCL | acc | (flags & (O_CLOEXEC | O_APPEND)), 0644);
    if (fd < 0)
        return -errno;
    if (exists && !(flags & O_TRUNC)) {
        int in = open(src, O_RDONLY | O_CLOEXEC);
        rc = in < 0 ? -errno : copy_fd(in, fd);
        if (in >= 0)
            close(in);
        if (rc == 0 && !(flags & O_APPEND) && lseek(fd, 0, SEEK_SET) < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = vfs_append(v, n->slot, MESA_J_WRITE, vfs_now_ns(), id, n->rel);
    if (rc == 0 && !exists && (mode & 0100))
        rc = vfs_append(v, n->slot, MESA_J_CHMOD, 0, "1", n->rel);
    if (rc < 0) {
        close(fd);
        unlink(path);
        return rc;
    }
    return fd;
}

int mesa_vfs_placeholder(mesa_vfs_t *v, const char *path, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/cwd%s", v->run, path + v->plen);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    return mesa_mkdirs(out, 0755);
}

int vfs_from_mirror(const mesa_vfs_t *v, const char *sub, const char *real, char *out,
                    size_t outlen)
{
    size_t rl = strlen(v->run), sl = strlen(sub);
    if (strncmp(real, v->run, rl) != 0 || strncmp(real + rl, sub, sl) != 0 ||
        (real[rl + sl] != '/' && real[rl + sl] != '\0'))
        return -ENOENT;
    int n = snprintf(out, outlen, "%s%s", v->prefix, real + rl + sl);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

int mesa_vfs_from_placeholder(const mesa_vfs_t *v, const char *real, char *out, size_t outlen)
{
    return vfs_from_mirror(v, "/cwd", real, out, outlen);
}

static int open_dir(mesa_vfs_t *v, const mesa_vnode_t *n, int flags, int *is_dir)
{
    char real[PATH_MAX];
    if ((flags & O_TMPFILE) == O_TMPFILE)
        return -EOPNOTSUPP; /* as a kernel file system without unnamed files */
    if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_CREAT))
        return -EISDIR;
    int rc = mesa_vfs_placeholder(v, n->path, real, sizeof real);
    if (rc < 0)
        return rc;
    int fd = open(real, O_RDONLY | O_DIRECTORY | (flags & (O_CLOEXEC | O_PATH)));
    if (fd < 0)
        return -errno;
    *is_dir = 1;
    return fd;
}

/* O_CREAT|O_EXCL: whatever exists, a symlink too (dangling or not), is
 * EEXIST, so a final symlink is not followed. */
static int open_follows(int flags)
{
    return !(flags & O_NOFOLLOW) && (flags & (O_CREAT | O_EXCL)) != (O_CREAT | O_EXCL);
}

/* Open for writing: the staging file, the local file, or a new one. */
static int open_write(mesa_vfs_t *v, const char *path, mesa_vnode_t *n, int flags, mode_t mode)
{
    int fd, rc = vfs_lock(v);
    if (rc < 0)
        return rc;
    rc = mesa_vfs_lookup(v, path, open_follows(flags), n);
    if (rc == 0 && (flags & O_CREAT) && (flags & O_EXCL)) {
        fd = -EEXIST;
    } else if (rc == 0 && S_ISDIR(n->mode)) {
        fd = -EISDIR;
    } else if (rc == 0 && S_ISLNK(n->mode)) {
        fd = -ELOOP;
    } else if (rc == 0 && (fd = writable(v, n)) < 0) {
    } else if (rc == 0 && n->where == MESA_VW_LOCAL) {
        fd = open(n->real, flags & ~O_NOFOLLOW, mode);
        fd = fd < 0 ? -errno : fd;
    } else if (rc == 0 && n->where == MESA_VW_STAGE) {
        fd = open(n->real, flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW));
        fd = fd < 0 ? -errno : fd;
    } else if (rc == 0) {
        fd = stage(v, n, 1, flags, mode);
    } else if (rc != -ENOENT || !(flags & O_CREAT)) {
        fd = rc;
    } else if ((fd = new_entry(v, n)) < 0 || (fd = writable(v, n)) < 0) {
        /* a new file at n->path (the resolved path) cannot be made there */
    } else if (vfs_ignored(v, n->slot, n->rel, 0)) {
        char real[PATH_MAX];
        fd = local_parent(v, n->slot, n->rel, real, sizeof real);
        if (fd == 0 && (fd = open(real, flags & ~O_NOFOLLOW, mode)) < 0)
            fd = -errno;
    } else {
        fd = stage(v, n, 0, flags, mode);
    }
    vfs_unlock(v);
    return fd;
}

int mesa_vfs_open(mesa_vfs_t *v, const char *path, int flags, mode_t mode, int *is_dir)
{
    mesa_vnode_t *n = vn_new();
    int fd;
    *is_dir = 0;
    if (!n)
        return -ENOMEM;
    int wr = (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC));
    int rc = mesa_vfs_lookup(v, path, open_follows(flags), n);
    if (rc == 0 && (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
        fd = -EEXIST;
    } else if (rc == -EXDEV) { /* a symlink that leads out of the mount */
        fd = open(n->path, flags, mode);
        fd = fd < 0 ? -errno : fd;
    } else if (rc == 0 && S_ISDIR(n->mode)) {
        fd = open_dir(v, n, flags, is_dir);
    } else if (rc == 0 && (flags & O_DIRECTORY)) {
        fd = -ENOTDIR;
    } else if (wr && (rc == 0 || rc == -ENOENT)) {
        fd = open_write(v, path, n, flags, mode);
    } else if (rc < 0) {
        fd = rc;
    } else if (S_ISLNK(n->mode)) {
        fd = -ELOOP;
    } else {
        char real[PATH_MAX];
        fd = content_path(v, n, real, sizeof real);
        if (fd == 0 && (fd = open(real, flags & ~O_NOFOLLOW)) < 0)
            fd = -errno;
    }
    free(n);
    return fd;
}

/* ------------------------------------------------------------ namespace */

/* Look path up under the lock for a change: writable slot, exists or not. */
static int prep(mesa_vfs_t *v, const char *path, int follow, mesa_vnode_t *n, int *exists)
{
    int rc = mesa_vfs_lookup(v, path, follow, n);
    if (rc == -EXDEV)
        return -EXDEV;
    *exists = rc == 0;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (!*exists && (rc = new_entry(v, n)) < 0)
        return rc;
    return writable(v, n);
}

typedef int (*op_fn)(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg);

/* Run op on path under the journal lock. */
static int locked(mesa_vfs_t *v, const char *path, int follow, op_fn op, const void *arg)
{
    mesa_vnode_t *n = vn_new();
    int exists = 0, rc;
    if (!n)
        return -ENOMEM;
    if ((rc = vfs_lock(v)) < 0) {
        free(n);
        return rc;
    }
    rc = prep(v, path, follow, n, &exists);
    if (rc == 0)
        rc = op(v, n, exists, arg);
    vfs_unlock(v);
    free(n);
    return rc;
}

static int do_mkdir(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    mode_t mode = *(const mode_t *)arg;
    if (exists)
        return -EEXIST;
    if (vfs_ignored(v, n->slot, n->rel, 1)) {
        char real[PATH_MAX];
        int rc = local_parent(v, n->slot, n->rel, real, sizeof real);
        if (rc == 0 && mkdir(real, mode) < 0)
            rc = -errno;
        return rc;
    }
    return vfs_append(v, n->slot, MESA_J_MKDIR, vfs_now_ns(), NULL, n->rel);
}

int mesa_vfs_mkdir(mesa_vfs_t *v, const char *path, mode_t mode)
{
    return locked(v, path, 0, do_mkdir, &mode);
}

static int do_rmdir(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    (void)arg;
    if (!exists)
        return -ENOENT;
    if (!S_ISDIR(n->mode))
        return -ENOTDIR;
    if (!*n->rel)
        return -EBUSY;
    mesa_dirent_t *d;
    size_t cnt;
    int rc = mesa_vfs_list(v, n->path, &d, &cnt);
    if (rc < 0)
        return rc;
    mesa_vfs_list_free(d, cnt);
    if (cnt > 2)
        return -ENOTEMPTY;
    char real[PATH_MAX];
    if (vfs_local_path(v, n->slot, n->rel, real, sizeof real) == 0 && rmdir(real) < 0 &&
        n->where == MESA_VW_LOCAL)
        return -errno;
    if (n->where == MESA_VW_LOCAL)
        return 0;
    return vfs_append(v, n->slot, MESA_J_RMDIR, 0, NULL, n->rel);
}

int mesa_vfs_rmdir(mesa_vfs_t *v, const char *path)
{
    return locked(v, path, 0, do_rmdir, NULL);
}

static int do_unlink(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    (void)arg;
    if (!exists)
        return -ENOENT;
    if (S_ISDIR(n->mode))
        return -EISDIR;
    if (n->where == MESA_VW_LOCAL)
        return unlink(n->real) < 0 ? -errno : 0;
    return vfs_append(v, n->slot, MESA_J_UNLINK, 0, NULL, n->rel);
}

int mesa_vfs_unlink(mesa_vfs_t *v, const char *path)
{
    return locked(v, path, 0, do_unlink, NULL);
}

static int do_symlink(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    const char *target = arg;
    if (exists)
        return -EEXIST;
    if (vfs_ignored(v, n->slot, n->rel, 0)) {
        char real[PATH_MAX];
        int rc = local_parent(v, n->slot, n->rel, real, sizeof real);
        if (rc == 0 && symlink(target, real) < 0)
            rc = -errno;
        return rc;
    }
    return vfs_append(v, n->slot, MESA_J_SYMLINK, vfs_now_ns(), target, n->rel);
}

int mesa_vfs_symlink(mesa_vfs_t *v, const char *target, const char *path)
{
    if (!*target)
        return -ENOENT;
    return locked(v, path, 0, do_symlink, target);
}

int mesa_vfs_readlink(mesa_vfs_t *v, const char *path, char *buf, size_t len)
{
    mesa_vnode_t *n = vn_new();
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, 0, n);
    if (rc == 0 && !S_ISLNK(n->mode))
        rc = -EINVAL;
    if (rc == 0) {
        size_t l = strlen(n->target);
        if (l > len)
            l = len;
        memcpy(buf, n->target, l);
        rc = (int)l;
    }
    free(n);
    return rc;
}

static int do_chmod(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    mode_t mode = *(const mode_t *)arg;
    if (!exists)
        return -ENOENT;
    if (n->where == MESA_VW_LOCAL)
        return chmod(n->real, mode) < 0 ? -errno : 0;
    if (!S_ISREG(n->mode))
        return 0; /* git keeps no mode for directories and symlinks */
    int exec = (mode & 0100) != 0;
    if (exec == ((n->mode & 0100) != 0))
        return 0;
    return vfs_append(v, n->slot, MESA_J_CHMOD, 0, exec ? "1" : "0", n->rel);
}

int mesa_vfs_chmod(mesa_vfs_t *v, const char *path, mode_t mode, int follow)
{
    return locked(v, path, follow, do_chmod, &mode);
}

static int64_t ts_ns(const struct timespec *t)
{
    if (t->tv_nsec == UTIME_NOW)
        return vfs_now_ns();
    return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int do_utimens(mesa_vfs_t *v, mesa_vnode_t *n, int exists, const void *arg)
{
    const struct timespec *times = arg;
    if (!exists)
        return -ENOENT;
    if (n->where == MESA_VW_LOCAL)
        return utimensat(AT_FDCWD, n->real, times, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    if (times && times[1].tv_nsec == UTIME_OMIT)
        return 0;
    int64_t m = times ? ts_ns(&times[1]) : vfs_now_ns();
    if (n->where == MESA_VW_STAGE) {
        struct timespec ts[2] = {{0, UTIME_OMIT}, {m / 1000000000, m % 1000000000}};
        if (utimensat(AT_FDCWD, n->real, ts, 0) < 0)
            return -errno;
    }
    if (S_ISDIR(n->mode))
        return 0; /* directory mtimes are not versioned */
    return vfs_append(v, n->slot, MESA_J_UTIMES, m, NULL, n->rel);
}

int mesa_vfs_utimens(mesa_vfs_t *v, const char *path, const struct timespec times[2], int follow)
{
    return locked(v, path, follow, do_utimens, times);
}

int mesa_vfs_truncate(mesa_vfs_t *v, const char *path, off_t len)
{
    int is_dir;
    if (len < 0)
        return -EINVAL;
    int fd = mesa_vfs_open(v, path, O_WRONLY | O_CLOEXEC, 0, &is_dir);
    if (fd < 0)
        return fd;
    int rc = ftruncate(fd, len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------ rename */

typedef struct ren {
    mesa_vnode_t *src;
    unsigned flags;
} ren_t;

/* Move a file's content from one store to the other. */
static int cross_store(mesa_vfs_t *v, mesa_vnode_t *src, mesa_vnode_t *dst, int dst_exists,
                       int to_local)
{
    char from[PATH_MAX], real[PATH_MAX];
    int rc = content_path(v, src, from, sizeof from);
    if (rc < 0)
        return rc;
    if (to_local) {
        if ((rc = local_parent(v, dst->slot, dst->rel, real, sizeof real)) < 0)
            return rc;
        if (src->where != MESA_VW_STAGE || rename(from, real) < 0) { /* blob, or EXDEV: copy */
            int in = open(from, O_RDONLY | O_CLOEXEC);
            int out = open(real, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, src->mode & 0777);
            rc = in < 0 || out < 0 ? -errno : copy_fd(in, out);
            if (in >= 0)
                close(in);
            if (out >= 0)
                close(out);
        }
        if (rc == 0 && dst_exists && dst->where != MESA_VW_LOCAL)
            rc = vfs_append(v, dst->slot, MESA_J_UNLINK, 0, NULL, dst->rel);
    } else {
        int fd = stage(v, dst, 0, O_WRONLY | O_TRUNC | O_CLOEXEC, src->mode);
        if (fd < 0)
            return fd;
        int in = open(from, O_RDONLY | O_CLOEXEC);
        rc = in < 0 ? -errno : copy_fd(in, fd);
        if (in >= 0)
            close(in);
        close(fd); /* the close makes it due */
        if (rc == 0 && src->where == MESA_VW_LOCAL && unlink(src->real) < 0)
            rc = -errno;
        (void)dst_exists;
    }
    if (rc == 0 && src->where != MESA_VW_LOCAL)
        rc = vfs_append(v, src->slot, MESA_J_UNLINK, 0, NULL, src->rel);
    return rc;
}

static int check_replace(mesa_vfs_t *v, const mesa_vnode_t *s, const mesa_vnode_t *d)
{
    if (S_ISDIR(s->mode) && !S_ISDIR(d->mode))
        return -ENOTDIR;
    if (!S_ISDIR(s->mode) && S_ISDIR(d->mode))
        return -EISDIR;
    if (S_ISDIR(d->mode)) {
        mesa_dirent_t *l;
        size_t cnt;
        int rc = mesa_vfs_list(v, d->path, &l, &cnt);
        if (rc < 0)
            return rc;
        mesa_vfs_list_free(l, cnt);
        if (cnt > 2)
            return -ENOTEMPTY;
    }
    return 0;
}

static int do_rename(mesa_vfs_t *v, mesa_vnode_t *d, int dexists, const void *arg)
{
    const ren_t *r = arg;
    mesa_vnode_t *s = r->src;
    int rc;
    if (s->slot != d->slot)
        return -EXDEV;
    if (!*s->rel)
        return -EBUSY;
    if (strcmp(s->path, d->path) == 0)
        return 0;
    size_t sl = strlen(s->path);
    if (strncmp(d->path, s->path, sl) == 0 && d->path[sl] == '/')
        return -EINVAL; /* into itself */
    if (dexists && (r->flags & 1 /* RENAME_NOREPLACE */))
        return -EEXIST;
    if (dexists && (rc = check_replace(v, s, d)) < 0)
        return rc;
    int dst_local = dexists ? d->where == MESA_VW_LOCAL
                            : vfs_ignored(v, d->slot, d->rel, S_ISDIR(s->mode));
    int src_local = s->where == MESA_VW_LOCAL;
    if (src_local && dst_local) {
        char real[PATH_MAX];
        if ((rc = local_parent(v, d->slot, d->rel, real, sizeof real)) < 0)
            return rc;
        return rename(s->real, real) < 0 ? -errno : 0;
    }
    if (src_local != dst_local) {
        if (!S_ISREG(s->mode))
            return -EXDEV; /* mv copies; rename(2) callers rename files */
        return cross_store(v, s, d, dexists, dst_local);
    }
    if (dexists && S_ISDIR(d->mode) && (rc = vfs_append(v, d->slot, MESA_J_RMDIR, 0, NULL,
                                                        d->rel)) < 0)
        return rc;
    return vfs_append(v, d->slot, MESA_J_RENAME, vfs_now_ns(), s->rel, d->rel);
}

int mesa_vfs_rename(mesa_vfs_t *v, const char *from, const char *to, unsigned flags)
{
    mesa_vnode_t *s = vn_new();
    if (!s)
        return -ENOMEM;
    int rc = vfs_lock(v);
    if (rc == 0) {
        int exists;
        rc = prep(v, from, 0, s, &exists);
        if (rc == 0 && !exists)
            rc = -ENOENT;
        vfs_unlock(v);
    }
    if (rc == 0) {
        ren_t r = {s, flags};
        rc = locked(v, to, 0, do_rename, &r);
    }
    if (rc == 0 && !(flags & RENAME_EXCHANGE)) /* the metadata goes along (DECISIONS.md) */
        mesa_vfs_meta_moved(v, from, to);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ fsync */

int mesa_vfs_sync(mesa_vfs_t *v, const char *staging_real, int timeout_ms)
{
    struct stat st;
    if (fstat(v->jfd, &st) < 0)
        return -errno;
    if (staging_real) { /* a close tells the pusher the file is due */
        int fd = open(staging_real, O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    }
    return mesa_state_wait_acked(v->st, (uint64_t)st.st_size, timeout_ms);
}

/* ------------------------------------------------------------ exec */

/* Copy the content to <run>/exec/<key> with mode 0755 (once). */
static int exec_copy(mesa_vfs_t *v, const mesa_vnode_t *n, const char *src, char *out,
                     size_t outlen)
{
    char key[80], tmp[PATH_MAX];
    struct stat st;
    if (n->where == MESA_VW_TREE)
        snprintf(key, sizeof key, "%s", n->oid);
    else if (stat(src, &st) == 0)
        snprintf(key, sizeof key, "%llx-%llx-%lld.%ld", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino, (long long)st.st_mtim.tv_sec,
                 st.st_mtim.tv_nsec);
    else
        return -errno;
    snprintf(out, outlen, "%s/exec/%s", v->run, key);
    if (access(out, X_OK) == 0)
        return 0;
    snprintf(tmp, sizeof tmp, "%s/exec/.tmp.%d", v->run, getpid());
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    int rc = in < 0 || fd < 0 ? -errno : copy_fd(in, fd);
    if (in >= 0)
        close(in);
    if (fd >= 0)
        close(fd);
    if (rc == 0 && rename(tmp, out) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Parse "#!interp [arg]" from the head of a file. 1 if it is a script. */
static int shebang(const char *src, char *interp, size_t ilen, char *arg, size_t alen)
{
    char buf[256];
    int fd = open(src, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 2 || buf[0] != '#' || buf[1] != '!')
        return 0;
    buf[n] = '\0';
    char *p = buf + 2, *e = strchr(p, '\n');
    if (e)
        *e = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    char *q = p;
    while (*q && *q != ' ' && *q != '\t')
        q++;
    char *a = q;
    if (*a) {
        *a++ = '\0';
        while (*a == ' ' || *a == '\t')
            a++;
        size_t al = strlen(a);
        while (al && (a[al - 1] == ' ' || a[al - 1] == '\t' || a[al - 1] == '\r'))
            a[--al] = '\0';
    }
    snprintf(interp, ilen, "%s", p);
    snprintf(arg, alen, "%s", a);
    return *interp != '\0';
}

int mesa_vfs_exec_plan(mesa_vfs_t *v, const char *path, char *real, size_t reallen,
                       char *interp_arg, size_t arglen, int *script)
{
    mesa_vnode_t *n = vn_new();
    char src[PATH_MAX];
    if (!n)
        return -ENOMEM;
    int rc = mesa_vfs_lookup(v, path, 1, n);
    if (rc == 0 && S_ISDIR(n->mode))
        rc = -EACCES;
    else if (rc == 0 && !(n->mode & 0111))
        rc = -EACCES;
    if (rc == 0)
        rc = content_path(v, n, src, sizeof src);
    if (rc == 0 && shebang(src, real, reallen, interp_arg, arglen)) {
        *script = 1;
    } else if (rc == 0) {
        *script = 0;
        interp_arg[0] = '\0';
        rc = exec_copy(v, n, src, real, reallen);
    }
    free(n);
    return rc;
}
