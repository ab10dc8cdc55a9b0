/*
 * lua_fuzz.c — libFuzzer harness for tensor construction, shapes, views,
 * broadcasting and indexing, driven the way a script drives them.
 *
 * The input is decoded into a short Lua program: each statement is one
 * call with fuzzed arguments (shapes with zeros, negatives and huge sizes,
 * nested tables of uneven depth, dtypes right and wrong, dims, index
 * tensors, slices, views and in-place ops on them, broadcasting binary
 * ops) whose result goes into one of 8 slots, so later statements work on
 * views of views. Each statement runs under pcall: a Lua error is the
 * library refusing bad arguments, which is fine; a crash, an ASan or UBSan
 * report or an abort is a finding.
 *
 * One state serves every input (opening the library per input would cost
 * most of the time); each program gets fresh slots and a fixed seed, and a
 * full collection follows it. The state has a 32 MB memory budget, so a huge
 * shape fails as a Lua error rather than exhausting the machine.
 *
 * MG_FUZZ_PRINT=1 prints each decoded program to stderr: a crashing input
 * becomes a Lua script to run under build/moongrad. An input starting with
 * "--lua" is taken as such a program as it is (the regression seeds in
 * fuzz/corpus/lua/crash-*): "local mg, v, pcall = ..." gives it the
 * library, the slot table and pcall.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "moongrad.h"

#ifndef MG_FUZZ_LUA_DIR
#define MG_FUZZ_LUA_DIR "lua"
#endif

#define NSLOTS 8
#define MAX_STATEMENTS 24

/* ---- reading the input --------------------------------------------------- */

typedef struct {
  const uint8_t *p, *end;
} Input;

/* The next byte, or 0 once the input is used up (so every program ends). */
static unsigned byte(Input *in) { return in->p < in->end ? *in->p++ : 0; }
static unsigned pick(Input *in, unsigned n) { return byte(in) % n; }

/* ---- writing the program ------------------------------------------------- */

typedef struct {
  char *s;
  size_t len, cap;
} Buf;

static void put(Buf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (k < 0) abort();
    if ((size_t)k < b->cap - b->len) {
      b->len += (size_t)k;
      return;
    }
    b->cap = b->cap * 2 + (size_t)k + 64;
    b->s = realloc(b->s, b->cap);
    if (!b->s) abort();
  }
}

/* ---- arguments ----------------------------------------------------------- */

/* Integers a caller might pass: the edges of each range the core converts
 * to, and floats and non-numbers where an integer is expected. */
static const char *const odd_ints[] = {
    "0", "-1", "2147483647", "2147483648", "-2147483649", "4294967296",
    "9007199254740993", "math.maxinteger", "math.mininteger", "1e300",
    "0/0", "1/0", "-1/0", "2.5", "-0.0", "'3'", "nil", "true", "{}", "2^62",
    "-(2^63)", "65536", "4097"};
#define N_ODD (sizeof odd_ints / sizeof odd_ints[0])

/* Mostly a small integer (-2..9), sometimes an odd one. */
static void gen_int(Input *in, Buf *b) {
  unsigned c = byte(in);
  if (c < 208) put(b, "%d", (int)(c % 12) - 2);
  else put(b, "%s", odd_ints[c % N_ODD]);
}

/* A dim: mostly -3..4. */
static void gen_dim(Input *in, Buf *b) {
  unsigned c = byte(in);
  if (c < 224) put(b, "%d", (int)(c % 8) - 3);
  else put(b, "%s", odd_ints[c % N_ODD]);
}

static void gen_number(Input *in, Buf *b) {
  static const char *const v[] = {"0", "1", "-1", "0.5", "-2.5", "3",
                                  "0/0", "1/0", "-1/0", "1e308", "-1e-310",
                                  "math.maxinteger", "math.mininteger", "7"};
  put(b, "%s", v[pick(in, sizeof v / sizeof v[0])]);
}

static void gen_dtype(Input *in, Buf *b) {
  static const char *const v[] = {"'float32'", "'float64'", "'int64'",
                                  "'float32'", "'float64'", "'int64'",
                                  "'int32'", "nil", "1", "'float'"};
  put(b, "%s", v[pick(in, sizeof v / sizeof v[0])]);
}

/* A shape: a table of up to 5 sizes (MG_MAXDIM and past it now and then). */
static void gen_shape(Input *in, Buf *b) {
  unsigned c = byte(in);
  unsigned n = c < 240 ? c % 5 : 5 + c % 6;
  put(b, "{");
  for (unsigned i = 0; i < n; i++) {
    if (i) put(b, ",");
    unsigned s = byte(in);
    if (s < 200) put(b, "%u", s % 5);
    else gen_int(in, b);
  }
  put(b, "}");
}

/* A nested table of uneven depth (the tensor constructor's input). */
static void gen_nested(Input *in, Buf *b, int depth) {
  unsigned c = byte(in);
  if (depth > 9 || c % 4 == 0) {
    if (c < 240) gen_number(in, b);
    else put(b, "%s", c & 1 ? "'x'" : "true");
    return;
  }
  unsigned n = (c >> 2) % 4;
  put(b, "{");
  for (unsigned i = 0; i < n; i++) {
    if (i) put(b, ",");
    gen_nested(in, b, depth + 1);
  }
  put(b, "}");
}

/* A slot, read as the operand of a call. */
static void gen_slot(Input *in, Buf *b) { put(b, "v[%u]", 1 + pick(in, NSLOTS)); }

/* An index argument: an int64 tensor, a table of integers or a slot. */
static void gen_index(Input *in, Buf *b) {
  switch (pick(in, 4)) {
  case 0:
  case 1: {
    unsigned n = pick(in, 5), as_tensor = pick(in, 2);
    put(b, as_tensor ? "mg.tensor({" : "{");
    for (unsigned i = 0; i < n; i++) {
      if (i) put(b, ",");
      gen_int(in, b);
    }
    if (as_tensor) put(b, "}%s)", pick(in, 4) ? ", 'int64'" : "");
    else put(b, "}");
    break;
  }
  case 2:
    put(b, "mg.randint(");
    gen_int(in, b);
    put(b, ",");
    gen_int(in, b);
    put(b, ",");
    gen_shape(in, b);
    put(b, ")");
    break;
  default:
    gen_slot(in, b);
  }
}

/* A tensor operand: mostly a slot, sometimes a fresh small tensor. */
static void gen_tensor(Input *in, Buf *b) {
  switch (pick(in, 6)) {
  case 0:
    put(b, "mg.tensor(");
    gen_nested(in, b, 0);
    put(b, ",");
    gen_dtype(in, b);
    put(b, ")");
    break;
  case 1:
    put(b, "mg.arange(");
    gen_int(in, b);
    put(b, ")");
    break;
  default:
    gen_slot(in, b);
  }
}

static void gen_bool(Input *in, Buf *b) { put(b, pick(in, 2) ? "true" : "false"); }

/* ---- statements ---------------------------------------------------------- */

/* Writes the arguments spec describes, comma-separated, one letter each:
 * i integer, d dim, n number, t dtype, s shape, N nested table, T tensor,
 * S slot, x index (tensor or table), b boolean, v tensor or number. */
static void gen_args(Input *in, Buf *b, const char *spec) {
  for (const char *c = spec; *c; c++) {
    if (c != spec) put(b, ",");
    switch (*c) {
    case 'i': gen_int(in, b); break;
    case 'd': gen_dim(in, b); break;
    case 'n': gen_number(in, b); break;
    case 't': gen_dtype(in, b); break;
    case 's': gen_shape(in, b); break;
    case 'N': gen_nested(in, b, 0); break;
    case 'T': gen_tensor(in, b); break;
    case 'S': gen_slot(in, b); break;
    case 'x': gen_index(in, b); break;
    case 'b': gen_bool(in, b); break;
    default: /* 'v' */
      if (pick(in, 4)) gen_tensor(in, b);
      else gen_number(in, b);
    }
  }
}

/* A call: "mg.f(args)" for a function, "T:m(args)" for a method (the
 * receiver a tensor operand), args as gen_args. */
typedef struct {
  const char *name;
  const char *args;
} Call;

static void gen_call(Input *in, Buf *b, const Call *c) {
  if (c->name[0] == ':') gen_tensor(in, b);
  else put(b, "mg.");
  put(b, "%s(", c->name);
  gen_args(in, b, c->args);
  put(b, ")");
}

/* Every call the programs are made of. Binary and unary ops get an
 * in-place twin ("_") a third of the time (see gen_expr). */
static const Call calls[] = {
    /* construction */
    {"tensor", "Nt"}, {"tensor", "N"}, {"zeros", "st"}, {"ones", "ii"},
    {"empty", "st"}, {"rand", "s"}, {"randn", "it"}, {"full", "snt"},
    {"arange", "iiit"}, {"arange", "i"}, {"linspace", "nni"}, {"eye", "ii"},
    {"randperm", "i"}, {"zeros_like", "S"}, {"full_like", "Sn"},
    {"randint", "iist"},
    /* shapes and views */
    {":reshape", "s"}, {":reshape", "ii"}, {":view", "s"}, {":expand", "s"},
    {":flatten", "dd"}, {":transpose", "dd"}, {":t", ""}, {":permute", "ddd"},
    {":permute", "d"}, {":narrow", "dii"}, {":select", "di"}, {":squeeze", ""},
    {":squeeze", "d"}, {":unsqueeze", "d"}, {":contiguous", ""},
    {":clone", ""}, {":to", "t"}, {":long", ""}, {":totable", ""},
    {":item", ""}, {":size", "d"}, {":stride", ""}, {":is_contiguous", ""},
    {":shares_storage", "T"},
    /* indexing */
    {":index_select", "dx"}, {":gather", "dx"}, {":scatter_", "dxv"},
    {":scatter_add", "dxT"}, {":scatter", "dxn"}, {":get", "ii"},
    {":get", "i"}, {":set", "iin"}, {":set", "in"}, {":masked_fill_", "Tn"},
    {":masked_fill", "Tn"}, {"where", "TTT"}, {":clamp", "nn"},
    /* writes */
    {":copy_", "T"}, {":fill_", "n"}, {":zero_", ""},
    /* reductions, joins, products, triangles */
    {":sum", ""}, {":sum", "db"}, {":mean", "db"}, {":prod", "d"},
    {":max", "db"}, {":min", ""}, {":argmax", "d"}, {":argmin", "db"},
    {":var", "db"}, {":std", ""}, {":split", "id"}, {":chunk", "id"},
    {":matmul", "T"}, {":dot", "T"}, {":mv", "T"}, {":bmm", "T"},
    {":tril", "i"}, {":triu", "i"}, {":requires_grad", ""},
};

static const char *const binops[] = {
    "add", "sub", "mul", "div", "pow", "floor_divide", "remainder", "maximum",
    "minimum", "atan2", "eq", "ne", "lt", "ge"};
static const char *const luaops[] = {"+", "-", "*", "/", "^", "//", "%"};
static const char *const unops[] = {"neg", "abs", "sign", "square", "relu",
                                    "floor", "round", "sqrt", "exp", "log",
                                    "tanh", "sigmoid", "reciprocal", "trunc"};
#define COUNT(a) (sizeof a / sizeof a[0])

/* The right-hand side of one statement. */
static void gen_expr(Input *in, Buf *b) {
  switch (pick(in, 10)) {
  case 0: /* broadcasting binary ops, in place a third of the time */
    gen_tensor(in, b);
    put(b, ":%s%s(", binops[pick(in, COUNT(binops))], pick(in, 3) ? "" : "_");
    gen_args(in, b, "v");
    put(b, ")");
    break;
  case 1: /* operators */
    gen_args(in, b, "v");
    put(b, " %s ", luaops[pick(in, COUNT(luaops))]);
    gen_args(in, b, "v");
    break;
  case 2:
    gen_tensor(in, b);
    put(b, ":%s%s()", unops[pick(in, COUNT(unops))], pick(in, 3) ? "" : "_");
    break;
  case 3: /* t[i], t[{i, j, ...}]: an element or a view */
    gen_slot(in, b);
    if (pick(in, 2)) {
      put(b, "[");
      gen_int(in, b);
      put(b, "]");
    } else {
      put(b, "[{");
      gen_args(in, b, &"iiii"[pick(in, 5)]);
      put(b, "}]");
    }
    break;
  case 4: /* joins */
    put(b, "mg.%s({", pick(in, 2) ? "cat" : "stack");
    gen_args(in, b, &"TTT"[pick(in, 4)]);
    put(b, "},");
    gen_dim(in, b);
    put(b, ")");
    break;
  case 5: /* gradients through whatever was built */
    put(b, "(");
    gen_tensor(in, b);
    put(b, "):sum():backward()");
    break;
  case 6:
    put(b, "tostring(");
    gen_tensor(in, b);
    put(b, ")");
    break;
  default:
    gen_call(in, b, &calls[pick(in, COUNT(calls))]);
  }
}

/* Decodes data into a program: "local mg, v = ..." then one pcall'd
 * statement per call, each storing its result in a slot. */
static void decode(const uint8_t *data, size_t size, Buf *b) {
  Input in = {data, data + size};
  put(b, "local mg, v, pcall = ...\nmg.manual_seed(0)\n");
  for (int i = 0; i < MAX_STATEMENTS && in.p < in.end; i++) {
    unsigned k = 1 + pick(&in, NSLOTS);
    if (pick(&in, 8) == 0) { /* t[i] = x, t[{i, j}] = x: fills and copies */
      put(b, "pcall(function() v[%u][{", k);
      gen_args(&in, b, &"iiii"[pick(&in, 5)]);
      put(b, "}] = ");
      gen_args(&in, b, "v");
      put(b, " end)\n");
      continue;
    }
    put(b, "pcall(function() v[%u] = ", k);
    gen_expr(&in, b);
    put(b, " end)\n");
  }
  /* Free this program's tensors and hand their buffers back to libc, so
   * the next input starts from the same memory (and RSS stays flat). */
  put(b, "v = nil\ncollectgarbage()\nmg.empty_cache()\n");
}

/* ---- the harness --------------------------------------------------------- */

static lua_State *L;
static int print_programs;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  char err[256] = "";
  moongrad_Options o = {.memory_budget = 32u << 20, .num_threads = 1,
                        .lua_dir = MG_FUZZ_LUA_DIR, .error = err,
                        .error_size = sizeof err};
  L = moongrad_new(&o);
  if (!L) {
    fprintf(stderr, "lua_fuzz: moongrad_new failed: %s\n", err);
    abort();
  }
  const char *p = getenv("MG_FUZZ_PRINT");
  print_programs = p && *p && strcmp(p, "0") != 0;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Buf b = {malloc(4096), 0, 4096};
  if (!b.s) abort();
  /* An input that starts with "--lua" is a program already: the
   * regression seeds are kept that way, readable and independent of the
   * decoder. */
  int is_lua = size >= 5 && memcmp(data, "--lua", 5) == 0;
  if (is_lua) put(&b, "%.*s\n", (int)size, (const char *)data);
  else decode(data, size, &b);
  if (print_programs) fprintf(stderr, "-- program\n%s", b.s);
  int top = lua_gettop(L);
  if (luaL_loadbuffer(L, b.s, b.len, "=fuzz") != LUA_OK) {
    /* The decoder writes only valid Lua: a syntax error is its bug. A
     * mutated "--lua" program is allowed not to compile. */
    if (is_lua) {
      lua_settop(L, top);
      free(b.s);
      return 0;
    }
    fprintf(stderr, "lua_fuzz: generated program does not compile: %s\n%s",
                    lua_tostring(L, -1), b.s);
    abort();
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad");
  lua_call(L, 1, 1);
  lua_newtable(L);
  lua_getglobal(L, "pcall");
  if (lua_pcall(L, 3, 0, 0) != LUA_OK && print_programs)
    fprintf(stderr, "-- outside a statement: %s\n", lua_tostring(L, -1));
  lua_settop(L, top);
  lua_gc(L, LUA_GCCOLLECT);
  free(b.s);
  return 0;
}
