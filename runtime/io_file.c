/*
 * io_file.c — the one routine through which moongrad writes a file whole,
 * appends to one or opens one for reading (see mg_file.h for the
 * contracts).
 *
 * Why each step is there:
 *   - lstat before anything: a directory, FIFO, socket or device at the
 *     target is refused before a byte is written (renaming over a device
 *     node as root replaced /dev/null with a regular file).
 *   - realpath for a symbolic link: the rename then replaces the link's
 *     target in its own directory, and the link stays.
 *   - O_TMPFILE, named by linkat through /proc/self/fd just before the
 *     rename: a process killed mid-write leaves nothing (a named temporary
 *     left a full-size file behind in 13 of 20 trials).
 *   - otherwise O_CREAT|O_EXCL|O_NOFOLLOW under a random name, retried on
 *     EEXIST: unique per call (a per-pid name let two Lua states in one
 *     process truncate each other's file), and a link planted at the name
 *     fails the open instead of redirecting the write.
 *   - fsync, rename, fsync of the directory: the rename is the commit
 *     point, and it survives a power cut.
 *   - readers open with O_NONBLOCK and check fstat: opening a FIFO for
 *     reading blocks until a writer comes, which may be never.
 */
#define _GNU_SOURCE 1 /* O_TMPFILE, O_PATH */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mg_file.h"

#define TMP_BASE_MAX 200 /* bytes of the target's name a temporary's keeps */
#define TMP_TRIES 64     /* fresh names tried before giving up */

static const mg_FileHooks no_hooks = {-1, -1, 0};

/* What a file that is not a regular one is, for messages. */
static const char *kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISLNK(m)) return "a symbolic link";
  return "a special file";
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* ---- the target ------------------------------------------------------------- */

/* The file a write to path replaces or appends to: path itself, or, when
 * it is a symbolic link, its final target (absolute). *target is malloc'd;
 * *exists says whether it exists, and then *sb is its stat. Refuses a
 * dangling link and anything but a regular file. */
static int resolve(mg_Context *ctx, const char *who, const char *path,
                   char **target, struct stat *sb, int *exists) {
  *target = NULL;
  *exists = 0;
  if (!*path) return mg_error(ctx, MG_EARG, "%s: the path is empty", who);
  if (lstat(path, sb) != 0) {
    if (errno != ENOENT)
      return mg_error(ctx, MG_EIO, "%s: %s: cannot write there: %s", who, path,
                      strerror(errno));
  } else if (S_ISLNK(sb->st_mode)) {
    char *real = realpath(path, NULL);
    if (!real) {
      int e = errno;
      char to[512];
      ssize_t k = readlink(path, to, sizeof to - 1);
      to[k > 0 ? k : 0] = '\0';
      if (e == ENOENT)
        return mg_error(ctx, MG_EIO, "%s: %s: is a symbolic link to '%s', which "
                        "does not exist; nothing was written (a dangling link "
                        "is not written through)", who, path, to);
      return mg_error(ctx, MG_EIO, "%s: %s: cannot resolve the symbolic link "
                      "to '%s': %s", who, path, to, strerror(e));
    }
    if (stat(real, sb) != 0) {
      int e = errno;
      free(real);
      return mg_error(ctx, MG_EIO, "%s: %s: cannot write there: %s", who, path,
                      strerror(e));
    }
    if (!S_ISREG(sb->st_mode)) {
      int st = mg_error(ctx, MG_EIO, "%s: %s: links to %s, which is %s, not a "
                        "regular file; nothing was written", who, path, real,
                        kind_of(sb->st_mode));
      free(real);
      return st;
    }
    *target = real;
    *exists = 1;
    return MG_OK;
  } else if (!S_ISREG(sb->st_mode)) {
    return mg_error(ctx, MG_EIO, "%s: %s: is %s, not a regular file; nothing "
                    "was written", who, path, kind_of(sb->st_mode));
  } else {
    *exists = 1;
  }
  if (!(*target = dup_n(path, strlen(path))))
    return mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory", who, path);
  return MG_OK;
}

/* 64 bits for a temporary's name: getrandom, or (without it) a mix of the
 * time, the pid and a counter. Uniqueness does not rest on them (O_EXCL
 * and linkat's EEXIST do); they make the name hard to guess. */
static uint64_t fresh_bits(void) {
  static atomic_uint_fast64_t counter;
  uint64_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r) return r;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  r = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^
      (uint64_t)getpid() << 44 ^
      (uint64_t)atomic_fetch_add(&counter, 1) * 0x9e3779b97f4a7c15u;
  r ^= r >> 31; /* splitmix64's finaliser */
  r *= 0xbf58476d1ce4e5b9u;
  return r ^ r >> 29;
}

/* "<name>.tmp-<16 hex digits>" into buf (TMP_BASE_MAX + 32 bytes). */
static void tmp_name(char *buf, const char *name) {
  int n = (int)strnlen(name, TMP_BASE_MAX);
  snprintf(buf, TMP_BASE_MAX + 32, "%.*s.tmp-%016llx", n, name,
           (unsigned long long)fresh_bits());
}

/* ---- writing a file whole ------------------------------------------------------ */

int mg_file_begin(mg_Context *ctx, mg_FileWriter *w, const char *who,
                  const char *path, const mg_FileHooks *hooks) {
  memset(w, 0, sizeof *w);
  w->fd = w->dirfd = -1;
  w->who = who;
  w->path = path;
  w->hooks = hooks ? *hooks : no_hooks;
  char *target = NULL;
  struct stat sb;
  int exists;
  int st = resolve(ctx, who, path, &target, &sb, &exists);
  if (st) return st;
  const char *slash = strrchr(target, '/'), *base = slash ? slash + 1 : target;
  char *dir = !slash ? dup_n(".", 1) : slash == target ? dup_n("/", 1)
                                                       : dup_n(target, (size_t)(slash - target));
  if (!*base) {
    st = mg_error(ctx, MG_EARG, "%s: %s: ends with '/', which names a directory, "
                  "not a file", who, path);
    goto done;
  }
  if (!dir || !(w->name = dup_n(base, strlen(base)))) {
    st = mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory", who, path);
    goto done;
  }
  if (exists) {
    w->keep_mode = 1;
    w->mode = sb.st_mode & 0777;
  }
  /* O_PATH: a directory we may write in but not list still works. */
  w->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (w->dirfd < 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot create the temporary file in %s: "
                  "%s", who, path, dir, strerror(errno));
    goto done;
  }
  if (!w->hooks.named) {
    w->fd = openat(w->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666);
    if (w->fd >= 0) { /* it can be named only through /proc */
      char proc[64];
      snprintf(proc, sizeof proc, "/proc/self/fd/%d", w->fd);
      if (access(proc, F_OK) != 0) {
        close(w->fd);
        w->fd = -1;
      }
    }
  }
  /* Without O_TMPFILE (or /proc), whatever the reason: a named temporary,
   * whose error is then the one reported. */
  char name[TMP_BASE_MAX + 32];
  for (int i = 0; w->fd < 0 && i < TMP_TRIES; i++) {
    tmp_name(name, w->name);
    w->fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
                   O_CLOEXEC, 0666);
    if (w->fd >= 0) {
      if (!(w->tmpname = dup_n(name, strlen(name)))) {
        unlinkat(w->dirfd, name, 0);
        st = mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory", who, path);
        goto done;
      }
    } else if (errno != EEXIST) {
      break;
    }
  }
  if (w->fd < 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot create the temporary file in %s: "
                  "%s", who, path, dir, strerror(errno));
    goto done;
  }
  if (w->keep_mode) (void)fchmod(w->fd, (mode_t)w->mode); /* best effort */
done:
  free(dir);
  free(target);
  if (st) mg_file_abort(w);
  return st;
}

int mg_file_write(mg_Context *ctx, mg_FileWriter *w, const void *buf,
                  size_t n) {
  const char *p = buf;
  int injected = 0;
  mg_FileHooks *h = &w->hooks;
  if (h->fail_after >= 0 && w->written + (int64_t)n > h->fail_after) {
    n = (size_t)(h->fail_after - w->written);
    injected = 1;
  }
  while (n > 0) {
    if (h->stop_after >= 0 && w->written >= h->stop_after) {
      h->stop_after = -1;
      raise(SIGSTOP);
    }
    size_t chunk = n;
    if (h->stop_after >= 0 && (int64_t)chunk > h->stop_after - w->written)
      chunk = (size_t)(h->stop_after - w->written);
    ssize_t k = write(w->fd, p, chunk);
    if (k < 0) {
      if (errno == EINTR) continue;
      return mg_error(ctx, MG_EIO, "%s: %s: writing failed after %lld bytes: %s",
                      w->who, w->path, (long long)w->written, strerror(errno));
    }
    p += k;
    n -= (size_t)k;
    w->written += k;
  }
  if (injected)
    return mg_error(ctx, MG_EIO, "%s: %s: writing failed after %lld bytes: %s",
                    w->who, w->path, (long long)w->written, strerror(ENOSPC));
  return MG_OK;
}

/* Gives the O_TMPFILE temporary a fresh name in the target's directory. */
static int link_tmpfile(mg_FileWriter *w) {
  char proc[64], name[TMP_BASE_MAX + 32];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", w->fd);
  for (int i = 0; i < TMP_TRIES; i++) {
    tmp_name(name, w->name);
    if (linkat(AT_FDCWD, proc, w->dirfd, name, AT_SYMLINK_FOLLOW) == 0) {
      if ((w->tmpname = dup_n(name, strlen(name)))) return 0;
      unlinkat(w->dirfd, name, 0);
      errno = ENOMEM;
      return -1;
    }
    if (errno != EEXIST) return -1;
  }
  return -1;
}

int mg_file_commit(mg_Context *ctx, mg_FileWriter *w) {
  const char *who = w->who, *path = w->path;
  int st = MG_OK;
  /* A hook past the file's end fails the fsync instead: with delayed
   * allocation a full disk often shows only there. */
  int r = fsync(w->fd);
  if (r == 0 && w->hooks.fail_after >= 0) {
    r = -1;
    errno = ENOSPC;
  }
  if (r != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: fsync of the temporary file failed: %s",
                  who, path, strerror(errno));
    goto done;
  }
  if (!w->tmpname && link_tmpfile(w) != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot name the temporary file: %s",
                  who, path, strerror(errno));
    goto done;
  }
  r = close(w->fd);
  w->fd = -1;
  if (r != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: closing the temporary file failed: %s",
                  who, path, strerror(errno));
    goto done;
  }
  /* What was checked in mg_file_begin may have changed since. */
  struct stat sb;
  if (fstatat(w->dirfd, w->name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
      !S_ISREG(sb.st_mode)) {
    st = mg_error(ctx, MG_EIO, "%s: %s: became %s while it was written, not a "
                  "regular file; it was not replaced", who, path,
                  kind_of(sb.st_mode));
    goto done;
  }
  if (renameat(w->dirfd, w->tmpname, w->dirfd, w->name) != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot rename the temporary file over "
                  "it: %s", who, path, strerror(errno));
    goto done;
  }
  free(w->tmpname);
  w->tmpname = NULL; /* renamed: nothing to remove */
  /* File systems that cannot sync a directory (EINVAL) are not an error. */
  int dfd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    r = fsync(dfd);
    int e = errno;
    close(dfd);
    if (r != 0 && e != EINVAL && e != EROFS)
      st = mg_error(ctx, MG_EIO, "%s: %s: written, but syncing its directory "
                    "failed: %s", who, path, strerror(e));
  }
done:
  mg_file_abort(w);
  return st;
}

void mg_file_abort(mg_FileWriter *w) {
  if (w->fd >= 0) close(w->fd);
  if (w->tmpname && w->dirfd >= 0) unlinkat(w->dirfd, w->tmpname, 0);
  if (w->dirfd >= 0) close(w->dirfd);
  free(w->tmpname);
  free(w->name);
  w->fd = w->dirfd = -1;
  w->tmpname = w->name = NULL;
}

int mg_file_write_whole(mg_Context *ctx, const char *who, const char *path,
                        const void *buf, size_t n, const mg_FileHooks *hooks) {
  mg_FileWriter w;
  int st = mg_file_begin(ctx, &w, who, path, hooks);
  if (st) return st;
  if ((st = mg_file_write(ctx, &w, buf, n))) {
    mg_file_abort(&w);
    return st;
  }
  return mg_file_commit(ctx, &w);
}

/* ---- appending ------------------------------------------------------------------ */

/* Opens the resolved target of path for writing (O_WRONLY | extra),
 * creating it when absent, and makes sure it is a regular file before
 * anything is written: *fd is then a blocking descriptor. */
static int open_regular(mg_Context *ctx, const char *who, const char *path,
                        int extra, const char *doing, int *fd_out) {
  char *target = NULL;
  struct stat sb;
  int exists;
  *fd_out = -1;
  int st = resolve(ctx, who, path, &target, &sb, &exists);
  if (st) return st;
  /* O_NOFOLLOW: the target is resolved, so a link there now is planted;
   * O_NONBLOCK: a FIFO put there since fails or opens at once. */
  int fd = open(target, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                O_CLOEXEC | extra, 0666);
  free(target);
  if (fd < 0)
    return mg_error(ctx, MG_EIO, "%s: %s: cannot open it for %s: %s", who,
                    path, doing, strerror(errno));
  if (fstat(fd, &sb) != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot stat it: %s", who, path,
                  strerror(errno));
    close(fd);
    return st;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return mg_error(ctx, MG_EIO, "%s: %s: is %s, not a regular file; nothing "
                    "was written", who, path, kind_of(sb.st_mode));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl != -1) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  *fd_out = fd;
  return MG_OK;
}

int mg_file_open_log(mg_Context *ctx, const char *who, const char *path,
                     int *fd) {
  int st = open_regular(ctx, who, path, 0, "writing", fd);
  if (st) return st;
  /* Truncated only now that it is known to be a regular file. */
  if (ftruncate(*fd, 0) != 0) {
    st = mg_error(ctx, MG_EIO, "%s: %s: cannot truncate it: %s", who, path,
                  strerror(errno));
    close(*fd);
    *fd = -1;
  }
  return st;
}

int mg_file_append(mg_Context *ctx, const char *who, const char *path,
                   const void *buf, size_t n) {
  int fd;
  int st = open_regular(ctx, who, path, O_APPEND, "appending", &fd);
  if (st) return st;
  const char *p = buf;
  while (n > 0) {
    ssize_t k = write(fd, p, n);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      st = mg_error(ctx, MG_EIO, "%s: %s: appending failed: %s", who, path,
                    strerror(errno));
      break;
    }
    p += k;
    n -= (size_t)k;
  }
  if (close(fd) != 0 && !st)
    st = mg_error(ctx, MG_EIO, "%s: %s: appending failed at close: %s", who,
                  path, strerror(errno));
  return st;
}

/* ---- reading ---------------------------------------------------------------------- */

int mg_file_open_read(mg_Context *ctx, const char *who, const char *path,
                      int *fd_out, int *absent) {
  *fd_out = -1;
  if (absent) *absent = 0;
  if (!*path) return mg_error(ctx, MG_EARG, "%s: the path is empty", who);
  /* stat first, so that a device is not even opened; the fstat below
   * catches one swapped in since. */
  struct stat sb;
  int fd = -1;
  if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
    return mg_error(ctx, MG_EIO, "%s: %s: is %s, not a regular file", who, path,
                    kind_of(sb.st_mode));
  fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (absent && errno == ENOENT) *absent = 1;
    return mg_error(ctx, MG_EIO, "%s: %s: cannot open: %s", who, path,
                    strerror(errno));
  }
  if (fstat(fd, &sb) != 0) {
    int st = mg_error(ctx, MG_EIO, "%s: %s: cannot stat it: %s", who, path,
                      strerror(errno));
    close(fd);
    return st;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return mg_error(ctx, MG_EIO, "%s: %s: is %s, not a regular file", who, path,
                    kind_of(sb.st_mode));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  *fd_out = fd;
  return MG_OK;
}

int mg_file_read_whole(mg_Context *ctx, const char *who, const char *path,
                       char **text, size_t *len) {
  *text = NULL;
  *len = 0;
  int fd, absent;
  int st = mg_file_open_read(ctx, who, path, &fd, &absent);
  if (st) return absent ? MG_OK : st;
  struct stat sb;
  size_t cap = fstat(fd, &sb) == 0 && sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096;
  size_t n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (cap - n < 2) {
      char *b = realloc(buf, cap * 2);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b;
      cap *= 2;
    }
    ssize_t k = read(fd, buf + n, cap - n - 1);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) {
      st = mg_error(ctx, MG_EIO, "%s: %s: reading failed: %s", who, path,
                    strerror(errno));
      break;
    }
    if (k == 0) break;
    n += (size_t)k;
  }
  close(fd);
  if (!buf)
    return mg_error(ctx, MG_ENOMEM, "%s: %s: out of memory reading it", who, path);
  if (st) {
    free(buf);
    return st;
  }
  buf[n] = '\0';
  *text = buf;
  *len = n;
  return MG_OK;
}
