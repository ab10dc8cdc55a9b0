/*
 * mpi/dist.c — moongrad.dist_mpi: tensors over MPI (Open MPI), the C half of
 * moongrad.dist. Built only when mpicc is found (Makefile, "distributed").
 *
 * Every collective works in place on contiguous tensors of the state's
 * core (reached through mg_capi.h, not linked). Ranks here are MPI's,
 * 0-based; moongrad.dist turns them into Lua's 1-based ones and checks
 * arguments that need no communication. What needs every rank to agree
 * (the tensors' sizes and dtypes) is checked with one small collective
 * first, so a mismatch is the same clear error on every rank instead of a
 * hang or a corrupted buffer.
 *
 * The collectives (and DDP's overlapped buckets, fixed when made) run over
 * the current communicator: MPI_COMM_WORLD, or a group of ranks made with
 * split() and made current with use() (moongrad.dist's with_group: one
 * hyperparameter trial per group of ranks). The messages (send, probe,
 * recv), abort and the meeting at exit always use the world, with its
 * ranks.
 *
 * MPI calls come from one thread at a time (MPI_THREAD_SERIALIZED): the
 * thread of the Lua state. MPI errors return (MPI_ERRORS_RETURN) and become
 * Lua errors naming the function.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>

#include "../mg_capi.h"

static const mgl_CAPI *capi;

/* The collectives' communicator: the world, or the group use() chose. */
static MPI_Comm comm = MPI_COMM_WORLD;

/* The packing buffer of allreduce_buckets, kept between calls (a step's
 * buckets are the same size every time) and freed with MPI. */
static char *bucket_buf;
static size_t bucket_bytes_held;

/* Time and bytes spent in collectives, for dist.stats(). */
static struct {
  double seconds;
  double bytes;
  long long calls;
  long long early; /* buckets started during a backward (overlap) */
} stats;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* A Lua error with the message alone: the op names itself, and a position
 * in moongrad's own Lua files would only mislead. */
static int raise(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  return lua_error(L);
}

static int mpi_error(lua_State *L, const char *fn, int code) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, msg, &len) != MPI_SUCCESS) len = 0;
  msg[len] = '\0';
  return raise(L, "dist.%s: MPI failed: %s", fn, len ? msg : "unknown error");
}

#define CHECK_MPI(L, fn, call)                    \
  do {                                            \
    int rc_ = (call);                             \
    if (rc_ != MPI_SUCCESS) mpi_error(L, fn, rc_); \
  } while (0)

static int is_initialized(void) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  return init && !fin;
}

static void need_init(lua_State *L, const char *fn) {
  if (!is_initialized())
    raise(L, "dist.%s: MPI is not initialised (call dist.init() first)", fn);
}

static MPI_Datatype mpi_type(mg_DType dt) {
  switch (dt) {
    case MG_F32: return MPI_FLOAT;
    case MG_F64: return MPI_DOUBLE;
    default: return MPI_INT64_T;
  }
}

static size_t elem_size(mg_DType dt) { return dt == MG_F32 ? 4 : 8; }

/* "float32 [3,4]" for messages. */
static const char *describe(lua_State *L, const mg_Tensor *t) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, capi->dtype_name(t->dtype));
  luaL_addstring(&b, " [");
  for (int d = 0; d < t->ndim; d++) {
    if (d) luaL_addchar(&b, ',');
    lua_pushfstring(L, "%I", (lua_Integer)t->shape[d]);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, ']');
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* The contiguous tensor at arg, which the collective will read or write. */
static mg_Tensor *check_tensor(lua_State *L, int arg, const char *fn) {
  mg_Tensor *t = capi->test(L, arg);
  if (!t) raise(L, "dist.%s: expects a tensor as argument #%d, got %s", fn, arg,
                     luaL_typename(L, arg));
  if (!capi->is_contiguous(t))
    raise(L, "dist.%s: the tensor must be contiguous (got a strided view of %s); "
               "pass t:contiguous() and copy back", fn, describe(L, t));
  return t;
}

/* MPI counts are ints. */
static void check_count(lua_State *L, const char *fn, int64_t n) {
  if (n > 2147483647)
    raise(L, "dist.%s: %I elements is more than one MPI call carries (2^31 - 1); "
               "split the tensor", fn, (lua_Integer)n);
}

/* Every rank must pass the same number of elements of the same dtype:
 * one allreduce of (n, -n, dtype, -dtype) with MAX tells each rank the
 * largest and smallest of both. */
static void check_agree(lua_State *L, const char *fn, int64_t n, int dtype,
                        const mg_Tensor *t, const char *what) {
  int64_t mine[4] = {n, -n, dtype, -dtype}, all[4];
  CHECK_MPI(L, fn, MPI_Allreduce(mine, all, 4, MPI_INT64_T, MPI_MAX, comm));
  if (all[0] == -all[1] && all[2] == -all[3]) return;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (all[2] != -all[3])
    raise(L, "dist.%s: ranks passed %s of different dtypes (rank %d: %s)", fn, what,
               rank + 1, describe(L, t));
  raise(L, "dist.%s: ranks passed %s of different sizes: from %I to %I elements "
             "(rank %d: %s)", fn, what, (lua_Integer)-all[1], (lua_Integer)all[0], rank + 1,
             t ? describe(L, t) : "");
}

static void count(double t0, double bytes) {
  stats.seconds += now() - t0;
  stats.bytes += bytes;
  stats.calls++;
}

/* ---- set-up ------------------------------------------------------------------- */

static void finalize(void) {
  if (is_initialized()) MPI_Finalize();
  comm = MPI_COMM_WORLD; /* the groups' handles died with MPI */
  free(bucket_buf);
  bucket_buf = NULL;
  bucket_bytes_held = 0;
}

/* The ranks' way out, apart from the collectives' communicator: a rank
 * that exits meets the others here, while they may be blocked in a
 * collective (on the world or a group of ranks). */
static MPI_Comm exit_comm = MPI_COMM_NULL;
#define EXIT_WAIT_SECONDS 5

/* At exit (on_exit sees the status). A clean exit finalises. A failing
 * one finalises too when every rank is failing together (fit stops all
 * ranks at the same step for a signal or a non-finite loss, and they
 * meet here within moments); a rank failing alone would wait in
 * MPI_Finalize for ranks that wait in a collective for it, for ever, so
 * after a few seconds it ends the whole job with MPI_Abort instead. */
static void at_exit(int status, void *unused) {
  (void)unused;
  if (!is_initialized()) return;
  if (status != 0 && exit_comm != MPI_COMM_NULL) {
    MPI_Request req;
    int done = 0;
    double t0 = now();
    if (MPI_Ibarrier(exit_comm, &req) == MPI_SUCCESS) {
      while (!done && now() - t0 < EXIT_WAIT_SECONDS) {
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
        if (!done) {
          struct timespec ms = {0, 1000000};
          nanosleep(&ms, NULL);
        }
      }
    }
    if (!done) {
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      fprintf(stderr, "moongrad.dist: rank %d is exiting with status %d while other ranks "
              "wait for it; ending the job (MPI_Abort)\n", rank + 1, status);
      fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, status);
    }
  }
  finalize();
}

/* init() --> rank (0-based), size. Idempotent. */
static int f_init(lua_State *L) {
  int init = 0, fin = 0;
  MPI_Initialized(&init);
  MPI_Finalized(&fin);
  if (fin) return raise(L, "dist.init: MPI was finalised already; it cannot start again");
  if (!init) {
    /* Open MPI loads its components with dlopen and they expect libmpi's
     * symbols to be global; Lua's require loaded us (and libmpi) locally. */
    dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) return mpi_error(L, "init", rc);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_dup(MPI_COMM_WORLD, &exit_comm);
    /* A script that ends with os.exit or an error never closes its state;
     * mpirun reports a rank that exits without MPI_Finalize as failed. */
    on_exit(at_exit, NULL);
  }
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lua_pushinteger(L, rank);
  lua_pushinteger(L, size);
  return 2;
}

static int f_initialized(lua_State *L) {
  lua_pushboolean(L, is_initialized());
  return 1;
}

static int f_finalize(lua_State *L) {
  finalize();
  return 0;
}

/* Pushes this rank's place among the ranks of c on its machine (0-based)
 * and how many run there. A collective over c. */
static int push_local(lua_State *L, const char *fn, MPI_Comm c) {
  MPI_Comm node;
  CHECK_MPI(L, fn, MPI_Comm_split_type(c, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  int r, s;
  MPI_Comm_rank(node, &r);
  MPI_Comm_size(node, &s);
  MPI_Comm_free(&node);
  lua_pushinteger(L, r);
  lua_pushinteger(L, s);
  return 2;
}

/* local_rank_size() --> push_local's, for the current communicator. */
static int f_local(lua_State *L) {
  need_init(L, "local_rank");
  return push_local(L, "local_rank", comm);
}

/* ---- groups of ranks ------------------------------------------------------------- */

/* A communicator of split()'s, freed when Lua collects it (after MPI's
 * finalisation there is nothing left to free). */
#define MGL_GROUP "moongrad.dist.Group"

typedef struct {
  MPI_Comm comm;
} Group;

static int group_gc(lua_State *L) {
  Group *g = luaL_checkudata(L, 1, MGL_GROUP);
  if (g->comm == MPI_COMM_NULL) return 0;
  if (comm == g->comm) comm = MPI_COMM_WORLD;
  if (is_initialized()) MPI_Comm_free(&g->comm);
  g->comm = MPI_COMM_NULL;
  return 0;
}

/* split(color) --> group, rank, size, local rank, local size (0-based
 * ranks in the group), or nil for a nil color. A collective over the
 * current communicator: the ranks passing one color form a group, in
 * their current order; a rank passing nil joins none. */
static int f_split(lua_State *L) {
  need_init(L, "split");
  int color = MPI_UNDEFINED, rank;
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer c = luaL_checkinteger(L, 1);
    if (c < 0 || c > 2147483647)
      return raise(L, "dist.split: color must be an integer in 0..2^31 - 1 or nil, got %I", c);
    color = (int)c;
  }
  MPI_Comm_rank(comm, &rank);
  Group *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->comm = MPI_COMM_NULL;
  luaL_setmetatable(L, MGL_GROUP);
  CHECK_MPI(L, "split", MPI_Comm_split(comm, color, rank, &g->comm));
  if (g->comm == MPI_COMM_NULL) {
    lua_pushnil(L);
    return 1;
  }
  int r, s;
  MPI_Comm_rank(g->comm, &r);
  MPI_Comm_size(g->comm, &s);
  lua_pushinteger(L, r);
  lua_pushinteger(L, s);
  push_local(L, "split", g->comm);
  return 5;
}

/* use(group | nil): the collectives run over group from now on; nil: over
 * the world again. */
static int f_use(lua_State *L) {
  need_init(L, "with_group");
  if (lua_isnoneornil(L, 1)) {
    comm = MPI_COMM_WORLD;
    return 0;
  }
  Group *g = luaL_checkudata(L, 1, MGL_GROUP);
  if (g->comm == MPI_COMM_NULL) return raise(L, "dist.with_group: the group was freed");
  comm = g->comm;
  return 0;
}

static int f_rank(lua_State *L) {
  int r;
  need_init(L, "rank");
  MPI_Comm_rank(comm, &r);
  lua_pushinteger(L, r);
  return 1;
}

static int f_size(lua_State *L) {
  int s;
  need_init(L, "size");
  MPI_Comm_size(comm, &s);
  lua_pushinteger(L, s);
  return 1;
}

static int f_barrier(lua_State *L) {
  need_init(L, "barrier");
  double t0 = now();
  CHECK_MPI(L, "barrier", MPI_Barrier(comm));
  count(t0, 0);
  return 0;
}

/* ---- collectives on one tensor -------------------------------------------------- */

/* Waits for req without holding a core for long: MPI_Wait spins, and a
 * rank waiting for its group's leader (who may wait for the study on rank
 * 1 for a whole trial) would take a core from the trials on its machine. */
static int wait_idle(MPI_Request *req) {
  int done = 0, rc;
  long tests = 0;
  while ((rc = MPI_Test(req, &done, MPI_STATUS_IGNORE)) == MPI_SUCCESS && !done) {
    if (++tests > 1000) {
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, NULL);
    }
  }
  return rc;
}

/* broadcast_string(s, root) --> root's s on every rank (the others' s is
 * ignored): its length first, then its bytes. */
static int f_broadcast_string(lua_State *L) {
  need_init(L, "broadcast");
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int root = (int)luaL_checkinteger(L, 2), me;
  MPI_Comm_rank(comm, &me);
  int64_t n = (int64_t)len;
  double t0 = now();
  MPI_Request req;
  CHECK_MPI(L, "broadcast", MPI_Ibcast(&n, 1, MPI_INT64_T, root, comm, &req));
  CHECK_MPI(L, "broadcast", wait_idle(&req));
  /* every rank has root's length: all raise together */
  if (n > 2147483647)
    return raise(L, "dist.broadcast: a string of %I bytes is more than one message carries "
                    "(2^31 - 1)", (lua_Integer)n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  if (me == root) memcpy(p, s, (size_t)n);
  if (n > 0) {
    CHECK_MPI(L, "broadcast", MPI_Ibcast(p, (int)n, MPI_CHAR, root, comm, &req));
    CHECK_MPI(L, "broadcast", wait_idle(&req));
  }
  luaL_pushresultsize(&b, (size_t)n);
  count(t0, (double)n);
  return 1;
}

static void bump(mg_Tensor *t) { t->storage->version++; }

/* broadcast(t, root): root's values into every rank's t. */
static int f_broadcast(lua_State *L) {
  need_init(L, "broadcast");
  mg_Tensor *t = check_tensor(L, 1, "broadcast");
  int root = (int)luaL_checkinteger(L, 2);
  int64_t n = capi->numel(t);
  check_count(L, "broadcast", n);
  check_agree(L, "broadcast", n, t->dtype, t, "tensors");
  double t0 = now();
  if (n > 0)
    CHECK_MPI(L, "broadcast", MPI_Bcast(capi->data(t), (int)n, mpi_type(t->dtype), root,
                                        comm));
  count(t0, (double)n * elem_size(t->dtype));
  bump(t);
  lua_settop(L, 1);
  return 1;
}

/* allreduce(t, op): op is "sum", "max" or "min"; t holds the result. */
static int f_allreduce(lua_State *L) {
  static const char *const names[] = {"sum", "max", "min", NULL};
  MPI_Op ops[] = {MPI_SUM, MPI_MAX, MPI_MIN};
  need_init(L, "allreduce");
  mg_Tensor *t = check_tensor(L, 1, "allreduce");
  int op = luaL_checkoption(L, 2, NULL, names);
  int64_t n = capi->numel(t);
  check_count(L, "allreduce", n);
  check_agree(L, "allreduce", n, t->dtype, t, "tensors");
  double t0 = now();
  if (n > 0)
    CHECK_MPI(L, "allreduce", MPI_Allreduce(MPI_IN_PLACE, capi->data(t), (int)n,
                                            mpi_type(t->dtype), ops[op], comm));
  count(t0, (double)n * elem_size(t->dtype));
  bump(t);
  lua_settop(L, 1);
  return 1;
}

/* allgather(t, out): out (size * numel(t) elements, same dtype) gets every
 * rank's t in rank order. */
static int f_allgather(lua_State *L) {
  need_init(L, "allgather");
  mg_Tensor *t = check_tensor(L, 1, "allgather");
  mg_Tensor *out = check_tensor(L, 2, "allgather");
  int64_t n = capi->numel(t);
  check_count(L, "allgather", n);
  check_agree(L, "allgather", n, t->dtype, t, "tensors");
  int size;
  MPI_Comm_size(comm, &size);
  if (out->dtype != t->dtype || capi->numel(out) != n * size)
    raise(L, "dist.allgather: the output must be %s with %I elements, got %s",
               capi->dtype_name(t->dtype), (lua_Integer)(n * size), describe(L, out));
  double t0 = now();
  if (n > 0)
    CHECK_MPI(L, "allgather", MPI_Allgather(capi->data(t), (int)n, mpi_type(t->dtype),
                                            capi->data(out), (int)n, mpi_type(t->dtype),
                                            comm));
  count(t0, (double)n * elem_size(t->dtype) * 2);
  bump(out);
  lua_settop(L, 2);
  return 1;
}

/* ---- gradients in buckets ---------------------------------------------------------- */

/* dst[k] = w * src[k] for n float32 or float64 elements (dst may be src). */
static void scaled_copy(void *dst, const void *src, int64_t n, mg_DType dt, double w) {
  if (dt == MG_F32) {
    float wf = (float)w;
    for (int64_t k = 0; k < n; k++) ((float *)dst)[k] = wf * ((const float *)src)[k];
  } else {
    for (int64_t k = 0; k < n; k++) ((double *)dst)[k] = w * ((const double *)src)[k];
  }
}

/* allreduce_buckets(list, weight, bucket_bytes [, plain]): sums weight * t
 * over the ranks for every tensor in list (all float32 or all float64,
 * contiguous), except the last `plain` ones, which are summed as they are.
 * The tensors are packed into buffers of about bucket_bytes, so a model's
 * hundred small gradients cost a few large messages instead of a hundred
 * latencies. Every rank must pass tensors of the same sizes in the same
 * order (checked once per call, with the total). */
static int f_allreduce_buckets(lua_State *L) {
  need_init(L, "allreduce_buckets");
  luaL_checktype(L, 1, LUA_TTABLE);
  double w = luaL_checknumber(L, 2);
  lua_Integer bucket_bytes = luaL_checkinteger(L, 3);
  int nt = (int)luaL_len(L, 1);
  int plain_from = nt - (int)luaL_optinteger(L, 4, 0);
  if (nt == 0) return 0;
  mg_Tensor **ts = lua_newuserdatauv(L, sizeof *ts * nt, 0);
  int64_t total = 0;
  mg_DType dt = MG_F32;
  for (int i = 0; i < nt; i++) {
    lua_geti(L, 1, i + 1);
    ts[i] = check_tensor(L, -1, "allreduce_buckets");
    if (i == 0) dt = ts[i]->dtype;
    if (ts[i]->dtype != dt || dt == MG_I64)
      raise(L, "dist.allreduce_buckets: tensors must all be float32 or all float64 "
                 "(tensor %d is %s)", i + 1, describe(L, ts[i]));
    total += capi->numel(ts[i]);
    lua_pop(L, 1);
  }
  check_agree(L, "allreduce_buckets", total, dt, ts[0], "gradient lists");
  size_t es = elem_size(dt);
  int64_t cap = bucket_bytes / (lua_Integer)es;
  if (cap < 1) cap = 1;
  if (cap > total) cap = total;
  if ((size_t)cap * es > bucket_bytes_held) {
    char *grown = realloc(bucket_buf, (size_t)cap * es);
    if (!grown)
      return raise(L, "dist.allreduce_buckets: not enough memory for a bucket of %I bytes",
                   (lua_Integer)(cap * (int64_t)es));
    bucket_buf = grown;
    bucket_bytes_held = (size_t)cap * es;
  }
  char *buf = bucket_buf;
  double t0 = now();
  /* Tensors are packed whole when they fit; a tensor larger than a bucket
   * is reduced in place, in slices of the bucket's size. */
  int i = 0;
  while (i < nt) {
    int64_t n0 = capi->numel(ts[i]);
    if (n0 >= cap) {
      char *p = capi->data(ts[i]);
      if (w != 1 && i < plain_from) scaled_copy(p, p, n0, dt, w);
      for (int64_t off = 0; off < n0; off += cap) {
        int64_t len = n0 - off < cap ? n0 - off : cap;
        CHECK_MPI(L, "allreduce_buckets",
                  MPI_Allreduce(MPI_IN_PLACE, p + off * es, (int)len, mpi_type(dt), MPI_SUM,
                                comm));
      }
      bump(ts[i]);
      i++;
      continue;
    }
    int first = i;
    int64_t used = 0;
    while (i < nt && used + capi->numel(ts[i]) <= cap && capi->numel(ts[i]) < cap) {
      int64_t n = capi->numel(ts[i]);
      scaled_copy(buf + used * es, capi->data(ts[i]), n, dt, i < plain_from ? w : 1);
      used += n;
      i++;
    }
    if (used > 0)
      CHECK_MPI(L, "allreduce_buckets",
                MPI_Allreduce(MPI_IN_PLACE, buf, (int)used, mpi_type(dt), MPI_SUM,
                              comm));
    used = 0;
    for (int j = first; j < i; j++) {
      int64_t n = capi->numel(ts[j]);
      memcpy(capi->data(ts[j]), buf + used * es, (size_t)n * es);
      used += n;
      bump(ts[j]);
    }
  }
  count(t0, (double)total * es);
  return 0;
}

/* ---- gradients overlapped with backward -------------------------------------------- */

/* The parameters in buckets, filled from the end of the list (backward
 * produces the last layers' gradients first). During a backward the
 * core's grad hook (mg_set_grad_hook) packs each parameter's gradient,
 * times the weight, as soon as it is complete, and a bucket whose
 * gradients are all in starts its MPI_Iallreduce while backward computes
 * the rest. Buckets start strictly in order, so every rank issues the
 * same collectives in the same order even when its backward differs
 * (a rank with an empty share runs none: its buckets all start in
 * overlap_finish). */
#define MGL_OVERLAP "moongrad.dist.Overlap"

typedef struct {
  int first, count;     /* parameters [first, first + count) of the list */
  int64_t offset;       /* of each bucket's first element in buf */
  int64_t numel;
  int ready;            /* parameters packed so far */
  MPI_Request req;
} Bucket;

typedef struct {
  mg_Context *ctx;
  MPI_Comm comm;        /* the current communicator when made */
  int nparams, nbuckets, next_post, armed;
  mg_DType dtype;
  double weight;
  mg_Tensor **params;   /* borrowed: the DDP object holds the parameters */
  int64_t *offset;      /* each parameter's place in buf */
  uint64_t *version;    /* of each packed gradient's storage, when packed */
  int *bucket_of, *packed, npacked;
  Bucket *buckets;
  char *buf;
} Overlap;

static void overlap_free(Overlap *ov) {
  if (ov->ctx && ov->armed) capi->set_grad_hook(ov->ctx, NULL, NULL);
  ov->armed = 0;
  free(ov->params);
  free(ov->offset);
  free(ov->version);
  free(ov->bucket_of);
  free(ov->packed);
  free(ov->buckets);
  free(ov->buf);
  memset(ov, 0, sizeof *ov);
}

static int overlap_gc(lua_State *L) {
  Overlap *ov = luaL_checkudata(L, 1, MGL_OVERLAP);
  /* Requests still in flight would write into freed memory. */
  for (int b = 0; b < ov->next_post && is_initialized(); b++)
    MPI_Wait(&ov->buckets[b].req, MPI_STATUS_IGNORE);
  overlap_free(ov);
  return 0;
}

static void pack(Overlap *ov, int i, const mg_Tensor *g) {
  int64_t n = capi->numel(ov->params[i]);
  size_t es = elem_size(ov->dtype);
  char *dst = ov->buf + ov->offset[i] * es;
  if (g) scaled_copy(dst, capi->data(g), n, ov->dtype, ov->weight);
  else memset(dst, 0, (size_t)n * es);
  ov->packed[i] = 1;
  ov->npacked++;
  ov->version[i] = g ? g->storage->version : 0;
  ov->buckets[ov->bucket_of[i]].ready++;
}

/* Starts every bucket, in order, from next_post on that is complete. */
static int post_ready(Overlap *ov) {
  int rc = MPI_SUCCESS;
  double t0 = now();
  while (rc == MPI_SUCCESS && ov->next_post < ov->nbuckets) {
    Bucket *b = &ov->buckets[ov->next_post];
    if (b->ready < b->count) break;
    rc = MPI_Iallreduce(MPI_IN_PLACE, ov->buf + b->offset * elem_size(ov->dtype), (int)b->numel,
                        mpi_type(ov->dtype), MPI_SUM, ov->comm, &b->req);
    ov->next_post++;
  }
  /* Open MPI moves messages along only inside MPI calls: a test now and
   * then, from the hook, is what lets the sends overlap backward. */
  if (rc == MPI_SUCCESS && ov->next_post > 0) {
    int done;
    Bucket *last = &ov->buckets[ov->next_post - 1];
    rc = MPI_Test(&last->req, &done, MPI_STATUS_IGNORE);
  }
  stats.seconds += now() - t0;
  return rc;
}

static void grad_ready(void *ud, mg_Tensor *leaf, mg_Tensor *grad) {
  Overlap *ov = ud;
  if (!ov->armed) return;
  for (int i = 0; i < ov->nparams; i++) {
    if (ov->params[i] != leaf) continue;
    if (!ov->packed[i] && grad && grad->dtype == ov->dtype && capi->is_contiguous(grad)) {
      int before = ov->next_post;
      pack(ov, i, grad);
      /* an MPI failure here surfaces in overlap_finish's wait */
      post_ready(ov);
      stats.early += ov->next_post - before;
    }
    return;
  }
}

/* overlap_new(params, bucket_bytes) --> the state, or nil when the
 * parameters are not all of one float dtype (then no overlap). */
static int f_overlap_new(lua_State *L) {
  need_init(L, "DistributedDataParallel");
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_Integer bucket_bytes = luaL_checkinteger(L, 2);
  int n = (int)luaL_len(L, 1);
  Overlap *ov = lua_newuserdatauv(L, sizeof *ov, 0);
  memset(ov, 0, sizeof *ov);
  luaL_setmetatable(L, MGL_OVERLAP);
  if (n == 0) return 0;
  ov->ctx = capi->state_ctx(L);
  ov->comm = comm;
  ov->nparams = n;
  ov->params = calloc((size_t)n, sizeof *ov->params);
  ov->offset = calloc((size_t)n, sizeof *ov->offset);
  ov->version = calloc((size_t)n, sizeof *ov->version);
  ov->bucket_of = calloc((size_t)n, sizeof *ov->bucket_of);
  ov->packed = calloc((size_t)n, sizeof *ov->packed);
  ov->buckets = calloc((size_t)n, sizeof *ov->buckets);
  if (!ov->ctx || !ov->params || !ov->offset || !ov->version || !ov->bucket_of || !ov->packed || !ov->buckets)
    return raise(L, "dist.DistributedDataParallel: not enough memory");
  for (int i = 0; i < n; i++) {
    lua_geti(L, 1, i + 1);
    ov->params[i] = check_tensor(L, -1, "DistributedDataParallel");
    lua_pop(L, 1);
    if (i == 0) ov->dtype = ov->params[0]->dtype;
    if (ov->params[i]->dtype != ov->dtype || ov->dtype == MG_I64) {
      overlap_free(ov);
      return 0;
    }
  }
  size_t es = elem_size(ov->dtype);
  int64_t cap = bucket_bytes / (lua_Integer)es, total = 0;
  /* The first bucket holds at most 1 MiB (as PyTorch's DDP does), so that
   * the last layers' gradients leave early, before the big early layers'
   * are done; with one model-sized bucket nothing could start before the
   * end of backward. */
  int64_t first_cap = ((int64_t)1 << 20) / (int64_t)es;
  if (first_cap > cap) first_cap = cap;
  /* Buckets from the last parameter back: bucket 0 fills first. */
  for (int i = n - 1; i >= 0; i--) {
    int64_t m = capi->numel(ov->params[i]);
    check_count(L, "DistributedDataParallel", m);
    Bucket *b = &ov->buckets[ov->nbuckets ? ov->nbuckets - 1 : 0];
    int64_t limit = ov->nbuckets <= 1 ? first_cap : cap;
    if (ov->nbuckets == 0 || (b->numel > 0 && b->numel + m > limit)) {
      b = &ov->buckets[ov->nbuckets++];
      b->offset = total;
    }
    b->first = i;
    b->count++;
    ov->offset[i] = total;
    ov->bucket_of[i] = (int)(b - ov->buckets);
    b->numel += m;
    total += m;
  }
  ov->buf = malloc((size_t)(total > 0 ? total : 1) * es);
  if (!ov->buf) return raise(L, "dist.DistributedDataParallel: not enough memory for "
                                "%I bytes of gradient buckets", (lua_Integer)(total * (int64_t)es));
  for (int b = 0; b < ov->nbuckets; b++) ov->buckets[b].req = MPI_REQUEST_NULL;
  return 1;
}

/* overlap_arm(state, weight): the next backward's gradients, times weight,
 * start on their way as they complete; weight nil: they do not (no_sync). */
static int f_overlap_arm(lua_State *L) {
  Overlap *ov = luaL_checkudata(L, 1, MGL_OVERLAP);
  if (!ov->params) return raise(L, "dist.DistributedDataParallel: the overlap state is gone");
  if (ov->npacked > 0)
    return raise(L, "ddp: a backward ran since the last ddp:sync_gradients() and its "
                 "gradients are on their way; call ddp:sync_gradients() after each backward "
                 "(or run the backward passes to accumulate inside ddp:no_sync(fn))");
  for (int i = 0; i < ov->nparams; i++) ov->packed[i] = 0;
  for (int b = 0; b < ov->nbuckets; b++) ov->buckets[b].ready = 0;
  ov->armed = !lua_isnoneornil(L, 2);
  ov->weight = ov->armed ? luaL_checknumber(L, 2) : 0;
  capi->set_grad_hook(ov->ctx, ov->armed ? grad_ready : NULL, ov->armed ? ov : NULL);
  return 0;
}

/* overlap_finish(state, grads): packs what the hook did not see (grads[i],
 * zeros standing in for missing ones), starts the remaining buckets, waits
 * for all and writes the sums into grads. */
static int f_overlap_finish(lua_State *L) {
  Overlap *ov = luaL_checkudata(L, 1, MGL_OVERLAP);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!ov->params) return raise(L, "dist.DistributedDataParallel: the overlap state is gone");
  capi->set_grad_hook(ov->ctx, NULL, NULL);
  ov->armed = 0;
  double t0 = now();
  mg_Tensor **gs = lua_newuserdatauv(L, sizeof *gs * (size_t)ov->nparams, 0);
  for (int i = 0; i < ov->nparams; i++) {
    lua_geti(L, 2, i + 1);
    gs[i] = check_tensor(L, -1, "sync_gradients");
    lua_pop(L, 1);
    if (gs[i]->dtype != ov->dtype || capi->numel(gs[i]) != capi->numel(ov->params[i]))
      return raise(L, "dist.sync_gradients: gradient %d is %s, its parameter %s", i + 1,
                   describe(L, gs[i]), describe(L, ov->params[i]));
  }
  int stale = 0;
  for (int i = 0; i < ov->nparams; i++) {
    if (!ov->packed[i]) pack(ov, i, gs[i]);
    else if (gs[i]->storage->version != ov->version[i]) stale = i + 1;
  }
  int rc = post_ready(ov);
  for (int b = 0; b < ov->next_post && rc == MPI_SUCCESS; b++)
    rc = MPI_Wait(&ov->buckets[b].req, MPI_STATUS_IGNORE);
  ov->next_post = 0;
  ov->npacked = 0;
  if (rc != MPI_SUCCESS) return mpi_error(L, "sync_gradients", rc);
  /* Sent, then changed: a second backward (accumulation) or an edit of
   * .grad between backward and sync. The sums would silently miss it. */
  if (stale)
    return raise(L, "ddp:sync_gradients: gradient %d changed after backward had sent it (a "
                 "second backward, or .grad edited before the sync); accumulate over several "
                 "backward passes inside ddp:no_sync(fn), then sync once", stale);
  size_t es = elem_size(ov->dtype);
  for (int i = 0; i < ov->nparams; i++) {
    memcpy(capi->data(gs[i]), ov->buf + ov->offset[i] * es,
           (size_t)capi->numel(gs[i]) * es);
    bump(gs[i]);
  }
  stats.seconds += now() - t0;
  stats.calls += ov->nbuckets;
  for (int b = 0; b < ov->nbuckets; b++) stats.bytes += (double)ov->buckets[b].numel * es;
  return 0;
}

static int f_overlap_buckets(lua_State *L) {
  Overlap *ov = luaL_checkudata(L, 1, MGL_OVERLAP);
  lua_pushinteger(L, ov->nbuckets);
  return 1;
}

/* stats() --> {seconds, bytes, calls} spent in collectives so far, and
 * early_buckets: gradient buckets started while backward was running. */
static int f_stats(lua_State *L) {
  lua_createtable(L, 0, 3);
  lua_pushnumber(L, stats.seconds);
  lua_setfield(L, -2, "seconds");
  lua_pushnumber(L, stats.bytes);
  lua_setfield(L, -2, "bytes");
  lua_pushinteger(L, stats.calls);
  lua_setfield(L, -2, "calls");
  lua_pushinteger(L, stats.early);
  lua_setfield(L, -2, "early_buckets");
  return 1;
}

static int f_reset_stats(lua_State *L) {
  memset(&stats, 0, sizeof stats);
  return 0;
}

/* abort(code): ends every rank (MPI_Abort), for an error on one rank that
 * the others would wait for in vain. */
static int f_abort(lua_State *L) {
  int code = (int)luaL_optinteger(L, 1, 1);
  if (is_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  return 0;
}

/* ---- messages (moongrad.tune over ranks) ---------------------------------------- */

/* Strings between two ranks, for a study on rank 1 that hands trials to
 * the others (moongrad.tune, workers = "mpi"). Point to point, unlike the
 * collectives above: no other rank takes part, and nothing is counted in
 * stats() (that is the training's communication). */

/* A tag in 0..MPI_TAG_UB (at least 32767 everywhere). */
static int check_tag(lua_State *L, const char *fn, int arg) {
  lua_Integer tag = luaL_checkinteger(L, arg);
  int *ub = NULL, flag = 0;
  MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &flag);
  lua_Integer hi = flag && ub ? *ub : 32767;
  if (tag < 0 || tag > hi)
    raise(L, "dist.%s: the tag must be in 0..%I, got %I", fn, hi, tag);
  return (int)tag;
}

/* send(dest, s, tag): the bytes of s to rank dest (0-based). Returns once s
 * may be reused: at once for a short string, when dest receives it for a
 * long one. */
static int f_send(lua_State *L) {
  need_init(L, "send");
  int size;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  lua_Integer dest = luaL_checkinteger(L, 1);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int tag = check_tag(L, "send", 3);
  if (dest < 0 || dest >= size)
    return raise(L, "dist.send: dest must be a rank in 0..%d, got %I", size - 1, dest);
  if (len > 2147483647)
    return raise(L, "dist.send: a string of %I bytes is more than one message carries "
                    "(2^31 - 1)", (lua_Integer)len);
  CHECK_MPI(L, "send", MPI_Send(s, (int)len, MPI_CHAR, (int)dest, tag, MPI_COMM_WORLD));
  return 0;
}

/* probe() --> source, tag of a message waiting from any rank, or nil; never
 * waits (a caller with nothing else to do sleeps between probes, rather
 * than spin in a blocking receive on a core a trial could use). */
static int f_probe(lua_State *L) {
  need_init(L, "probe");
  int flag = 0;
  MPI_Status st;
  CHECK_MPI(L, "probe", MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st));
  if (!flag) {
    lua_pushnil(L);
    return 1;
  }
  lua_pushinteger(L, st.MPI_SOURCE);
  lua_pushinteger(L, st.MPI_TAG);
  return 2;
}

/* recv([source]) --> s, source, tag: the next message from source
 * (0-based), or from any rank when source is nil; waits for it. */
static int f_recv(lua_State *L) {
  need_init(L, "recv");
  int size, from = MPI_ANY_SOURCE;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  if (!lua_isnoneornil(L, 1)) {
    lua_Integer src = luaL_checkinteger(L, 1);
    if (src < 0 || src >= size)
      return raise(L, "dist.recv: source must be a rank in 0..%d or nil, got %I", size - 1, src);
    from = (int)src;
  }
  /* the size first, then exactly the probed message: its source and tag */
  MPI_Status st;
  CHECK_MPI(L, "recv", MPI_Probe(from, MPI_ANY_TAG, MPI_COMM_WORLD, &st));
  int n = 0;
  CHECK_MPI(L, "recv", MPI_Get_count(&st, MPI_CHAR, &n));
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (size_t)n);
  CHECK_MPI(L, "recv", MPI_Recv(p, n, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
                                MPI_STATUS_IGNORE));
  luaL_pushresultsize(&b, (size_t)n);
  lua_pushinteger(L, st.MPI_SOURCE);
  lua_pushinteger(L, st.MPI_TAG);
  return 3;
}

static const luaL_Reg functions[] = {
    {"init", f_init},           {"initialized", f_initialized},
    {"finalize", f_finalize},   {"local_rank_size", f_local},
    {"rank", f_rank},           {"size", f_size},
    {"barrier", f_barrier},     {"broadcast", f_broadcast},
    {"allreduce", f_allreduce}, {"allgather", f_allgather},
    {"allreduce_buckets", f_allreduce_buckets},
    {"stats", f_stats},         {"reset_stats", f_reset_stats},
    {"abort", f_abort},
    {"overlap_new", f_overlap_new}, {"overlap_arm", f_overlap_arm},
    {"overlap_finish", f_overlap_finish}, {"overlap_buckets", f_overlap_buckets},
    {"send", f_send},           {"probe", f_probe},
    {"recv", f_recv},
    {"split", f_split},         {"use", f_use},
    {"broadcast_string", f_broadcast_string},
    {NULL, NULL}};

int luaopen_moongrad_dist_mpi(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, MGL_CAPI_KEY) != LUA_TLIGHTUSERDATA)
    return raise(L, "moongrad.dist_mpi: load moongrad first (require \"moongrad\")");
  const mgl_CAPI *c = lua_touserdata(L, -1);
  if (c->version != MGL_CAPI_VERSION)
    return raise(L, "moongrad.dist_mpi: built for another moongrad core "
                      "(interface %d, the core has %d)", MGL_CAPI_VERSION, c->version);
  capi = c;
  lua_pop(L, 1);
  if (luaL_newmetatable(L, MGL_OVERLAP)) {
    lua_pushcfunction(L, overlap_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, MGL_GROUP)) {
    lua_pushcfunction(L, group_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, functions);
  int major, minor;
  MPI_Get_version(&major, &minor);
  lua_pushfstring(L, "MPI %d.%d", major, minor);
  lua_setfield(L, -2, "mpi_version");
  return 1;
}
