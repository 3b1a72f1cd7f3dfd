/* core/journal.h - the mount's journal of namespace operations
 * (docs/MOUNT.md "staging files and the journal").
 *
 * Text records "<type>\t<slot>\t<mtime_ns>\t<arg>\t<path>\n", arg and path
 * %XX-escaped (TAB, LF, '%', bytes < 0x20). Appends are one write(2) on an
 * O_APPEND descriptor from a caller buffer: no allocation, safe in signal
 * handlers. Readers consume whole records only; an incomplete last line is
 * left for later.
 */
#ifndef MESA_JOURNAL_H
#define MESA_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MESA_JOURNAL_MAX_RECORD (3 * 4096 * 3 + 128) /* escaped arg + path + fields */

typedef enum {
    MESA_J_WRITE = 'W',   /* arg: staging id */
    MESA_J_UNLINK = 'D',  /* arg: "-" */
    MESA_J_MKDIR = 'K',   /* arg: "-" */
    MESA_J_RMDIR = 'R',   /* arg: "-" */
    MESA_J_RENAME = 'N',  /* arg: old path */
    MESA_J_SYMLINK = 'L', /* arg: target */
    MESA_J_CHMOD = 'X',   /* arg: "0" or "1" (executable bit) */
    MESA_J_UTIMES = 'T',  /* arg: "-"; mtime_ns is the new mtime */
    MESA_J_EPOCH = 'E',   /* arg: new change id; path: "" */
} mesa_jtype_t;

typedef struct mesa_jrec {
    mesa_jtype_t type;
    unsigned slot;
    int64_t mtime_ns;
    const char *arg;  /* unescaped; "-" when unused */
    const char *path; /* unescaped, repo-relative */
    uint64_t offset;  /* reader: offset of the record in the journal */
    uint64_t end;     /* reader: offset just past it */
} mesa_jrec_t;

/* 1 if t is one of the record types above. */
int mesa_journal_type_valid(int t);

/* Format r into buf (MESA_JOURNAL_MAX_RECORD bytes) and append it with one
 * write(2) to fd (opened O_WRONLY|O_APPEND). 0, -ENAMETOOLONG if a field is
 * too long, -EINVAL for a bad type, or -errno of a failed/short write. */
int mesa_journal_append(int fd, const mesa_jrec_t *r);

/* Incremental reader over a journal file. */
typedef struct mesa_journal_reader mesa_journal_reader_t;
/* Open path for reading from offset (0 = the start). 0 or -errno. */
int mesa_journal_reader_open(const char *path, uint64_t offset, mesa_journal_reader_t **out);
void mesa_journal_reader_close(mesa_journal_reader_t *jr);
/* Next record: 1 and *out (strings valid until the next call), 0 when no
 * complete record follows (yet), -EBADMSG for a malformed one (the reader
 * then stays at it). */
int mesa_journal_next(mesa_journal_reader_t *jr, mesa_jrec_t *out);
uint64_t mesa_journal_offset(const mesa_journal_reader_t *jr);
/* The reader's descriptor, and a replacement for it when the old number
 * was closed behind the reader's back (a child closing every descriptor
 * before exec): the old one is not closed, the read position is kept. */
int mesa_journal_reader_fd(const mesa_journal_reader_t *jr);
void mesa_journal_reader_set_fd(mesa_journal_reader_t *jr, int fd);

#endif
