/* core/state.c - the mount's shared state file (see state.h, docs/MOUNT.md "state").
 *
 * File layout, host byte order (the file never leaves the machine), exactly
 * HDR_SIZE + nslots * SLOT_SIZE bytes:
 *   header, 64 bytes: "MESASTA1", u32 version (1), u32 nslots (1..64),
 *     u64 generation (atomic), u64 acked (atomic), u32 futex (atomic), pad;
 *   nslots slots of 1024 bytes: u32 seq (atomic seqlock counter), u32 flags,
 *     char org[101], repo[101], bookmark[256], change_id[33], commit[41],
 *     base_commit[41], mount_key[258]
 *     (each NUL-terminated), pad.
 *
 * Invariants: org, repo, flags and mount_key are written once by create and never
 * change, so find reads them without the seqlock. A slot's seq is odd exactly
 * while one writer is inside it; writers take it with a CAS from even to odd
 * and release it with the next even value, so readers that saw the same even
 * value before and after their copy have a copy of one write. generation is
 * bumped after every completed change (slot or acked); acked only grows; the
 * futex word is bumped after every raise of acked and waiters sleep on it with
 * a shared (not PRIVATE) futex, as they live in other processes.
 *
 * Readers (count, find, get, generation, acked) use only loads, fences and
 * sched_yield: no allocation, no locks, async-signal-safe. A writer killed
 * inside its few stores would leave its slot odd and readers spinning; the
 * window is a handful of memcpy calls.
 *
 * Callers: the shim (readers, wait_acked for fsync), mesarun's pusher and
 * event follower (set, set_acked), `mesa change new|edit` (set),
 * tests/core/test_state.c.
 */
#include "config.h"
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAGIC "MESASTA1"
#define STATE_VERSION 1u
#define HDR_SIZE 64
#define SLOT_SIZE 1024
#define SPINS_BEFORE_YIELD 64

struct hdr {
    char magic[8];
    uint32_t version;
    uint32_t nslots;
    uint64_t generation;
    uint64_t acked;
    uint32_t futex;
    char pad[HDR_SIZE - 36];
};

struct slot {
    uint32_t seq;
    uint32_t flags;
    char org[101];
    char repo[101];
    char bookmark[256];
    char change_id[33];
    char commit[41];
    char base_commit[41];
    char mount_key[258];
    char pad[SLOT_SIZE - 839];
};

_Static_assert(sizeof(struct hdr) == HDR_SIZE, "header layout");
_Static_assert(sizeof(struct slot) == SLOT_SIZE, "slot layout");
_Static_assert(__atomic_always_lock_free(8, 0) && __atomic_always_lock_free(4, 0),
               "shared-memory atomics must be lock-free");

struct mesa_state {
    struct hdr *h;
    struct slot *slots;
    size_t n;   /* from the header at open: the mapping's bound, whatever the file says later */
    size_t len; /* mapping length */
    int ro;     /* mapped read-only: the file is not writable here (--sandbox) */
};

static size_t file_size(size_t n)
{
    return HDR_SIZE + n * SLOT_SIZE;
}

/* ---- create / open ---- */

/* 1 if the field has a NUL within its array. */
static int terminated(const char *f, size_t cap)
{
    return memchr(f, '\0', cap) != NULL;
}

static int repo_ok(const mesa_state_repo_t *r)
{
    return terminated(r->org, sizeof r->org) && terminated(r->repo, sizeof r->repo) &&
           terminated(r->bookmark, sizeof r->bookmark) &&
           terminated(r->change_id, sizeof r->change_id) && terminated(r->commit, sizeof r->commit) &&
           terminated(r->base_commit, sizeof r->base_commit);
}

/* "b-<bookmark>" or "c-<change id>", one path segment: '/' and '%' of a
 * bookmark name are %-escaped (bookmarks "a" and "a/b" must not nest). */
void mesa_state_mount_key(const mesa_state_repo_t *r, char *out, size_t len)
{
    const char *s = r->bookmark[0] ? r->bookmark : r->change_id;
    size_t o = (size_t)snprintf(out, len, "%c-", r->bookmark[0] ? 'b' : 'c');
    for (; *s && o + 4 < len; s++) {
        if (*s == '/' || *s == '%')
            o += (size_t)snprintf(out + o, len - o, "%%%02X", (unsigned char)*s);
        else
            out[o++] = *s;
    }
    out[o] = '\0';
}

/* Fill a zeroed image with the header and the slots. */
static void build_image(char *img, const mesa_state_repo_t *repos, size_t n)
{
    struct hdr *h = (struct hdr *)img;
    struct slot *sl = (struct slot *)(img + HDR_SIZE);

    memcpy(h->magic, STATE_MAGIC, sizeof h->magic);
    h->version = STATE_VERSION;
    h->nslots = (uint32_t)n;
    h->generation = 1;
    for (size_t i = 0; i < n; i++) {
        sl[i].flags = repos[i].flags;
        memcpy(sl[i].org, repos[i].org, sizeof sl[i].org);
        memcpy(sl[i].repo, repos[i].repo, sizeof sl[i].repo);
        memcpy(sl[i].bookmark, repos[i].bookmark, sizeof sl[i].bookmark);
        memcpy(sl[i].change_id, repos[i].change_id, sizeof sl[i].change_id);
        memcpy(sl[i].commit, repos[i].commit, sizeof sl[i].commit);
        /* the epoch starts at the mounted commit unless told otherwise */
        memcpy(sl[i].base_commit, repos[i].base_commit[0] ? repos[i].base_commit : repos[i].commit,
               sizeof sl[i].base_commit);
        mesa_state_mount_key(&repos[i], sl[i].mount_key, sizeof sl[i].mount_key);
    }
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write img to a new 0600 temp file next to path and rename it over path. */
static int publish(const char *path, const char *img, size_t len)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".XXXXXX");
    int fd = -1, rc;

    if (!tmp)
        return -ENOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".XXXXXX", sizeof ".XXXXXX");
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = fchmod(fd, 0600) ? -errno : write_all(fd, img, len);
    if (close(fd) != 0 && errno != EINTR && rc == 0) /* EINTR still closed it */
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

int mesa_state_create(const char *path, const mesa_state_repo_t *repos, size_t n)
{
    size_t len = file_size(n);
    char *img;
    int rc;

    if (!path || !repos || n < 1 || n > MESA_STATE_MAX_REPOS)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!repo_ok(&repos[i]))
            return -EINVAL;
    img = calloc(1, len);
    if (!img)
        return -ENOMEM;
    build_image(img, repos, n);
    rc = publish(path, img, len);
    free(img);
    return rc;
}

static int read_header(int fd, struct hdr *h)
{
    ssize_t r;

    do
        r = pread(fd, h, sizeof *h, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r == (ssize_t)sizeof *h ? 0 : -EBADMSG;
}

/* 0 if the header describes a file of exactly size bytes, else -EBADMSG. */
static int check_header(const struct hdr *h, off_t size)
{
    if (memcmp(h->magic, STATE_MAGIC, sizeof h->magic) != 0 || h->version != STATE_VERSION)
        return -EBADMSG;
    if (h->nslots < 1 || h->nslots > MESA_STATE_MAX_REPOS)
        return -EBADMSG;
    return size == (off_t)file_size(h->nslots) ? 0 : -EBADMSG;
}

/* Validate the file behind fd and map it; the handle in *out. */
static int map_file(int fd, int ro, mesa_state_t **out)
{
    struct stat st;
    struct hdr h;
    mesa_state_t *s;
    void *map;
    int rc;

    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode) || st.st_size < HDR_SIZE)
        return -EBADMSG;
    rc = read_header(fd, &h);
    if (rc == 0)
        rc = check_header(&h, st.st_size);
    if (rc != 0)
        return rc;
    s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->n = h.nslots;
    s->len = file_size(s->n);
    s->ro = ro;
    map = mmap(NULL, s->len, ro ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        free(s);
        return rc;
    }
    s->h = map;
    s->slots = (struct slot *)((char *)map + HDR_SIZE);
    *out = s;
    return 0;
}

int mesa_state_open(const char *path, mesa_state_t **out)
{
    int fd, rc;

    if (!path || !out)
        return -EINVAL;
    do
        fd = open(path, O_RDWR | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    int ro = fd < 0 && (errno == EACCES || errno == EROFS); /* readers only: the sandbox */
    if (ro)
        fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    rc = map_file(fd, ro, out);
    close(fd); /* the mapping keeps the file */
    return rc;
}

void mesa_state_close(mesa_state_t *s)
{
    if (!s)
        return;
    munmap(s->h, s->len);
    free(s);
}

/* ---- readers: loads only ---- */

size_t mesa_state_count(const mesa_state_t *s)
{
    return s->n;
}

/* 1 if the fixed field f (cap bytes) holds exactly the string str. */
static int field_is(const char *f, size_t cap, const char *str)
{
    size_t n = strlen(str);

    return n < cap && memcmp(f, str, n) == 0 && f[n] == '\0';
}

int mesa_state_find(const mesa_state_t *s, const char *org, const char *repo)
{
    if (!org || !repo)
        return -ENOENT;
    for (size_t i = 0; i < s->n; i++) {
        const struct slot *sl = &s->slots[i];

        if (field_is(sl->org, sizeof sl->org, org) && field_is(sl->repo, sizeof sl->repo, repo))
            return (int)i;
    }
    return -ENOENT;
}

static void relax(unsigned spins)
{
    if (spins % SPINS_BEFORE_YIELD == SPINS_BEFORE_YIELD - 1)
        sched_yield();
#if defined(__x86_64__) || defined(__i386__)
    else
        __builtin_ia32_pause();
#endif
}

static void copy_slot(const struct slot *sl, mesa_state_repo_t *out)
{
    out->flags = sl->flags;
    memcpy(out->org, sl->org, sizeof out->org);
    memcpy(out->repo, sl->repo, sizeof out->repo);
    memcpy(out->bookmark, sl->bookmark, sizeof out->bookmark);
    memcpy(out->change_id, sl->change_id, sizeof out->change_id);
    memcpy(out->commit, sl->commit, sizeof out->commit);
    memcpy(out->base_commit, sl->base_commit, sizeof out->base_commit);
    memcpy(out->mount_key, sl->mount_key, sizeof out->mount_key);
}

/* Whatever another process wrote, hand out terminated strings. */
static void terminate(mesa_state_repo_t *r)
{
    r->org[sizeof r->org - 1] = '\0';
    r->repo[sizeof r->repo - 1] = '\0';
    r->bookmark[sizeof r->bookmark - 1] = '\0';
    r->change_id[sizeof r->change_id - 1] = '\0';
    r->commit[sizeof r->commit - 1] = '\0';
    r->base_commit[sizeof r->base_commit - 1] = '\0';
    r->mount_key[sizeof r->mount_key - 1] = '\0';
}

int mesa_state_get(const mesa_state_t *s, size_t i, mesa_state_repo_t *out)
{
    const struct slot *sl;
    uint32_t s1, s2;

    if (i >= s->n || !out)
        return -EINVAL;
    sl = &s->slots[i];
    for (unsigned spins = 0;; spins++) {
        s1 = __atomic_load_n(&sl->seq, __ATOMIC_ACQUIRE);
        if (!(s1 & 1)) {
            copy_slot(sl, out);
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            s2 = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
            if (s1 == s2)
                break;
        }
        relax(spins);
    }
    terminate(out);
    return 0;
}

uint64_t mesa_state_generation(const mesa_state_t *s)
{
    return __atomic_load_n(&s->h->generation, __ATOMIC_ACQUIRE);
}

uint64_t mesa_state_acked(const mesa_state_t *s)
{
    return __atomic_load_n(&s->h->acked, __ATOMIC_ACQUIRE);
}

/* ---- writers ---- */

/* Take the slot: CAS its seq from even to odd. Returns the odd value. */
static uint32_t slot_lock(struct slot *sl)
{
    uint32_t seq;

    for (;;) {
        seq = __atomic_load_n(&sl->seq, __ATOMIC_RELAXED);
        if (!(seq & 1) && __atomic_compare_exchange_n(&sl->seq, &seq, seq + 1, 0, __ATOMIC_ACQUIRE,
                                                      __ATOMIC_RELAXED))
            break;
        sched_yield();
    }
    /* The odd value is visible before any of the field stores that follow. */
    __atomic_thread_fence(__ATOMIC_RELEASE);
    return seq + 1;
}

static void slot_unlock(struct slot *sl, uint32_t odd)
{
    __atomic_store_n(&sl->seq, odd + 1, __ATOMIC_RELEASE);
}

/* Copy str into the fixed field, zero-filling the rest. */
static void put_field(char *f, size_t cap, const char *str)
{
    size_t n = strlen(str);

    memcpy(f, str, n);
    memset(f + n, 0, cap - n);
}

static mesa_state_observer_t observer;
static void *observer_ctx;

void mesa_state_observe(mesa_state_observer_t fn, void *ctx)
{
    observer = fn;
    observer_ctx = ctx;
}

static void observed(size_t i, const char *change_id, const char *commit)
{
    if (observer)
        observer(observer_ctx, i, change_id, commit);
}

int mesa_state_set(mesa_state_t *s, size_t i, const char *change_id, const char *commit,
                   const char *bookmark)
{
    struct slot *sl;
    uint32_t odd;

    if (s->ro)
        return -EROFS;
    if (i >= s->n || !change_id || !commit)
        return -EINVAL;
    sl = &s->slots[i];
    if (strlen(change_id) >= sizeof sl->change_id || strlen(commit) >= sizeof sl->commit ||
        (bookmark && strlen(bookmark) >= sizeof sl->bookmark))
        return -EINVAL;
    odd = slot_lock(sl);
    put_field(sl->change_id, sizeof sl->change_id, change_id);
    put_field(sl->commit, sizeof sl->commit, commit);
    if (bookmark)
        put_field(sl->bookmark, sizeof sl->bookmark, bookmark);
    slot_unlock(sl, odd);
    __atomic_add_fetch(&s->h->generation, 1, __ATOMIC_RELEASE);
    observed(i, change_id, commit);
    return 0;
}

int mesa_state_set_epoch(mesa_state_t *s, size_t i, const char *change_id, const char *commit)
{
    struct slot *sl;
    uint32_t odd;

    if (s->ro)
        return -EROFS;
    if (i >= s->n || !change_id || !commit || strlen(change_id) >= sizeof sl->change_id ||
        strlen(commit) >= sizeof sl->commit)
        return -EINVAL;
    sl = &s->slots[i];
    odd = slot_lock(sl);
    put_field(sl->change_id, sizeof sl->change_id, change_id);
    put_field(sl->commit, sizeof sl->commit, commit);
    put_field(sl->base_commit, sizeof sl->base_commit, commit);
    slot_unlock(sl, odd);
    __atomic_add_fetch(&s->h->generation, 1, __ATOMIC_RELEASE);
    observed(i, change_id, commit);
    return 0;
}

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

void mesa_state_set_acked(mesa_state_t *s, uint64_t off)
{
    struct hdr *h = s->h;
    uint64_t cur = __atomic_load_n(&h->acked, __ATOMIC_RELAXED);
    int saved = errno;
    if (s->ro)
        return;

    do {
        if (off <= cur)
            return;
    } while (
        !__atomic_compare_exchange_n(&h->acked, &cur, off, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED));
    __atomic_add_fetch(&h->generation, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&h->futex, 1, __ATOMIC_RELEASE);
    futex(&h->futex, FUTEX_WAKE, INT_MAX, NULL);
    errno = saved;
}

/* ---- waiting ---- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep on the futex word while it still holds seen, at most left_ms (-1:
 * no limit). 0 to recheck, or -errno (-EINTR). */
static int sleep_on(struct hdr *h, uint32_t seen, int64_t left_ms)
{
    struct timespec ts = {.tv_sec = left_ms / 1000, .tv_nsec = (left_ms % 1000) * 1000000};

    /* EAGAIN: the word moved; ETIMEDOUT: the caller's clock decides. */
    if (futex(&h->futex, FUTEX_WAIT, seen, left_ms < 0 ? NULL : &ts) == 0 || errno == EAGAIN ||
        errno == ETIMEDOUT)
        return 0;
    return -errno;
}

int mesa_state_wait_acked(mesa_state_t *s, uint64_t off, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? 0 : now_ms() + timeout_ms, left = -1;
    int saved = errno, rc;

    for (;;) {
        /* Read the word before acked: a raise after this read changes the word,
         * so the wait below returns at once instead of missing the wake. */
        uint32_t seen = __atomic_load_n(&s->h->futex, __ATOMIC_ACQUIRE);

        if (mesa_state_acked(s) >= off) {
            rc = 0;
            break;
        }
        if (timeout_ms >= 0) {
            left = deadline - now_ms();
            if (left <= 0) {
                rc = -ETIMEDOUT;
                break;
            }
        }
        rc = sleep_on(s->h, seen, left);
        if (rc != 0)
            break;
    }
    errno = saved;
    return rc;
}
