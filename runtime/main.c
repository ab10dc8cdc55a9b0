/*
 * main.c — the `moongrad` executable: a Lua 5.4 interpreter with the
 * moongrad core built in.
 *
 *   moongrad script.lua args...   run a script (arguments in `arg` and `...`)
 *   moongrad -e 'code'            run code (repeatable, in order)
 *   moongrad -i script.lua        run a script, then the REPL
 *   moongrad                      the REPL (or stdin as a script when it is
 *                                 not a terminal)
 *   moongrad --listen script.lua  let sessions attach to its training
 *   moongrad --attach PID|PATH    a REPL inside such a job (moongrad.attach)
 *
 * Options and the `arg` table behave as in the stock lua5.4 interpreter, so
 * scripts and habits carry over. Everything runs inside one lua_pcall, so
 * that even an out-of-memory error while setting up is reported rather than
 * aborting.
 *
 * `require "moongrad"` works with no environment variable: the C core is
 * registered in package.preload, and the Lua library is found relative to
 * the executable, as for a host program (mgl_preload, api.c).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "lua_bind.h"
#include "mg_core.h"
#include "repl.h"

#define PROGNAME "moongrad" /* prefix of every message we print */

/* What the command line asks for, found by scan_args. */
enum {
  ARGS_BAD = 1,  /* an unknown option or one missing its argument */
  ARGS_E = 2,    /* -e: there is code to run */
  ARGS_I = 4,    /* -i: the REPL after the script */
  ARGS_V = 8,    /* -v: print the version */
  ARGS_H = 16,   /* -h: print the usage */
  ARGS_NOENV = 32, /* -E: ignore LUA_PATH and LUA_CPATH */
  ARGS_LISTEN = 64 /* --listen[=PATH]: accept attached sessions */
};

static void print_usage(FILE *out) {
  fputs("usage: " PROGNAME " [options] [script [args]]\n"
        "Options:\n"
        "  -e code     run the Lua code (may be repeated; runs in order)\n"
        "  -i          enter the REPL after running the script\n"
        "  -l mod      require 'mod' into a global (the last part of a dotted\n"
        "              name: -l moongrad.nn sets nn); -l g=mod sets global g\n"
        "  -W          turn warnings on\n"
        "  -E          ignore LUA_PATH and LUA_CPATH\n"
        "  -v, --version  print the version\n"
        "  -h, --help     print this text\n"
        "  --          stop handling options\n"
        "  --listen[=PATH] let `" PROGNAME " --attach` sessions into the script's\n"
        "              training (train.fit) between batches, over an owner-only\n"
        "              Unix socket (default: $XDG_RUNTIME_DIR/moongrad/PID.sock)\n"
        "  --attach PID|PATH  a REPL inside a job started with --listen\n"
        "  --kernel FILE   serve as a Jupyter kernel on the connection FILE\n"
        "  --install-kernel [--user | --prefix DIR]\n"
        "              write the Jupyter kernelspec (default: /usr/local)\n"
        "  -           run stdin as the script and stop handling options\n"
        "With no script and no -e or -v, " PROGNAME " opens a REPL when stdin\n"
        "is a terminal (the global `mg` holds require \"moongrad\") and runs\n"
        "stdin as a script otherwise. The REPL keeps history in the file\n"
        "$MOONGRAD_HISTORY, by default ~/.moongrad_history.\n",
        out);
  fflush(out);
}

static void print_version(void) {
  printf(PROGNAME " %s (%s)\n", MG_VERSION, LUA_RELEASE);
  fflush(stdout);
}

/* Reads the options (up to the script name). Returns the ARGS_ flags and
 * sets *script to the script's index in argv, or 0 when there is none; with
 * ARGS_BAD, *script is instead the index of the offending option. */
static int scan_args(char **argv, int *script) {
  int flags = 0, i;
  for (i = 1; argv[i] != NULL; i++) {
    const char *a = argv[i];
    *script = i;
    if (a[0] != '-') return flags;            /* the script */
    if (strcmp(a, "--version") == 0) {
      flags |= ARGS_V;
      continue;
    }
    if (strcmp(a, "--help") == 0) {
      flags |= ARGS_H;
      continue;
    }
    if (strncmp(a, "--listen", 8) == 0 && (a[8] == '\0' || (a[8] == '=' && a[9] != '\0'))) {
      flags |= ARGS_LISTEN;
      continue;
    }
    switch (a[1]) {
      case '\0': return flags;                /* "-": stdin is the script */
      case '-':
        if (a[2] != '\0') return flags | ARGS_BAD;
        *script = argv[i + 1] != NULL ? i + 1 : 0;
        return flags;
      case 'i':
        if (a[2] != '\0') return flags | ARGS_BAD;
        flags |= ARGS_I;
        break;
      case 'v':
        if (a[2] != '\0') return flags | ARGS_BAD;
        flags |= ARGS_V;
        break;
      case 'h':
        if (a[2] != '\0') return flags | ARGS_BAD;
        flags |= ARGS_H;
        break;
      case 'W':
        if (a[2] != '\0') return flags | ARGS_BAD;
        break;
      case 'E':
        if (a[2] != '\0') return flags | ARGS_BAD;
        flags |= ARGS_NOENV;
        break;
      case 'e':
      case 'l': /* both take an argument, attached or next */
        if (a[1] == 'e') flags |= ARGS_E;
        if (a[2] == '\0' && argv[++i] == NULL) return flags | ARGS_BAD;
        break;
      default:
        return flags | ARGS_BAD;
    }
  }
  *script = 0;
  return flags;
}

static void report_bad_option(char **argv, int bad) {
  const char *opt = argv[bad];
  if ((opt[1] == 'e' || opt[1] == 'l') && opt[2] == '\0')
    fprintf(stderr, PROGNAME ": '%s' needs an argument\n", opt);
  else
    fprintf(stderr, PROGNAME ": unrecognized option '%s'\n", opt);
  print_usage(stderr);
}

/* Builds the global `arg` as lua5.4 does: the script at 0, its arguments
 * at 1.., and the interpreter and its options at negative indices. With
 * no script, the interpreter itself is at 0. */
static void create_arg_table(lua_State *L, char **argv, int argc, int script) {
  int i;
  lua_createtable(L, argc - script - 1 > 0 ? argc - script - 1 : 0, script + 1);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - script);
  }
  lua_setglobal(L, "arg");
}

/* Runs the function on top of the stack with no arguments and reports an
 * error. Returns whether it succeeded. */
static int run_chunk(lua_State *L, int status) {
  if (status == LUA_OK) status = mg_repl_docall(L, 0, 0);
  return mg_repl_report(L, status, PROGNAME) == LUA_OK;
}

static int run_string(lua_State *L, const char *code) {
  return run_chunk(L, luaL_loadbuffer(L, code, strlen(code), "=(command line)"));
}

/* -l mod or -l g=mod: global = require(mod). */
static int run_library(lua_State *L, const char *spec) {
  const char *eq = strchr(spec, '=');
  const char *mod = eq ? eq + 1 : spec;
  const char *dot = strrchr(mod, '.');
  int status;
  if (eq) lua_pushlstring(L, spec, (size_t)(eq - spec));
  else lua_pushstring(L, dot ? dot + 1 : mod);
  lua_getglobal(L, "require");
  lua_pushstring(L, mod);
  status = mg_repl_docall(L, 1, 1);
  if (status != LUA_OK) {
    lua_remove(L, -2); /* the global's name */
    return mg_repl_report(L, status, PROGNAME) == LUA_OK;
  }
  lua_setglobal(L, lua_tostring(L, -2));
  lua_pop(L, 1);
  return 1;
}

/* Runs -e, -l and -W in command-line order, up to the script. */
static int run_options(lua_State *L, char **argv, int end) {
  int i;
  for (i = 1; i < end; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || (a[1] != 'e' && a[1] != 'l' && a[1] != 'W')) continue;
    if (a[1] == 'W') {
      lua_warning(L, "@on", 0);
      continue;
    }
    if (a[2] == '\0') i++;
    if (!(a[1] == 'e' ? run_string(L, a[2] ? a + 2 : argv[i])
                      : run_library(L, a[2] ? a + 2 : argv[i])))
      return 0;
  }
  return 1;
}

/* Runs the script at argv[script] ("-" is stdin, unless it came after
 * "--") with arg[1..] as its `...`. */
static int run_script(lua_State *L, char **argv, int script) {
  const char *fname = argv[script];
  int status, n, i;
  if (strcmp(fname, "-") == 0 && strcmp(argv[script - 1], "--") != 0)
    fname = NULL;
  status = luaL_loadfile(L, fname);
  if (status != LUA_OK) return mg_repl_report(L, status, PROGNAME) == LUA_OK;
  if (lua_getglobal(L, "arg") != LUA_TTABLE)
    luaL_error(L, "'arg' is not a table");
  n = (int)luaL_len(L, -1);
  luaL_checkstack(L, n + 3, "too many arguments to script");
  for (i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
  lua_remove(L, -i); /* the arg table */
  status = mg_repl_docall(L, n, 0);
  return mg_repl_report(L, status, PROGNAME) == LUA_OK;
}

/* ---- Jupyter ----------------------------------------------------------------
 * moongrad.jupyter (Lua) serves the protocol; from here it gets the REPL's
 * way of running a chunk and its completion candidates. */

/* run(fn) -> true, values... | false, message: fn called as a REPL chunk
 * (traceback, SIGINT stops it). */
static int kernel_run(lua_State *L) {
  int status = mg_repl_docall(L, lua_gettop(L) - 1, LUA_MULTRET);
  lua_pushboolean(L, status == LUA_OK);
  lua_insert(L, 1);
  return lua_gettop(L);
}

/* SIGINT between cells (a notebook's interrupt with nothing running) must
 * not end the kernel; a cell's own run installs the REPL's handler. */
static void ignore_interrupt(int sig) { (void)sig; }

/* --kernel FILE, or --install-kernel [--user | --prefix DIR]. */
static int run_jupyter(lua_State *L, char **argv) {
  int install = strcmp(argv[1], "--install-kernel") == 0;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.jupyter");
  lua_call(L, 1, 1);
  if (install) {
    const char *where = argv[2] == NULL ? "system"
                        : strcmp(argv[2], "--user") == 0 && argv[3] == NULL ? "user"
                        : strcmp(argv[2], "--prefix") == 0 && argv[3] != NULL &&
                                  argv[4] == NULL ? "prefix" : NULL;
    if (where == NULL) {
      fprintf(stderr, PROGNAME ": usage: " PROGNAME " --install-kernel [--user | --prefix DIR]\n");
      return 0;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) luaL_error(L, "--install-kernel: cannot find this executable's path");
    exe[n] = '\0';
    lua_getfield(L, -1, "install_kernelspec");
    lua_pushstring(L, exe);
    lua_pushstring(L, where);
    lua_pushstring(L, argv[3]);
    lua_call(L, 3, 1);
    printf("installed the moongrad kernelspec in %s\n", lua_tostring(L, -1));
    fflush(stdout);
    return 1;
  }
  if (argv[2] == NULL || argv[3] != NULL) {
    fprintf(stderr, PROGNAME ": usage: " PROGNAME " --kernel CONNECTION_FILE\n");
    return 0;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = ignore_interrupt; /* no SA_RESTART: the poll sees EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  lua_getfield(L, -1, "main");
  lua_pushstring(L, argv[2]);
  lua_createtable(L, 0, 2);
  lua_pushcfunction(L, kernel_run);
  lua_setfield(L, -2, "run");
  lua_pushcfunction(L, mgl_candidates);
  lua_setfield(L, -2, "candidates");
  lua_call(L, 2, 0);
  return 1;
}

/* ---- attach ----------------------------------------------------------------
 * moongrad.attach (Lua) holds both ends; here are the command line's. */

/* --listen[=PATH] (the last one given): the job's listener, before any
 * code runs. Prints where it listens on stderr. */
static int start_listening(lua_State *L, char **argv, int end) {
  const char *path = NULL;
  int i;
  for (i = 1; i < end; i++)
    if (strncmp(argv[i], "--listen", 8) == 0) path = argv[i][8] == '=' ? argv[i] + 9 : NULL;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.attach");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "listen");
  if (path) lua_pushstring(L, path);
  else lua_pushnil(L);
  int status = lua_pcall(L, 1, 1, 0); /* its errors name the path: no traceback */
  if (status != LUA_OK) {
    lua_remove(L, -2);
    return mg_repl_report(L, status, PROGNAME) == LUA_OK;
  }
  lua_getfield(L, -1, "path");
  fprintf(stderr, PROGNAME ": listening on %s (" PROGNAME " --attach %ld)\n",
          lua_tostring(L, -1), (long)getpid());
  fflush(stderr);
  lua_pop(L, 3);
  return 1;
}

/* --attach PID|PATH: the REPL, its chunks run in the job. */
static int run_attach(lua_State *L, char **argv) {
  if (argv[2] == NULL || argv[3] != NULL) {
    fprintf(stderr, PROGNAME ": usage: " PROGNAME " --attach PID|PATH\n");
    return 0;
  }
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.attach");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "_terminal");
  lua_pushstring(L, argv[2]);
  int status = lua_pcall(L, 1, 1, 0); /* its errors say what to do: no traceback */
  if (status != LUA_OK) return mg_repl_report(L, status, PROGNAME) == LUA_OK;
  mg_repl_run_remote(L, -1);
  lua_getfield(L, -1, "close");
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  return 1;
}

/* The whole program, run under lua_pcall. Returns (pushes) true on
 * success. */
static int protected_main(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  int script = 0;
  int flags = scan_args(argv, &script);
  luaL_checkversion(L);
  /* Modes that take the whole command line: the kernel and attaching. */
  int attach = argv[1] != NULL && strcmp(argv[1], "--attach") == 0;
  if (attach || (argv[1] != NULL && (strcmp(argv[1], "--kernel") == 0 ||
                                     strcmp(argv[1], "--install-kernel") == 0))) {
    luaL_openlibs(L);
    mgl_preload(L);
    lua_gc(L, LUA_GCRESTART);
    if (!(attach ? run_attach(L, argv) : run_jupyter(L, argv))) return 0;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (flags & ARGS_BAD) {
    report_bad_option(argv, script);
    return 0;
  }
  if (flags & ARGS_H) {
    print_usage(stdout);
    lua_pushboolean(L, 1);
    return 1;
  }
  if (flags & ARGS_V) print_version();
  if (flags & ARGS_NOENV) { /* the package library reads this flag */
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "LUA_NOENV");
  }
  luaL_openlibs(L);
  mgl_preload(L); /* require "moongrad" finds the built-in core and its library */
  create_arg_table(L, argv, argc, script);
  lua_gc(L, LUA_GCRESTART);
  if ((flags & ARGS_LISTEN) && !start_listening(L, argv, script > 0 ? script : argc))
    return 0;
  if (!run_options(L, argv, script > 0 ? script : argc)) return 0;
  if (script > 0 && !run_script(L, argv, script)) return 0;
  if (flags & ARGS_I) {
    mg_repl_run(L);
  } else if (script == 0 && !(flags & (ARGS_E | ARGS_V))) {
    if (isatty(fileno(stdin))) mg_repl_run(L);
    else if (!run_chunk(L, luaL_loadfile(L, NULL))) return 0;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* OpenBLAS chose its kernels when it loaded. If it fell back to generic
 * ones on a CPU it does not know, start again with the right set named
 * (blas_core.c). An OPENBLAS_CORETYPE the user set, even to "", stands; a
 * failed exec carries on with the kernels there are. */
static void restart_for_blas(char **argv) {
  const char *core;
  if (getenv("OPENBLAS_CORETYPE") || !(core = mg_blas_core_for_cpu())) return;
  if (setenv("OPENBLAS_CORETYPE", core, 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");
}

int main(int argc, char **argv) {
  int status, ok;
  restart_for_blas(argv);
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fputs(PROGNAME ": cannot create a Lua state: not enough memory\n", stderr);
    return EXIT_FAILURE;
  }
  lua_gc(L, LUA_GCSTOP); /* no collections while setting up */
  lua_pushcfunction(L, protected_main);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 0);
  ok = lua_toboolean(L, -1);
  mg_repl_report(L, status, PROGNAME);
  lua_close(L);
  return ok && status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
