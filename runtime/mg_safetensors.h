/*
 * mg_safetensors.h — reading and writing safetensors files (safetensors.c).
 *
 * The format (https://github.com/huggingface/safetensors), which PyTorch,
 * JAX and others read and write:
 *
 *   8 bytes     N, the header's length, an unsigned little-endian integer
 *   N bytes     a JSON object: for each tensor name
 *                 {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
 *               and optionally "__metadata__": {"key": "value", ...}
 *               (strings only); padded with spaces
 *   the rest    the data: each tensor's elements row-major, little-endian,
 *               at [b, e) counted from the end of the header
 *
 * The data is indexed completely: sorted by offset, the tensors cover the
 * data region from its first byte to its last with no gap and no overlap,
 * and each span is exactly shape × dtype size bytes. Loading a file never
 * executes anything in it: the header is parsed by cJSON as data.
 *
 * Like the rest of the core these return a status and leave a message in
 * the context; every message names the operation and the file:
 *   "load: model.safetensors: truncated: header says 1234 bytes, the file has 100"
 */
#ifndef MG_SAFETENSORS_H
#define MG_SAFETENSORS_H

#include "mg_core.h"
#include "mg_file.h"

/* Largest header accepted by the reader (the reference implementation's
 * limit), so that a corrupt length never makes it allocate gigabytes. */
#define MG_SAFETENSORS_MAX_HEADER 100000000

/* What mg_safetensors_load read. Everything here is owned by the struct;
 * a caller that takes a tensor sets its slot to NULL. */
typedef struct {
  int n;               /* tensors */
  char **names;        /* their names, in the file's data order */
  mg_Tensor **tensors; /* of the file's dtypes; NULL once taken */
  int nmeta;           /* entries of __metadata__ */
  char **meta_keys;    /* nmeta keys, in the header's order */
  char **meta_values;  /* and their values */
} mg_SafeTensors;

/* Reads path into *out (which it overwrites). F64, F32, F16, BF16, I64,
 * I32, I16, I8, U8 and BOOL come back as themselves, byte for byte (so a
 * re-save writes the same file's data); U16, U32, U64 and the F8 kinds,
 * which moongrad cannot hold, are an "unsupported dtype" error naming the
 * file and the tensor. Checks everything before trusting it: the header length
 * against the file's size, the JSON, every dtype, shape and offset
 * pair, holes, overlaps and duplicate names and metadata keys. A path
 * that is not a regular file (a directory, a FIFO, a device) is refused
 * without blocking (mg_file_open_read). On failure *out is empty (nothing
 * to free) and the message says what is wrong where, naming the file. */
int mg_safetensors_load(mg_Context *ctx, mg_SafeTensors *out,
                        const char *path);
/* Frees what a load left in st (tensors not taken, names, metadata) and
 * empties it; an empty or zeroed struct is fine. */
void mg_safetensors_free(mg_SafeTensors *st);

/* Writes n tensors (of any dtype, under its safetensors tag; any layout: a view is
 * written as its contiguous elements) under names, plus nmeta metadata
 * pairs, to path. Tensors are stored sorted by name. Names must be
 * distinct, non-empty, valid UTF-8 and not "__metadata__"; metadata keys
 * distinct and valid UTF-8, and so are values. A header that would pass
 * MG_SAFETENSORS_MAX_HEADER is refused before anything is written (the
 * file could not be read back).
 *
 * The write goes through mg_file_begin/commit (mg_file.h): atomic (a
 * unique temporary in path's directory, fsync, rename, fsync of the
 * directory), through a symbolic link to its target, and refused for a
 * path that is a directory, FIFO, socket, device or dangling link. On any
 * failure the file at path, if any, is left as it was.
 *
 * hooks are testing hooks (mg_FileHooks: a full disk after n bytes, a stop
 * mid-write, a named temporary); pass NULL normally. */
int mg_safetensors_save(mg_Context *ctx, const char *path, int n,
                        const char *const *names, mg_Tensor *const *tensors,
                        int nmeta, const char *const *meta_keys,
                        const char *const *meta_values,
                        const mg_FileHooks *hooks);

#endif
