/*
 * mg_file.h — the files moongrad writes whole, appends to and reads
 * (io_file.c): one routine for every writer, so that each gets the same
 * guarantees.
 *
 *   mg_FileWriter w;
 *   int st = mg_file_begin(ctx, &w, "save", path, NULL);
 *   if (st) return st;
 *   if ((st = mg_file_write(ctx, &w, buf, n))) {
 *     mg_file_abort(&w);              // the file at path is as it was
 *     return st;
 *   }
 *   return mg_file_commit(ctx, &w);   // frees w, success or not
 *
 * What a whole-file write promises:
 *   - It is atomic: the bytes go to a temporary in the target's directory,
 *     which is flushed (fsync), renamed over the target, and the directory
 *     is flushed. A reader sees the old file or the new one, whole.
 *   - A path that is a symbolic link is resolved: the link's final target
 *     is replaced and the link stays a link (as editors that preserve links
 *     do). A dangling link is refused (as GNU cp refuses to write through
 *     one): nothing is created at the place it points to.
 *   - The target, after resolution, must be a regular file or absent: a
 *     directory, FIFO, socket or device is refused, naming the path and
 *     what it is, and nothing is written or renamed.
 *   - An existing target's permission bits carry over to the new file; a
 *     new file gets 0666 less the umask.
 *   - The temporary is unique per call, never per process, so two threads
 *     (two Lua states) may save the same path at once: each save is whole,
 *     the last rename wins. Where the file system supports O_TMPFILE (ext4,
 *     xfs, btrfs, tmpfs) it has no name while it is written and is linked
 *     under a fresh name just before the rename, so a process killed mid-
 *     write leaves nothing behind. Elsewhere it is created with
 *     O_CREAT|O_EXCL|O_NOFOLLOW under a fresh random name, so a link planted
 *     at any name can never redirect the write. Either kind is named
 *     "<name>.tmp-<16 hex digits>" (the name cut to 200 bytes); one left by
 *     a process killed while it had a name is stale and may be removed.
 *
 * Like the rest of the core these return a status and leave a message in
 * the context that names the caller (who) and the path as given:
 *   "save: run/ck.safetensors: is a FIFO (named pipe), not a regular file;
 *    nothing was written"
 */
#ifndef MG_FILE_H
#define MG_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "mg_core.h"

/* Testing hooks of a whole-file write; NULL (or {-1, -1, 0}) for none. */
typedef struct {
  int64_t fail_after;  /* >= 0: writes fail with ENOSPC once this many bytes
                          are written (a filling disk: what fits is written
                          first), or, when the file is shorter, the fsync
                          does */
  int64_t stop_after;  /* >= 0: the process stops itself (SIGSTOP) once this
                          many bytes are written, so that a test can kill it
                          mid-write */
  int named;           /* 1: a named temporary even where O_TMPFILE works,
                          as on a file system without it */
} mg_FileHooks;

/* A whole-file write in progress. */
typedef struct {
  int fd;               /* the temporary, open for writing; -1 when none */
  int dirfd;            /* the target's directory (O_PATH); -1 when none */
  char *name;           /* the target's name in dirfd */
  char *tmpname;        /* the temporary's name in dirfd; NULL while it has
                           none (O_TMPFILE) */
  int keep_mode;        /* 1: give the file mode (the target existed) */
  unsigned mode;        /* the replaced file's permission bits */
  const char *who;      /* the caller's name, for messages (borrowed) */
  const char *path;     /* the path as given, for messages (borrowed) */
  int64_t written;      /* bytes written so far */
  mg_FileHooks hooks;   /* testing, see mg_FileHooks */
} mg_FileWriter;

/* Starts replacing the file at path: resolves a symbolic link, refuses a
 * target that is not a regular file (or a dangling link) and creates the
 * temporary. On success *w holds it until mg_file_commit or mg_file_abort;
 * on failure *w holds nothing (mg_file_abort is harmless) and nothing was
 * created. who and path must outlive *w. */
int mg_file_begin(mg_Context *ctx, mg_FileWriter *w, const char *who,
                  const char *path, const mg_FileHooks *hooks);
/* Appends n bytes to the temporary. On failure (a full disk: MG_EIO naming
 * the bytes written so far) the caller aborts. */
int mg_file_write(mg_Context *ctx, mg_FileWriter *w, const void *buf,
                  size_t n);
/* Publishes the temporary: fsync, a name, close, a last check that the
 * target is still a regular file or absent, rename over the target, fsync
 * of the directory; then frees *w, success or not. On failure the
 * temporary is removed and the target is as it was, except when only the
 * directory's fsync failed (the message then says "written, but ..."). */
int mg_file_commit(mg_Context *ctx, mg_FileWriter *w);
/* Removes the temporary and frees *w: for a failure between begin and
 * commit. Harmless on a writer that holds nothing (after a failed begin,
 * after commit, or called twice). */
void mg_file_abort(mg_FileWriter *w);

/* The whole write in one call: path gets the n bytes of buf. */
int mg_file_write_whole(mg_Context *ctx, const char *who, const char *path,
                        const void *buf, size_t n, const mg_FileHooks *hooks);

/* Appends n bytes to the file at path, creating it when absent (0666 less
 * the umask). The target is resolved and checked as for a whole-file
 * write (a dangling link or a non-regular file is refused) and opened
 * without blocking, so a FIFO is refused at once. The bytes go in one
 * write(2) on an O_APPEND descriptor, so concurrent appenders do not
 * interleave within a record. */
int mg_file_append(mg_Context *ctx, const char *who, const char *path,
                   const void *buf, size_t n);

/* Opens the file at path for writing from its start, as a log that grows
 * while it is written (not atomic): resolved and checked like an append
 * (a FIFO, a device or a directory is refused at once, naming it, and
 * nothing is truncated), created when absent (0666 less the umask), then
 * truncated. *fd receives a blocking descriptor (O_CLOEXEC), which the
 * caller closes. */
int mg_file_open_log(mg_Context *ctx, const char *who, const char *path,
                     int *fd);
/* Opens path for reading without blocking (O_NONBLOCK, then fstat), so a
 * FIFO or a device is refused at once, naming what it is; *fd receives a
 * blocking descriptor of a regular file (O_CLOEXEC), which the caller
 * closes. A missing file is an MG_EIO "cannot open: No such file or
 * directory" error, and then *absent (when not NULL) is set to 1. */
int mg_file_open_read(mg_Context *ctx, const char *who, const char *path,
                      int *fd, int *absent);

/* Reads the regular file at path whole into *text (malloc'd, with a NUL
 * after its *len bytes; the caller frees it). A missing file is not an
 * error: *text is then NULL. */
int mg_file_read_whole(mg_Context *ctx, const char *who, const char *path,
                       char **text, size_t *len);

#endif
