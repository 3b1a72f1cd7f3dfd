/* tests/server/test_store_git.c - unit tests for server/store_git.c.
 *
 * Builds throwaway bare repos in a private temp directory (removed at the
 * end) and checks every function of store_git.h, including its error paths,
 * then lets the real git CLI (when installed) read and fsck the result.
 */
#include "server/store_git.h"
#include "tests/lib/ctest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EMPTY_TREE "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
#define HELLO_OID "ce013625030ba8dba906f756967f9e9ca394464a" /* "hello\n" */
#define EMPTY_BLOB "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
#define MISSING "0123456789abcdef0123456789abcdef01234567"

static char tmpdir[4096];
static const sg_sig_t alice = {"Alice", "alice@example.com", 1700000000, 60};

static void path_in_tmp(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", tmpdir, name);
}

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static int blob(sg_repo_t *r, const char *s, char oid[SG_OID_HEX])
{
    return sg_blob_write(r, s, strlen(s), oid);
}

static sg_op_t up(const char *path, const char *oid, unsigned mode)
{
    sg_op_t op = {.kind = SG_OP_UPSERT, .path = path, .mode = mode};
    snprintf(op.oid, sizeof op.oid, "%s", oid);
    return op;
}

static sg_op_t del(const char *path)
{
    sg_op_t op = {.kind = SG_OP_DELETE, .path = path};
    return op;
}

static sg_op_t mkd(const char *path)
{
    sg_op_t op = {.kind = SG_OP_MKDIR, .path = path};
    return op;
}

/* One op on base; returns the sg_tree_apply result. */
static int apply1(sg_repo_t *r, const char *base, sg_op_t op, char out[SG_OID_HEX])
{
    return sg_tree_apply(r, base, &op, 1, out);
}

static char type_char(enum sg_type t)
{
    return t == SG_TREE ? 'd' : t == SG_LINK ? 'l' : 'f';
}

/* The listing as "path:type" joined by spaces, for compact comparisons. */
static void listing(const sg_entry_t *e, size_t n, char *buf, size_t len)
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s:%c", i ? " " : "", e[i].path,
                                type_char(e[i].type));
}

static void changes(const sg_change_t *c, size_t n, char *buf, size_t len)
{
    size_t i, off = 0;

    buf[0] = '\0';
    for (i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%c %s", i ? ", " : "", c[i].status,
                                c[i].path);
}

static void test_change_ids(void)
{
    char a[SG_CHANGE_ID_LEN + 1], b[SG_CHANGE_ID_LEN + 1];

    CHECK_EQ_INT(sg_change_id_new(a), 0, "change_id_new succeeds");
    CHECK_EQ_INT(sg_change_id_new(b), 0, "change_id_new succeeds twice");
    CHECK_EQ_INT(strlen(a), SG_CHANGE_ID_LEN, "a new change id has 32 letters");
    CHECK(sg_change_id_valid(a), "a new change id is valid (k..z)");
    CHECK(strcmp(a, b) != 0, "two new change ids differ");
    CHECK(sg_change_id_valid(SG_ROOT_CHANGE_ID), "the root change id is valid");
    CHECK(!sg_change_id_valid("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), "31 letters is not valid");
    CHECK(!sg_change_id_valid("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), "33 letters is not valid");
    CHECK(!sg_change_id_valid("azzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), "a letter below k is not valid");
    CHECK(!sg_change_id_valid(NULL), "NULL is not a valid change id");
}

static void test_bookmark_names(void)
{
    char longname[202];

    CHECK(sg_bookmark_name_valid("main"), "main is a valid bookmark");
    CHECK(sg_bookmark_name_valid("feature/x-1"), "feature/x-1 is a valid bookmark");
    CHECK(!sg_bookmark_name_valid(""), "the empty name is not valid");
    CHECK(!sg_bookmark_name_valid("a..b"), "a..b is not valid");
    CHECK(!sg_bookmark_name_valid("a b"), "a name with a space is not valid");
    CHECK(!sg_bookmark_name_valid("x.lock"), "x.lock is not valid");
    CHECK(!sg_bookmark_name_valid("-x"), "a name starting with - is not valid");
    CHECK(!sg_bookmark_name_valid("HEAD"), "HEAD is not valid");
    memset(longname, 'a', 200);
    longname[200] = '\0';
    CHECK(sg_bookmark_name_valid(longname), "a 200-byte name is valid");
    longname[200] = 'a';
    longname[201] = '\0';
    CHECK(!sg_bookmark_name_valid(longname), "a 201-byte name is not valid");
}

static void test_create_open(const char *path, char root[SG_OID_HEX], sg_repo_t **r)
{
    char other[4200], oid[SG_OID_HEX];
    sg_commit_info_t ci;

    CHECK_EQ_INT(sg_repo_create(path, "main", root), 0, "repo_create succeeds");
    CHECK_EQ_INT(strlen(root), 40, "repo_create returns a 40-hex root oid");
    CHECK_EQ_INT(sg_repo_create(path, "main", oid), -EEXIST,
                 "repo_create on an existing path: EEXIST");
    path_in_tmp(other, sizeof other, "bad-bookmark");
    CHECK_EQ_INT(sg_repo_create(other, "a..b", oid), -EINVAL,
                 "repo_create with a bad bookmark: EINVAL");
    CHECK(!exists(other), "a failed repo_create leaves nothing behind");
    path_in_tmp(other, sizeof other, "nope");
    CHECK_EQ_INT(sg_repo_open(other, r), -ENOENT, "repo_open of a missing repo: ENOENT");
    CHECK(*r == NULL, "a failed repo_open leaves *out NULL");
    CHECK_EQ_INT(sg_repo_open(path, r), 0, "repo_open succeeds");

    CHECK_EQ_INT(sg_ref_read(*r, "refs/heads/main", oid), 0, "the default bookmark exists");
    CHECK_EQ_STR(oid, root, "the default bookmark points at the root commit");
    snprintf(other, sizeof other, "refs/jj/keep/%s", root);
    CHECK_EQ_INT(sg_ref_read(*r, other, oid), 0, "the root commit has a keep-ref");
    CHECK_EQ_STR(oid, root, "the keep-ref points at the root commit");

    CHECK_EQ_INT(sg_commit_read(*r, root, &ci), 0, "commit_read of the root succeeds");
    CHECK_EQ_STR(ci.change_id, SG_ROOT_CHANGE_ID, "the root change id is all z");
    CHECK_EQ_STR(ci.tree, EMPTY_TREE, "the root tree is the empty tree");
    CHECK_EQ_INT(ci.nparents, 0, "the root has no parents");
    CHECK_EQ_STR(ci.author_name, "root", "the root author is root");
    CHECK_EQ_STR(ci.committer_email, "root@mesa", "the root committer is root@mesa");
    CHECK_EQ_INT(ci.author_time, 0, "the root commit is at epoch 0");
    CHECK_EQ_STR(ci.message, "", "the root message is empty");
    sg_commit_info_free(&ci);
}

static void test_blobs(sg_repo_t *r, const char *root)
{
    char oid[SG_OID_HEX];
    uint64_t size = 0;
    void *data = NULL;
    size_t len = 0;

    CHECK_EQ_INT(blob(r, "hello\n", oid), 0, "blob_write succeeds");
    CHECK_EQ_STR(oid, HELLO_OID, "blob_write gives git's blob oid");
    CHECK_EQ_INT(sg_blob_write(r, NULL, 0, oid), 0, "blob_write of nothing succeeds");
    CHECK_EQ_STR(oid, EMPTY_BLOB, "the empty blob has git's empty blob oid");
    CHECK_EQ_INT(sg_blob_read(r, HELLO_OID, &data, &len), 0, "blob_read succeeds");
    CHECK_EQ_INT(len, 6, "blob_read returns the length");
    CHECK(data && memcmp(data, "hello\n", 7) == 0, "blob_read returns the bytes plus a NUL");
    free(data);
    CHECK_EQ_INT(sg_blob_read(r, MISSING, &data, &len), -ENOENT,
                 "blob_read of a missing blob: ENOENT");
    CHECK(data == NULL && len == 0, "a failed blob_read clears the outputs");
    CHECK_EQ_INT(sg_blob_read(r, "xyz", &data, &len), -EINVAL,
                 "blob_read of a non-hex oid: EINVAL");
    CHECK_EQ_INT(sg_blob_read(r, root, &data, &len), -EINVAL, "blob_read of a commit: EINVAL");
    CHECK_EQ_INT(sg_blob_size(r, HELLO_OID, &size), 0, "blob_size succeeds");
    CHECK_EQ_INT(size, 6, "blob_size gives the size");
    CHECK_EQ_INT(sg_blob_size(r, MISSING, &size), -ENOENT, "blob_size of a missing blob: ENOENT");
    CHECK_EQ_INT(sg_blob_size(r, root, &size), -EINVAL, "blob_size of a commit: EINVAL");
    CHECK_EQ_INT(sg_blob_exists(r, HELLO_OID), 1, "blob_exists: 1 for a blob");
    CHECK_EQ_INT(sg_blob_exists(r, MISSING), 0, "blob_exists: 0 for a missing oid");
    CHECK_EQ_INT(sg_blob_exists(r, root), 0, "blob_exists: 0 for a commit");
    CHECK_EQ_INT(sg_blob_exists(r, "12"), -EINVAL, "blob_exists of a short oid: EINVAL");
}

/* Builds t1 = {a/b/c.txt, a-b, l -> hello, x (exec)} and checks edits on it. */
static void test_tree_apply(sg_repo_t *r, char t1[SG_OID_HEX])
{
    char h[SG_OID_HEX], w[SG_OID_HEX], t2[SG_OID_HEX], t3[SG_OID_HEX], buf[512];
    sg_entry_t *e = NULL, a1, a2;
    size_t n = 0;
    sg_op_t ops[5];

    blob(r, "hello\n", h);
    blob(r, "world\n", w);
    ops[0] = up("a/b/c.txt", h, 0100644);
    ops[1] = up("x", w, 0100755);
    ops[2] = up("l", h, 0120000);
    ops[3] = up("a-b", w, 0100644);
    ops[4] = up("tmp/gone", w, 0100644);
    CHECK_EQ_INT(sg_tree_apply(r, NULL, ops, 4, t1), 0, "tree_apply builds a tree from nothing");
    CHECK_EQ_INT(sg_tree_list_flat(r, t1, &e, &n), 0, "tree_list_flat succeeds");
    listing(e, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "a:d a-b:f a/b:d a/b/c.txt:f l:l x:f",
                 "flat listing is sorted by path bytes");
    CHECK(n == 6 && e[4].mode == 0120000 && e[4].size == 6, "a link has mode 0120000 and size");
    CHECK(n == 6 && e[5].mode == 0100755 && e[0].mode == 040000, "modes of exec files and dirs");
    sg_entries_free(e, n);

    CHECK_EQ_INT(sg_tree_apply(r, t1, NULL, 0, t2), 0, "tree_apply with no ops succeeds");
    CHECK_EQ_STR(t2, t1, "no ops give the same tree");
    CHECK_EQ_INT(sg_tree_apply(r, NULL, NULL, 0, t2), 0, "tree_apply on nothing succeeds");
    CHECK_EQ_STR(t2, EMPTY_TREE, "no ops on nothing give the empty tree");
    CHECK_EQ_INT(sg_tree_apply(r, "", &ops[4], 1, t2), 0, "\"\" is the empty base tree too");
    CHECK_EQ_INT(sg_tree_apply(r, t2, (sg_op_t[]){ops[4], del("tmp/gone")}, 2, t2), 0,
                 "upsert then delete of one path in one call");
    CHECK_EQ_INT(sg_tree_lookup(r, t2, "tmp/gone", &a1), -ENOENT, "ops apply in order");

    CHECK_EQ_INT(apply1(r, t1, up("x/y", h, 0100644), t2), -ENOTDIR,
                 "upsert below a file: ENOTDIR");
    CHECK_EQ_INT(apply1(r, t1, up("a/b", h, 0100644), t2), -EISDIR,
                 "upsert onto a directory: EISDIR");
    CHECK_EQ_INT(apply1(r, t1, up("m", h, 0100600), t2), -EINVAL,
                 "upsert with mode 0100600: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, up("m", h, 040000), t2), -EINVAL, "upsert with a tree mode: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, up("m", "zz", 0100644), t2), -EINVAL, "upsert of a bad oid: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, up("m", MISSING, 0100644), t2), -ENOENT,
                 "upsert of a missing blob: ENOENT");
    CHECK_EQ_INT(apply1(r, t1, up("m", t1, 0100644), t2), -EINVAL,
                 "upsert of a tree oid as a file: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, up("", h, 0100644), t2), -EINVAL,
                 "upsert of the empty path: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, up("a/../m", h, 0100644), t2), -EINVAL, "upsert through ..: EINVAL");
    CHECK_EQ_INT(apply1(r, MISSING, up("m", h, 0100644), t2), -ENOENT,
                 "a missing base tree: ENOENT");
    CHECK_EQ_INT(apply1(r, "nothex", up("m", h, 0100644), t2), -EINVAL, "a bad base oid: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, (sg_op_t){.kind = 9, .path = "m"}, t2), -EINVAL,
                 "unknown op: EINVAL");

    CHECK_EQ_INT(apply1(r, t1, mkd("e/f"), t2), 0, "mkdir creates missing parents");
    CHECK_EQ_INT(sg_tree_lookup(r, t2, "e/f", &a1), 0, "the new directory can be looked up");
    CHECK(a1.type == SG_TREE && strcmp(a1.oid, EMPTY_TREE) == 0,
          "a new directory is an empty tree");
    free(a1.path);
    CHECK_EQ_INT(apply1(r, t1, mkd("a"), t3), 0, "mkdir of an existing directory is ok");
    CHECK_EQ_STR(t3, t1, "mkdir of an existing directory changes nothing");
    CHECK_EQ_INT(apply1(r, t1, mkd("x"), t3), -EEXIST, "mkdir onto a file: EEXIST");
    CHECK_EQ_INT(apply1(r, t1, mkd("d/.git"), t3), -EINVAL, "mkdir of .git: EINVAL");
    CHECK_EQ_INT(apply1(r, t1, mkd("x/y"), t3), -ENOTDIR, "mkdir below a file: ENOTDIR");

    CHECK_EQ_INT(apply1(r, t1, del("a/b/c.txt"), t2), 0, "delete of the last file in a dir");
    CHECK_EQ_INT(sg_tree_lookup(r, t2, "a/b", &a1), 0, "the emptied directory is kept");
    CHECK_EQ_STR(a1.oid, EMPTY_TREE, "the emptied directory is an empty tree");
    free(a1.path);
    CHECK_EQ_INT(apply1(r, t1, del("nope/zz"), t3), 0, "delete of a missing path is ok");
    CHECK_EQ_STR(t3, t1, "delete of a missing path changes nothing");
    CHECK_EQ_INT(apply1(r, t1, del("x/zz"), t3), 0, "delete below a file is ok (missing)");
    CHECK_EQ_INT(apply1(r, t1, del("a"), t3), 0, "delete of a whole directory");
    CHECK_EQ_INT(sg_tree_lookup(r, t3, "a", &a1), -ENOENT, "the deleted directory is gone");

    CHECK_EQ_INT(sg_tree_lookup(r, t1, "a", &a1), 0, "lookup of a before editing x");
    CHECK_EQ_INT(apply1(r, t1, up("x", h, 0100644), t2), 0, "upsert replaces a file");
    CHECK_EQ_INT(sg_tree_lookup(r, t2, "a", &a2), 0, "lookup of a after editing x");
    CHECK_EQ_STR(a2.oid, a1.oid, "an untouched subtree keeps its oid");
    free(a1.path);
    free(a2.path);
    CHECK_EQ_INT(sg_tree_lookup(r, t2, "x", &a1), 0, "lookup of the replaced file");
    CHECK(strcmp(a1.oid, h) == 0 && a1.mode == 0100644, "upsert sets content and mode");
    free(a1.path);
}

static void test_lookup_list(sg_repo_t *r, const char *t1)
{
    char buf[512];
    sg_entry_t en, *e = NULL;
    size_t n = 0;

    CHECK_EQ_INT(sg_tree_lookup(r, t1, "", &en), 0, "lookup of \"\" succeeds");
    CHECK(en.type == SG_TREE && strcmp(en.oid, t1) == 0 && en.mode == 040000,
          "\"\" is the root tree");
    free(en.path);
    CHECK_EQ_INT(sg_tree_lookup(r, t1, "a/b/c.txt", &en), 0, "lookup of a nested file");
    CHECK(en.type == SG_BLOB && en.size == 6 && !strcmp(en.path, "a/b/c.txt"), "nested file entry");
    free(en.path);
    CHECK_EQ_INT(sg_tree_lookup(r, t1, "l", &en), 0, "lookup of a link");
    CHECK(en.type == SG_LINK && en.mode == 0120000, "a link is SG_LINK");
    free(en.path);
    CHECK_EQ_INT(sg_tree_lookup(r, t1, "a/q", &en), -ENOENT, "lookup of a missing path: ENOENT");
    CHECK_EQ_INT(sg_tree_lookup(r, t1, "x/y", &en), -ENOTDIR, "lookup below a file: ENOTDIR");
    CHECK_EQ_INT(sg_tree_lookup(r, MISSING, "x", &en), -ENOENT, "lookup in a missing tree: ENOENT");

    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "", 1, &e, &n), 0, "list_dir of the root, depth 1");
    listing(e, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "a:d a-b:f l:l x:f", "root children, sorted");
    sg_entries_free(e, n);
    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "a", 1, &e, &n), 0, "list_dir of a, depth 1");
    listing(e, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "a/b:d", "list_dir paths are full paths");
    sg_entries_free(e, n);
    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "a", 2, &e, &n), 0, "list_dir of a, depth 2");
    listing(e, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "a/b:d a/b/c.txt:f", "depth 2 goes two levels down");
    sg_entries_free(e, n);
    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "x", 1, &e, &n), -ENOTDIR, "list_dir of a file: ENOTDIR");
    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "zz", 1, &e, &n), -ENOENT,
                 "list_dir of a missing dir: ENOENT");
    CHECK_EQ_INT(sg_tree_list_dir(r, t1, "a", 0, &e, &n), -EINVAL, "list_dir with depth 0: EINVAL");
    CHECK_EQ_INT(sg_tree_list_flat(r, NULL, &e, &n), 0, "list_flat of the empty tree");
    CHECK(n == 0, "the empty tree has no entries");
    sg_entries_free(e, n);
    CHECK_EQ_INT(sg_tree_list_flat(r, MISSING, &e, &n), -ENOENT,
                 "list_flat of a missing tree: ENOENT");
}

static void test_commits(sg_repo_t *r, const char *root, const char *t1, char c1[SG_OID_HEX])
{
    char cid[SG_CHANGE_ID_LEN + 1], keep[64], oid[SG_OID_HEX], c2[SG_OID_HEX];
    const char *parents[1] = {root}, *bad[1] = {MISSING};
    sg_commit_info_t ci;

    sg_change_id_new(cid);
    CHECK_EQ_INT(sg_commit_write(r, t1, parents, 1, cid, &alice, &alice, "first\n\nbody\n", c1), 0,
                 "commit_write succeeds");
    CHECK_EQ_INT(sg_commit_read(r, c1, &ci), 0, "commit_read succeeds");
    CHECK_EQ_STR(ci.change_id, cid, "the change id reads back");
    CHECK_EQ_STR(ci.tree, t1, "the tree reads back");
    CHECK(ci.nparents == 1 && strcmp(ci.parents[0], root) == 0, "the parent reads back");
    CHECK_EQ_STR(ci.message, "first\n\nbody\n", "the message reads back");
    CHECK_EQ_STR(ci.author_email, "alice@example.com", "the author reads back");
    CHECK(ci.committer_time == 1700000000 && ci.committer_offset == 60,
          "time and offset read back");
    sg_commit_info_free(&ci);
    snprintf(keep, sizeof keep, "refs/jj/keep/%s", c1);
    CHECK_EQ_INT(sg_ref_read(r, keep, oid), -ENOENT, "commit_write alone creates no keep-ref");
    CHECK_EQ_INT(sg_commit_keep(r, c1), 0, "commit_keep succeeds");
    CHECK_EQ_INT(sg_ref_read(r, keep, oid), 0, "commit_keep creates the keep-ref");
    CHECK_EQ_STR(oid, c1, "the keep-ref points at the commit");
    CHECK_EQ_INT(sg_commit_keep(r, c1), 0, "commit_keep again is a no-op");
    CHECK_EQ_INT(sg_commit_keep(r, "xyz"), -EINVAL, "commit_keep of a non-oid: EINVAL");

    CHECK_EQ_INT(sg_commit_write(r, t1, parents, 1, "nope", &alice, &alice, "", c2), -EINVAL,
                 "commit_write with a bad change id: EINVAL");
    CHECK_EQ_INT(sg_commit_write(r, MISSING, NULL, 0, cid, &alice, &alice, "", c2), -ENOENT,
                 "commit_write with a missing tree: ENOENT");
    CHECK_EQ_INT(sg_commit_write(r, t1, bad, 1, cid, &alice, &alice, "", c2), -ENOENT,
                 "commit_write with a missing parent: ENOENT");
    CHECK_EQ_INT(sg_commit_write(r, t1, NULL, 0, cid, NULL, &alice, "", c2), -EINVAL,
                 "commit_write without an author: EINVAL");
    CHECK_EQ_INT(sg_commit_read(r, MISSING, &ci), -ENOENT,
                 "commit_read of a missing commit: ENOENT");
    CHECK_EQ_INT(sg_commit_read(r, "zz", &ci), -EINVAL, "commit_read of a bad oid: EINVAL");
}

static void test_graph(sg_repo_t *r, const char *root, const char *c1, const char *t1)
{
    char cid[SG_CHANGE_ID_LEN + 1], lone[SG_OID_HEX], oid[SG_OID_HEX];

    CHECK_EQ_INT(sg_merge_base(r, root, c1, oid), 0, "merge_base succeeds");
    CHECK_EQ_STR(oid, root, "the merge base of root and its child is root");
    CHECK_EQ_INT(sg_is_ancestor(r, root, c1), 1, "root is an ancestor of c1");
    CHECK_EQ_INT(sg_is_ancestor(r, c1, root), 0, "c1 is not an ancestor of root");
    CHECK_EQ_INT(sg_is_ancestor(r, c1, c1), 1, "a commit is its own ancestor");
    CHECK_EQ_INT(sg_is_ancestor(r, MISSING, c1), -ENOENT,
                 "is_ancestor of a missing commit: ENOENT");
    sg_change_id_new(cid);
    sg_commit_write(r, t1, NULL, 0, cid, &alice, &alice, "lone\n", lone);
    CHECK_EQ_INT(sg_merge_base(r, lone, c1, oid), -ENOENT, "unrelated commits: merge_base ENOENT");
    CHECK_EQ_INT(sg_merge_base(r, "x", c1, oid), -EINVAL, "merge_base of a bad oid: EINVAL");
}

static void test_refs(sg_repo_t *r, const char *root, const char *c1)
{
    char oid[SG_OID_HEX], buf[256];
    sg_ref_t *refs = NULL;
    size_t i, n = 0, off = 0;

    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/zeta", c1, NULL), 0, "cas creates a new ref");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/zeta", c1, NULL), -EAGAIN,
                 "cas create of an existing ref: EAGAIN");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/zeta", root, root), -EAGAIN,
                 "cas with a stale expectation: EAGAIN");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/zeta", root, c1), 0, "cas with the right expectation");
    CHECK_EQ_INT(sg_ref_read(r, "refs/heads/zeta", oid), 0, "ref_read after cas");
    CHECK_EQ_STR(oid, root, "the ref moved");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/ghost", c1, root), -EAGAIN,
                 "cas of a missing ref with expectation: EAGAIN");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/a..b", c1, NULL), -EINVAL,
                 "cas of an invalid name: EINVAL");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/m", MISSING, NULL), -ENOENT,
                 "cas to a missing object: ENOENT");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/m", "zz", NULL), -EINVAL, "cas to a bad oid: EINVAL");
    CHECK_EQ_INT(sg_ref_cas(r, "refs/heads/feature/a", c1, NULL), 0, "cas creates a nested ref");

    CHECK_EQ_INT(sg_branches_list(r, &refs, &n), 0, "branches_list succeeds");
    for (i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? " " : "", refs[i].name);
    CHECK_EQ_STR(n ? buf : "", "feature/a main zeta", "branches are listed sorted by name");
    CHECK(n == 3 && strcmp(refs[1].oid, root) == 0, "branches come with their oids");
    sg_refs_free(refs, n);

    CHECK_EQ_INT(sg_ref_delete_cas(r, "refs/heads/zeta", c1), -EAGAIN,
                 "delete with a stale expectation: EAGAIN");
    CHECK_EQ_INT(sg_ref_delete_cas(r, "refs/heads/zeta", root), 0,
                 "delete with the right expectation");
    CHECK_EQ_INT(sg_ref_read(r, "refs/heads/zeta", oid), -ENOENT, "a deleted ref is gone: ENOENT");
    CHECK_EQ_INT(sg_ref_delete_cas(r, "refs/heads/zeta", root), -EAGAIN,
                 "delete of a missing ref: EAGAIN");
    CHECK_EQ_INT(sg_ref_delete_cas(r, "refs/heads/zeta", NULL), -EINVAL,
                 "delete without expectation: EINVAL");
}

static void test_diff(sg_repo_t *r, const char *t1)
{
    char h[SG_OID_HEX], w[SG_OID_HEX], t2[SG_OID_HEX], t3[SG_OID_HEX], t4[SG_OID_HEX], buf[512];
    sg_change_t *c = NULL;
    size_t n = 0;
    sg_op_t ops[6];

    blob(r, "hello\n", h);
    blob(r, "world\n", w);
    ops[0] = up("a/b/c.txt", w, 0100644); /* modified content */
    ops[1] = up("x", w, 0100644);         /* mode only */
    ops[2] = up("l", h, 0100644);         /* link -> file */
    ops[3] = del("a-b");                  /* deleted */
    ops[4] = up("n/new", h, 0100644);     /* added */
    ops[5] = mkd("e/f");                  /* empty dir appears */
    sg_tree_apply(r, t1, ops, 6, t2);
    CHECK_EQ_INT(sg_tree_diff(r, t1, t2, &c, &n), 0, "tree_diff succeeds");
    changes(c, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "D a-b, M a/b/c.txt, A e/f, M l, A n/new, M x",
                 "changes of content, mode, type, and a new empty dir, sorted");
    sg_changes_free(c, n);

    CHECK_EQ_INT(sg_tree_diff(r, t2, t1, &c, &n), 0, "reverse tree_diff succeeds");
    changes(c, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "A a-b, M a/b/c.txt, D e/f, M l, D n/new, M x",
                 "an empty dir vanishing is D");
    sg_changes_free(c, n);

    apply1(r, t2, up("e/f/g", h, 0100644), t3);
    CHECK_EQ_INT(sg_tree_diff(r, t2, t3, &c, &n), 0, "tree_diff into a formerly empty dir");
    changes(c, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "A e/f/g", "an empty dir gaining a file is not reported as deleted");
    sg_changes_free(c, n);

    sg_tree_apply(r, t2, (sg_op_t[]){del("e/f"), up("e/f", h, 0100644)}, 2, t4);
    CHECK_EQ_INT(sg_tree_diff(r, t2, t4, &c, &n), 0, "tree_diff of empty dir -> file");
    changes(c, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "M e/f", "an empty dir replaced by a file is one M");
    sg_changes_free(c, n);

    CHECK_EQ_INT(sg_tree_diff(r, NULL, t1, &c, &n), 0, "tree_diff from nothing");
    changes(c, n, buf, sizeof buf);
    CHECK_EQ_STR(buf, "A a-b, A a/b/c.txt, A l, A x", "everything is added");
    sg_changes_free(c, n);
    CHECK_EQ_INT(sg_tree_diff(r, t1, t1, &c, &n), 0, "tree_diff of a tree with itself");
    CHECK(n == 0 && c == NULL, "no changes");
    CHECK_EQ_INT(sg_tree_diff(r, t1, MISSING, &c, &n), -ENOENT,
                 "tree_diff with a missing tree: ENOENT");
    CHECK_EQ_INT(sg_tree_diff(r, "bad", t1, &c, &n), -EINVAL, "tree_diff with a bad oid: EINVAL");
}

static int blob_is(sg_repo_t *r, const char *tree, const char *path, const char *want)
{
    sg_entry_t e;
    void *data = NULL;
    size_t len = 0;
    int ok;

    if (sg_tree_lookup(r, tree, path, &e) < 0)
        return 0;
    ok =
        sg_blob_read(r, e.oid, &data, &len) == 0 && len == strlen(want) && !memcmp(data, want, len);
    free(e.path);
    free(data);
    return ok;
}

/* Add/add, binary, symlink and directory/file conflicts: the target wins
 * where there is nothing to merge textually, and every such path is listed. */
static void test_merge_edges(sg_repo_t *r, const char *base)
{
    char a[SG_OID_HEX], b[SG_OID_HEX], bin1[SG_OID_HEX], bin2[SG_OID_HEX];
    char ours[SG_OID_HEX], theirs[SG_OID_HEX], out[SG_OID_HEX], buf[256];
    char **cf = NULL;
    size_t i, ncf = 0, off = 0;
    sg_entry_t e;

    blob(r, "ours\n", a);
    blob(r, "theirs\n", b);
    sg_blob_write(r, "\0\1\2ours", 7, bin1);
    sg_blob_write(r, "\0\1\2theirs", 9, bin2);
    sg_tree_apply(r, base,
                  (sg_op_t[]){up("new", a, 0100644), up("bin", bin1, 0100644), up("ln", a, 0120000),
                              up("df", a, 0100644), up("fd/y", a, 0100644)},
                  5, ours);
    sg_tree_apply(r, base,
                  (sg_op_t[]){up("new", b, 0100644), up("bin", bin2, 0100644), up("ln", b, 0120000),
                              up("df/x", b, 0100644), up("fd", b, 0100644)},
                  5, theirs);
    CHECK_EQ_INT(sg_tree_merge(r, base, ours, theirs, out, &cf, &ncf), 0,
                 "a merge with add/add, binary, link and dir/file conflicts succeeds");
    for (i = 0; i < ncf; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%s", i ? " " : "", cf[i]);
    CHECK_EQ_STR(ncf ? buf : "", "bin df df/x fd fd/y ln new", "all of them are reported");
    sg_strv_free(cf, ncf);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "bin", &e), 0, "the binary file is in the tree");
    CHECK_EQ_STR(e.oid, bin1, "a binary conflict keeps the target's version");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "ln", &e), 0, "the link is in the tree");
    CHECK(e.type == SG_LINK && strcmp(e.oid, a) == 0, "a link conflict keeps the target's link");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "df", &e), 0, "the dir/file path is in the tree");
    CHECK(e.type == SG_BLOB && strcmp(e.oid, a) == 0,
          "a dir/file conflict keeps the target's file");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "fd/y", &e), 0,
                 "a file/dir conflict keeps the target's dir");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "new", &e), 0, "the add/add file is in the tree");
    free(e.path);
    CHECK(blob_is(r, out, "new", "<<<<<<< target\nours\n=======\ntheirs\n>>>>>>> source\n"),
          "an add/add conflict has markers");
}

static void test_merge(sg_repo_t *r)
{
    char f0[SG_OID_HEX], f1[SG_OID_HEX], f2[SG_OID_HEX], g0[SG_OID_HEX];
    char g1[SG_OID_HEX], base[SG_OID_HEX], ours[SG_OID_HEX], theirs[SG_OID_HEX];
    char out[SG_OID_HEX], **cf = NULL;
    sg_entry_t e;
    void *data = NULL;
    size_t len = 0, ncf = 0;

    blob(r, "1\n2\n3\n4\n5\n", f0);
    blob(r, "one\n2\n3\n4\n5\n", f1);
    blob(r, "1\n2\n3\n4\nfive\n", f2);
    blob(r, "g\n", g0);
    blob(r, "g changed\n", g1);
    sg_tree_apply(r, NULL, (sg_op_t[]){up("f", f0, 0100644), up("g", g0, 0100644), mkd("keep")}, 3,
                  base);
    sg_tree_apply(r, base, (sg_op_t[]){up("f", f1, 0100644), mkd("ours-empty")}, 2, ours);
    sg_tree_apply(r, base, (sg_op_t[]){up("f", f2, 0100644), mkd("src/empty")}, 2, theirs);
    CHECK_EQ_INT(sg_tree_merge(r, base, ours, theirs, out, &cf, &ncf), 0, "a clean merge succeeds");
    CHECK_EQ_INT(ncf, 0, "a clean merge has no conflicts");
    CHECK(blob_is(r, out, "f", "one\n2\n3\n4\nfive\n"), "both sides' edits are merged");
    CHECK_EQ_INT(sg_tree_lookup(r, out, "keep", &e), 0, "an unchanged empty dir survives a merge");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "ours-empty", &e), 0,
                 "the target's new empty dir survives");
    free(e.path);
    CHECK_EQ_INT(sg_tree_lookup(r, out, "src/empty", &e), 0, "the source's new empty dir survives");
    free(e.path);
    sg_strv_free(cf, ncf);

    blob(r, "1\nTWO\n3\n4\n5\n", f1);
    blob(r, "1\nzwei\n3\n4\n5\n", f2);
    sg_tree_apply(r, base, (sg_op_t[]){up("f", f1, 0100644), del("g")}, 2, ours);
    sg_tree_apply(r, base, (sg_op_t[]){up("f", f2, 0100644), up("g", g1, 0100644)}, 2, theirs);
    CHECK_EQ_INT(sg_tree_merge(r, base, ours, theirs, out, &cf, &ncf), 0,
                 "a conflicting merge succeeds");
    CHECK_EQ_INT(ncf, 2, "two conflicting paths");
    CHECK(ncf == 2 && !strcmp(cf[0], "f") && !strcmp(cf[1], "g"), "conflicts are sorted paths");
    CHECK_EQ_INT(sg_tree_lookup(r, out, "f", &e), 0, "the conflicted file is in the tree");
    sg_blob_read(r, e.oid, &data, &len);
    CHECK(data && strstr(data, "<<<<<<< target") && strstr(data, ">>>>>>> source"),
          "a text conflict has markers (target vs source)");
    free(data);
    free(e.path);
    CHECK(blob_is(r, out, "g", "g changed\n"), "delete/modify keeps the modified side");
    sg_strv_free(cf, ncf);

    test_merge_edges(r, base);
    CHECK_EQ_INT(sg_tree_merge(r, NULL, NULL, base, out, &cf, &ncf), 0, "merge from nothing");
    CHECK_EQ_STR(out, base, "merging into nothing gives the source");
    sg_strv_free(cf, ncf);
    CHECK_EQ_INT(sg_tree_merge(r, base, MISSING, theirs, out, &cf, &ncf), -ENOENT,
                 "merge with a missing tree: ENOENT");
    CHECK(cf == NULL && ncf == 0, "a failed merge returns no conflicts");
}

static void test_git_cli(const char *repo)
{
    char cmd[9000];

    if (system("git --version >/dev/null 2>&1") != 0) {
        printf("# skip: git CLI not available\n");
        return;
    }
    snprintf(cmd, sizeof cmd,
             "git -C '%s' log --format=raw refs/heads/main | grep -q '^change-id z\\{32\\}$'",
             repo);
    CHECK_EQ_INT(system(cmd), 0, "git log --format=raw shows the root change-id header");
    snprintf(cmd, sizeof cmd,
             "git -C '%s' cat-file commit refs/heads/feature/a | sed -n '/^committer /{n;p;q}' | "
             "grep -q '^change-id [k-z]\\{32\\}$'",
             repo);
    CHECK_EQ_INT(system(cmd), 0, "the change-id header follows the committer line");
    snprintf(cmd, sizeof cmd, "git -C '%s' fsck --strict --no-progress >/dev/null 2>&1", repo);
    CHECK_EQ_INT(system(cmd), 0, "git fsck --strict finds no errors");
}

int main(void)
{
    char repo[4200], root[SG_OID_HEX], t1[SG_OID_HEX], c1[SG_OID_HEX];
    const char *base = getenv("TMPDIR");
    sg_repo_t *r = NULL;

    snprintf(tmpdir, sizeof tmpdir, "%s/test_store_git.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! mkdtemp failed\n");
        return 1;
    }
    CHECK_EQ_INT(sg_global_init(), 0, "global_init succeeds");
    CHECK_EQ_INT(sg_global_init(), 0, "global_init is idempotent");
    test_change_ids();
    test_bookmark_names();
    path_in_tmp(repo, sizeof repo, "r1.git");
    test_create_open(repo, root, &r);
    if (r) {
        test_blobs(r, root);
        test_tree_apply(r, t1);
        test_lookup_list(r, t1);
        test_commits(r, root, t1, c1);
        test_graph(r, root, c1, t1);
        test_refs(r, root, c1);
        test_diff(r, t1);
        test_merge(r);
        test_git_cli(repo);
    }
    sg_repo_close(r);
    CHECK_EQ_INT(sg_repo_destroy(repo), 0, "repo_destroy succeeds");
    CHECK(!exists(repo), "the repository is gone");
    CHECK_EQ_INT(sg_repo_destroy(repo), -ENOENT, "repo_destroy of a missing repo: ENOENT");
    rmdir(tmpdir);
    return ctest_done();
}
