/* server/store_git.h - the git side of mesad's storage, behind one narrow API.
 *
 * One bare repository per Mesa repo, in Jujutsu's format: every commit carries
 * a "change-id" header (32 reverse-hex letters k-z), the root change is 32 'z'
 * with an empty tree and no parents, bookmarks are refs/heads/<name>, every
 * commit written is kept by refs/jj/keep/<oid>. All writes are fsync'ed
 * (libgit2's GIT_OPT_ENABLE_FSYNC_GITDIR), so a ref moved here survives kill -9.
 *
 * Functions return 0 or a negative errno; out-parameters are owned by the
 * caller unless stated. A sg_repo_t is used by one thread at a time.
 * Oids cross this API as 40-char lowercase hex strings (char[41]).
 */
#ifndef MESA_STORE_GIT_H
#define MESA_STORE_GIT_H

#include <stddef.h>
#include <stdint.h>

#define SG_OID_HEX 41
#define SG_CHANGE_ID_LEN 32
#define SG_ROOT_CHANGE_ID "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"

typedef struct sg_repo sg_repo_t;

enum sg_type { SG_BLOB = 1, SG_TREE = 2, SG_LINK = 3 };

/* One-time process init (libgit2 init, fsync on). */
int sg_global_init(void);

/* Create a bare repo at path with the root commit (empty tree, change-id all
 * 'z', author/committer "root" <root@mesa> at epoch 0, message "") and
 * refs/heads/<default_bookmark> pointing at it, plus its keep-ref.
 * root_oid receives the root commit's oid. -EEXIST if path exists. */
int sg_repo_create(const char *path, const char *default_bookmark, char root_oid[SG_OID_HEX]);
int sg_repo_open(const char *path, sg_repo_t **out);
void sg_repo_close(sg_repo_t *r);
/* Remove lock files (*.lock under refs/, packed-refs.lock) that a process killed
 * in the middle of a ref update left behind; only safe while no other
 * process writes the repository (mesad holds the data directory's lock).
 * Returns the number removed, or a negative errno. */
int sg_repo_clear_stale_locks(const char *path);
/* Remove the repository directory recursively. */
int sg_repo_destroy(const char *path);

/* Objects */
int sg_blob_write(sg_repo_t *r, const void *data, size_t len, char oid[SG_OID_HEX]);
/* Read a blob: *data malloc'd (caller frees), NUL appended beyond *len.
 * -ENOENT if missing, -EINVAL if oid is not hex or not a blob. */
int sg_blob_read(sg_repo_t *r, const char *oid, void **data, size_t *len);
/* Size of a blob without reading it (odb header). */
int sg_blob_size(sg_repo_t *r, const char *oid, uint64_t *size);
int sg_blob_exists(sg_repo_t *r, const char *oid);

/* Tree edits applied to a base tree (NULL or "" = empty tree). Paths are
 * validated by the caller (relative, '/'-separated, no empty/./.. segments).
 * SG_OP_UPSERT: path gets blob oid with mode 0100644, 0100755 or 0120000;
 *   missing parent directories are created; a file in the way of a parent
 *   directory -> -ENOTDIR; a directory at path -> -EISDIR.
 * SG_OP_DELETE: removes a file, symlink or a whole directory; missing -> ok.
 * SG_OP_MKDIR: path becomes an (empty) directory if missing; exists as a
 *   directory -> ok; exists as a file -> -EEXIST.
 * Empty directories are kept as empty trees (deleting the last file of a
 * directory keeps the directory). Ops apply in order. */
enum sg_op_kind { SG_OP_UPSERT = 1, SG_OP_DELETE = 2, SG_OP_MKDIR = 3 };
typedef struct sg_op {
    enum sg_op_kind kind;
    const char *path;
    char oid[SG_OID_HEX]; /* UPSERT */
    unsigned mode;        /* UPSERT: 0100644 | 0100755 | 0120000 */
} sg_op_t;
int sg_tree_apply(sg_repo_t *r, const char *base_tree, const sg_op_t *ops, size_t nops,
                  char out_tree[SG_OID_HEX]);

/* Commits */
typedef struct sg_sig {
    const char *name, *email;
    int64_t when;   /* seconds since epoch */
    int offset_min; /* timezone offset in minutes */
} sg_sig_t;
/* Write a commit object with the change-id header (after committer, as jj
 * does). parents may be NULL when nparents == 0. Moves no ref: a commit
 * that loses a race stays unreferenced (garbage for git gc). */
int sg_commit_write(sg_repo_t *r, const char *tree, const char *const *parents, size_t nparents,
                    const char *change_id, const sg_sig_t *author, const sg_sig_t *committer,
                    const char *message, char out[SG_OID_HEX]);

/* Keep a commit reachable: refs/jj/keep/<oid> (idempotent). Called for
 * every commit that becomes part of a change's history. */
int sg_commit_keep(sg_repo_t *r, const char *oid);

typedef struct sg_commit_info {
    char oid[SG_OID_HEX];
    char tree[SG_OID_HEX];
    char change_id[SG_CHANGE_ID_LEN + 1]; /* "" if the commit has no header */
    size_t nparents;
    char (*parents)[SG_OID_HEX]; /* malloc'd array of nparents */
    char *message;               /* malloc'd */
    char *author_name, *author_email, *committer_name, *committer_email; /* malloc'd */
    int64_t author_time, committer_time;
    int author_offset, committer_offset; /* minutes */
} sg_commit_info_t;
int sg_commit_read(sg_repo_t *r, const char *oid, sg_commit_info_t *out);
void sg_commit_info_free(sg_commit_info_t *c);

/* Entries of a tree */
typedef struct sg_entry {
    char *path; /* malloc'd, full path from the tree root */
    enum sg_type type;
    unsigned mode; /* 0100644, 0100755, 0120000, 040000 */
    char oid[SG_OID_HEX];
    uint64_t size; /* blob/link size; 0 for trees */
} sg_entry_t;
void sg_entries_free(sg_entry_t *e, size_t n);
/* Recursive flat listing of a tree, pre-order, sorted by path bytes
 * (directories listed before their contents). */
int sg_tree_list_flat(sg_repo_t *r, const char *tree, sg_entry_t **out, size_t *n);
/* Look up a path ("" = the root tree itself, as SG_TREE with the tree oid).
 * -ENOENT if missing, -ENOTDIR if a parent is not a directory. */
int sg_tree_lookup(sg_repo_t *r, const char *tree, const char *path, sg_entry_t *out);
/* Entries of the directory at path down to depth levels (depth >= 1; 1 =
 * immediate children), sorted by path. -ENOTDIR if path is not a dir. */
int sg_tree_list_dir(sg_repo_t *r, const char *tree, const char *path, int depth,
                     sg_entry_t **out, size_t *n);

/* Paths that differ between two trees (either may be NULL/"" = empty tree):
 * files/links added, modified (content or mode) or deleted; directories only
 * when they appear or vanish empty. Sorted, malloc'd strings. */
typedef struct sg_change {
    char *path;
    char status; /* 'A', 'M', 'D' */
} sg_change_t;
int sg_tree_diff(sg_repo_t *r, const char *old_tree, const char *new_tree, sg_change_t **out,
                 size_t *n);
void sg_changes_free(sg_change_t *c, size_t n);

/* Refs. name is the full ref name ("refs/heads/main").
 * sg_ref_read: -ENOENT if missing.
 * sg_ref_cas: set name to new_oid if it currently equals expected_old
 *   (NULL = must not exist); -EAGAIN if it does not match; fsync'ed.
 * sg_ref_delete_cas: delete if it equals expected_old; -EAGAIN otherwise. */
int sg_ref_read(sg_repo_t *r, const char *name, char oid[SG_OID_HEX]);
int sg_ref_cas(sg_repo_t *r, const char *name, const char *new_oid, const char *expected_old);
int sg_ref_delete_cas(sg_repo_t *r, const char *name, const char *expected_old);
/* Branch names under refs/heads/ (without the prefix) and their oids. */
typedef struct sg_ref {
    char *name;
    char oid[SG_OID_HEX];
} sg_ref_t;
int sg_branches_list(sg_repo_t *r, sg_ref_t **out, size_t *n);
void sg_refs_free(sg_ref_t *refs, size_t n);
/* 1 if name is a valid bookmark (git branch) name, 0 if not. */
int sg_bookmark_name_valid(const char *name);

/* Merge base of two commits (-ENOENT when none); is_ancestor: 1/0. */
int sg_merge_base(sg_repo_t *r, const char *a, const char *b, char out[SG_OID_HEX]);
int sg_is_ancestor(sg_repo_t *r, const char *ancestor, const char *descendant);
/* Three-way merge of trees. On success out_tree is the merged tree and
 * *conflicts is a malloc'd sorted list of conflicting paths (*nconflicts may
 * be 0). Conflicting text files are written with git's conflict markers
 * (ours = target, theirs = source) so the tree is always complete. */
int sg_tree_merge(sg_repo_t *r, const char *base_tree, const char *ours_tree,
                  const char *theirs_tree, char out_tree[SG_OID_HEX], char ***conflicts,
                  size_t *nconflicts);
void sg_strv_free(char **v, size_t n);

/* Generate a fresh random change id (16 random bytes as reverse hex). */
int sg_change_id_new(char out[SG_CHANGE_ID_LEN + 1]);
/* 1 if s is 32 letters from k..z. */
int sg_change_id_valid(const char *s);

#endif
