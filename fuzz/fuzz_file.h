/*
 * fuzz_file.h — the input of a file-reading harness as a file, and the
 * context the harness reads it with.
 *
 * moongrad's readers take a path (gzopen, fopen + fstat), so rather than
 * adding a from-memory entry point that the real code path would not use,
 * each input is written to one memfd and the reader is given
 * /proc/self/fd/N: the bytes go through exactly the code a user's file does
 * (zlib's gzip detection, fstat's size check, fseeko), with no disk I/O.
 */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H

#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mg_core.h"

/* Replaces the memfd's contents with data[0..size) and returns its path.
 * Aborts (a harness failure, not a finding in moongrad) if the memfd
 * cannot be made or written. */
static const char *fuzz_file(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("moongrad-fuzz", 0);
    if (fd < 0) { perror("memfd_create"); abort(); }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0) { perror("ftruncate"); abort(); }
  size_t done = 0;
  while (done < size) {
    ssize_t k = pwrite(fd, data + done, size - done, (off_t)done);
    if (k <= 0) { perror("pwrite"); abort(); }
    done += (size_t)k;
  }
  return path;
}

/* The context every file harness reads with: one thread (deterministic,
 * and no OpenMP pool under ASan) and a 32 MB budget, so a header that asks
 * for gigabytes fails as an error instead of exhausting the machine (the
 * IDX reader allocates what the dims say before it reads the data). Call
 * mg_empty_cache on it after each input: buffers left in the cache look
 * like a leak to libFuzzer, which then runs LeakSanitizer every time. */
static mg_Context *fuzz_context(void) {
  static mg_Context *ctx;
  if (!ctx) {
    if (!(ctx = mg_context_new())) abort();
    mg_set_num_threads(ctx, 1);
    mg_set_memory_limit(ctx, 32u << 20);
  }
  return ctx;
}

#endif
