/*
 * repl.c — protected calls with tracebacks and Ctrl-C, and the REPL.
 *
 * The skeleton follows Lua's own lua.c: every chunk runs under lua_pcall
 * with a message handler that adds a traceback, and SIGINT sets a debug
 * hook that raises "interrupted!" at the next Lua instruction, because a
 * signal handler may not touch a Lua state in any other way.
 *
 * Line editing is GNU readline, driven through its callback interface from
 * our own pselect loop: that is what lets Ctrl-C at the prompt throw away
 * the line (and any unfinished multi-line chunk) cleanly, without longjmp
 * out of readline and without readline's own signal handling killing the
 * process.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include <lauxlib.h>
#include <lua.h>

#include "lua_bind.h"
#include "mg_core.h"
#include "repl.h"

#define PROMPT "> "
#define PROMPT_MORE ">> "
#define CHUNK_NAME "=stdin"
#define HISTORY_MAX 1000 /* entries kept in memory and in the file */

/* Characters that end a word for completion. '.' and ':' are among them so
 * that readline hands us only the last name ("ra" in "mg.ra"); the
 * expression before it is read from rl_line_buffer. */
#define WORD_BREAKS " \t\n\"\\'`@$><=;|&{(,)}[].:+-*/%^~#"

/* Results of read_chunk besides a lua_load status. */
enum { CHUNK_EOF = -1, CHUNK_SKIP = -2 };

/* ---- signals ------------------------------------------------------------
 * A signal handler receives no user data, so the state a Ctrl-C must stop
 * and the "Ctrl-C at the prompt" flags are the only statics here. */

static lua_State *volatile running_state;  /* the state mg_repl_docall runs */
static volatile sig_atomic_t prompt_sigint;   /* Ctrl-C while reading a line */
static volatile sig_atomic_t prompt_sigwinch; /* terminal resized meanwhile */
static pthread_t prompt_thread;               /* the thread in pselect */

static void set_handler(int sig, void (*fn)(int), struct sigaction *old) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: reads must see EINTR */
  sigaction(sig, &sa, old);
}

static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  luaL_error(L, "interrupted!");
}

/* Setting a hook is the one thing a handler may do to a running state
 * (lua_sethook is signal-safe by design). The default action comes back so
 * that a second Ctrl-C stops a chunk stuck in a long C call. */
static void on_sigint_running(int sig) {
  int mask = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  set_handler(sig, SIG_DFL, NULL);
  lua_sethook(running_state, stop_hook, mask, 1);
}

/* The terminal's signals go to the whole process, and while the reading
 * thread blocks them (between the flag test and pselect) the kernel hands
 * them to any other thread that does not, such as an OpenMP worker. Setting
 * the flag there would not wake pselect, so the signal is passed on to the
 * reading thread, where it waits, blocked, until pselect lets it in. */
static int forwarded(int sig) {
  if (pthread_equal(pthread_self(), prompt_thread)) return 0;
  pthread_kill(prompt_thread, sig);
  return 1;
}

static void on_sigint_prompt(int sig) {
  if (!forwarded(sig)) prompt_sigint = 1;
}

static void on_sigwinch_prompt(int sig) {
  if (!forwarded(sig)) prompt_sigwinch = 1;
}

/* ---- running chunks ------------------------------------------------------ */

/* Turns any error value into a message string with a traceback. A value
 * with __tostring is shown through it, without a traceback (it is probably
 * a structured error object that formats itself). */
static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)",
                          luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int mg_repl_docall(lua_State *L, int narg, int nres) {
  struct sigaction old;
  int base = lua_gettop(L) - narg; /* where the function is */
  int status;
  lua_pushcfunction(L, message_handler);
  lua_insert(L, base);
  running_state = L;
  set_handler(SIGINT, on_sigint_running, &old);
  status = lua_pcall(L, narg, nres, base);
  sigaction(SIGINT, &old, NULL);
  /* A Ctrl-C that came after the chunk's last instruction must not stop the
   * next one; a hook the user set with debug.sethook stays. */
  if (lua_gethook(L) == stop_hook) lua_sethook(L, NULL, 0, 0);
  lua_remove(L, base);
  return status;
}

int mg_repl_report(lua_State *L, int status, const char *progname) {
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL) msg = "(error object is not a string)";
    if (progname != NULL) fprintf(stderr, "%s: ", progname);
    fprintf(stderr, "%s\n", msg);
    fflush(stderr);
    lua_pop(L, 1);
  }
  return status;
}

/* ---- history --------------------------------------------------------------
 * Entries are appended to the file as they are entered, so a crashed or
 * killed session keeps its history and two sessions do not overwrite each
 * other. Timestamp lines delimit entries, which lets a multi-line chunk come
 * back as one entry. */

typedef struct {
  int tty;            /* stdin is a terminal: readline, banner, history */
  char *history_file; /* malloc'd path, or NULL for no persistent history */
} Repl;

static char *history_file_name(void) {
  const char *env = getenv("MOONGRAD_HISTORY");
  const char *home = getenv("HOME");
  char *path;
  size_t len;
  if (env != NULL) return *env ? strdup(env) : NULL;
  if (home == NULL || *home == '\0') return NULL;
  len = strlen(home) + sizeof "/.moongrad_history";
  path = malloc(len);
  if (path != NULL) snprintf(path, len, "%s/.moongrad_history", home);
  return path;
}

static void history_open(Repl *r) {
  history_comment_char = '#';
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  using_history();
  stifle_history(HISTORY_MAX);
  r->history_file = history_file_name();
  if (r->history_file == NULL) return;
  if (read_history(r->history_file) != 0) {
    /* append_history needs an existing file; create it now, or give up on
     * persistence (an unwritable directory is not worth an error). */
    if (write_history(r->history_file) != 0) {
      free(r->history_file);
      r->history_file = NULL;
    }
  } else if (history_length >= HISTORY_MAX) {
    write_history(r->history_file); /* compact: drop what stifling dropped */
  }
}

static int is_blank(const char *s) {
  while (*s && isspace((unsigned char)*s)) s++;
  return *s == '\0';
}

static void history_add(Repl *r, const char *chunk) {
  HIST_ENTRY *last;
  if (!r->tty || is_blank(chunk)) return;
  last = history_length > 0 ? history_get(history_base + history_length - 1)
                            : NULL;
  if (last != NULL && strcmp(last->line, chunk) == 0) return;
  add_history(chunk);
  if (r->history_file != NULL) append_history(1, r->history_file);
}

/* ---- reading lines --------------------------------------------------------- */

static char *line_read;  /* what readline's callback handed over */
static int line_done;    /* the callback has run (line or EOF) */

static void on_line(char *line) {
  line_read = line;
  line_done = 1;
  /* Removing the handler here keeps readline from printing a fresh prompt
   * before we have run the line. */
  rl_callback_handler_remove();
}

/* Ctrl-C at the prompt: show it, forget the line, leave the terminal as
 * readline found it. */
static void abandon_line(void) {
  rl_point = rl_end; /* "^C" goes after the text, as a shell shows it */
  rl_redisplay();
  /* Before the handler goes: leaving bracketed-paste mode writes a "\r". */
  fputs("^C", rl_outstream);
  fflush(rl_outstream);
  rl_free_line_state();
  rl_callback_sigcleanup();
  rl_callback_handler_remove(); /* restores the terminal's modes */
  fputc('\n', rl_outstream);
  fflush(rl_outstream);
}

/* Reads one line with readline. Returns a malloc'd line, or NULL at end of
 * input (*interrupted = 0) or after Ctrl-C (*interrupted = 1). SIGINT and
 * SIGWINCH are blocked except inside pselect, so a signal can never slip in
 * between the flag test and the wait. */
static char *read_tty_line(const char *prompt, int *interrupted) {
  sigset_t block, saved;
  int fd = fileno(stdin);
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGWINCH);
  sigprocmask(SIG_BLOCK, &block, &saved);
  line_read = NULL;
  line_done = 0;
  prompt_sigint = 0;
  rl_callback_handler_install(prompt, on_line);
  while (!line_done) {
    fd_set fds;
    int n;
    if (prompt_sigint) {
      abandon_line();
      *interrupted = 1;
      break;
    }
    if (prompt_sigwinch) {
      prompt_sigwinch = 0;
      rl_resize_terminal();
    }
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    n = pselect(fd + 1, &fds, NULL, NULL, NULL, &saved);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) { /* stdin is gone: treat as end of input */
      rl_callback_handler_remove();
      break;
    }
    rl_callback_read_char();
  }
  sigprocmask(SIG_SETMASK, &saved, NULL);
  return line_read;
}

/* Reads one line without prompt or editing (stdin is a pipe or file). */
static char *read_plain_line(void) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, stdin);
  if (n < 0) {
    free(line);
    return NULL;
  }
  if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
  return line;
}

static char *read_line(Repl *r, const char *prompt, int *interrupted) {
  *interrupted = 0;
  return r->tty ? read_tty_line(prompt, interrupted) : read_plain_line();
}

/* ---- reading chunks ------------------------------------------------------ */

/* A syntax error at <eof> means the chunk is unfinished, not wrong. */
static int is_incomplete(lua_State *L, int status) {
  static const char mark[] = "<eof>";
  size_t len, mlen = sizeof mark - 1;
  const char *msg;
  if (status != LUA_ERRSYNTAX) return 0;
  msg = lua_tolstring(L, -1, &len);
  return msg != NULL && len >= mlen && strcmp(msg + len - mlen, mark) == 0;
}

/* Tries the line as an expression ("=expr" is the old spelling of it).
 * On success pushes the compiled function and returns 1; otherwise leaves
 * the stack as it was. [-0, +(0|1), m] */
static int load_as_expression(lua_State *L, const char *line) {
  size_t len;
  const char *code = lua_pushfstring(L, "return %s;",
                                     line[0] == '=' ? line + 1 : line);
  code = lua_tolstring(L, -1, &len);
  if (luaL_loadbuffer(L, code, len, CHUNK_NAME) == LUA_OK) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 2);
  return 0;
}

/* Reads a whole chunk, asking for more lines while it is incomplete, and
 * compiles it. Returns the load status with the chunk's source and then
 * the function or the error message pushed, CHUNK_EOF at end of input, or
 * CHUNK_SKIP (nothing pushed) after Ctrl-C. End of input in mid-chunk
 * reports the chunk's syntax error. [-0, +(0|2), m] */
static int read_chunk(lua_State *L, Repl *r) {
  int interrupted, status;
  char *line = read_line(r, PROMPT, &interrupted);
  if (line == NULL) return interrupted ? CHUNK_SKIP : CHUNK_EOF;
  lua_pushstring(L, line);
  if (load_as_expression(L, line)) {
    history_add(r, line);
    free(line);
    return LUA_OK;
  }
  free(line);
  for (;;) { /* the source so far is on top */
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    status = luaL_loadbuffer(L, src, len, CHUNK_NAME);
    if (!is_incomplete(L, status)) break;
    line = read_line(r, PROMPT_MORE, &interrupted);
    if (line == NULL && interrupted) {
      lua_pop(L, 2);
      return CHUNK_SKIP;
    }
    if (line == NULL) break; /* report the incomplete chunk */
    lua_pop(L, 1);           /* the "<eof>" message */
    lua_pushliteral(L, "\n");
    lua_pushstring(L, line);
    free(line);
    lua_concat(L, 3);
  }
  history_add(r, lua_tostring(L, -2));
  return status;
}

/* Pushes the REPL's printer, moongrad.repl's print (plain tables shown as
 * {2, 3} rather than an address), or the global print if that module
 * cannot be loaded. */
static void push_printer(lua_State *L) {
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad.repl");
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1) &&
      lua_getfield(L, -1, "print") == LUA_TFUNCTION) {
    lua_replace(L, top + 1);
  } else {
    lua_getglobal(L, "print");
    lua_replace(L, top + 1);
  }
  lua_settop(L, top + 1);
}

/* Prints the values left on the stack, one line per REPL input. */
static void print_results(lua_State *L) {
  int n = lua_gettop(L);
  if (n == 0) return;
  if (!lua_checkstack(L, LUA_MINSTACK)) {
    fputs("too many results to print\n", stderr);
    return;
  }
  push_printer(L);
  lua_insert(L, 1);
  if (mg_repl_docall(L, n, 0) != LUA_OK) {
    lua_pushfstring(L, "error calling 'print' (%s)", lua_tostring(L, -1));
    lua_remove(L, -2);
    mg_repl_report(L, LUA_ERRRUN, NULL);
  }
}

/* ---- tab completion -------------------------------------------------------
 * readline's generator interface takes no user data, so the state being
 * completed and the current candidates are statics, valid during one
 * completion request. */

static lua_State *completion_state;
static int remote_complete = LUA_NOREF; /* a remote session's completer */
static struct {
  char **names; /* candidates, malloc'd */
  size_t n, cap, next;
} cands;

static int is_name_char(int c) { return isalnum(c) || c == '_'; }

static void cands_clear(void) {
  size_t i;
  for (i = cands.next; i < cands.n; i++) free(cands.names[i]);
  free(cands.names);
  memset(&cands, 0, sizeof cands);
}

static int cands_add(const char *name) {
  if (cands.n == cands.cap) {
    size_t cap = cands.cap ? 2 * cands.cap : 64;
    char **p = realloc(cands.names, cap * sizeof *p);
    if (p == NULL) return 0;
    cands.names = p;
    cands.cap = cap;
  }
  cands.names[cands.n] = strdup(name);
  if (cands.names[cands.n] == NULL) return 0;
  cands.n++;
  return 1;
}

/* readline's generator: hands over one candidate per call (ownership
 * passes to readline). */
static char *next_candidate(const char *text, int state) {
  (void)text;
  (void)state;
  if (cands.next >= cands.n) return NULL;
  return cands.names[cands.next++];
}

/* Whether position end of s is inside a string literal or a comment, where
 * names mean nothing. Long brackets are not tracked. */
static int in_string_or_comment(const char *s, int end) {
  char quote = 0;
  int i;
  for (i = 0; i < end; i++) {
    char c = s[i];
    if (quote) {
      if (c == '\\') i++;
      else if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '-' && i + 1 < end && s[i + 1] == '-') {
      return 1;
    }
  }
  return quote != 0;
}

/* Finds the dotted expression before the separator at sep_pos ("mg.nn" in
 * "x = mg.nn.Lin"): copies it to a new string, or returns NULL when what
 * precedes is not a plain chain of names (a call, an index, a number). */
static char *expression_before(const char *buf, int sep_pos) {
  int j = sep_pos, k;
  char *expr;
  while (j > 0 && (is_name_char((unsigned char)buf[j - 1]) || buf[j - 1] == '.'))
    j--;
  if (j == sep_pos || buf[j] == '.' || buf[sep_pos - 1] == '.' ||
      isdigit((unsigned char)buf[j]))
    return NULL;
  if (j > 0 && strchr(".:)]}\"'", buf[j - 1]) != NULL) return NULL;
  for (k = j; k + 1 < sep_pos; k++)
    if (buf[k] == '.' && (buf[k + 1] == '.' || isdigit((unsigned char)buf[k + 1])))
      return NULL;
  expr = malloc((size_t)(sep_pos - j) + 1);
  if (expr == NULL) return NULL;
  memcpy(expr, buf + j, (size_t)(sep_pos - j));
  expr[sep_pos - j] = '\0';
  return expr;
}

/* Pushes what lists the candidates: mgl_candidates on the REPL's own
 * state, or the attached session's complete(expr, sep, prefix). */
static void push_completer(lua_State *L) {
  if (remote_complete != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, remote_complete);
  else lua_pushcfunction(L, mgl_candidates);
}

/* rl_attempted_completion_function: text is the name being typed (readline
 * split at WORD_BREAKS), start its position in rl_line_buffer. */
static char **attempt_completion(const char *text, int start, int end) {
  lua_State *L = completion_state;
  const char *buf = rl_line_buffer;
  char sep = start > 0 ? buf[start - 1] : 0;
  char *expr = NULL;
  int top = lua_gettop(L), single_kind = 0;
  char **matches = NULL;
  (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  /* Only at the end of a name: not inside a word, a string or a number. */
  if (is_name_char((unsigned char)buf[rl_point]) ||
      in_string_or_comment(buf, start) || (*text && !mgl_is_name(text)))
    return NULL;
  if (sep == '.' && start >= 2 && buf[start - 2] == '.') sep = 0; /* a..b */
  if (sep == '.' || sep == ':') {
    expr = expression_before(buf, start - 1);
    if (expr == NULL) return NULL;
  }
  push_completer(L);
  if (expr) lua_pushstring(L, expr);
  else lua_pushnil(L);
  lua_pushlstring(L, &sep, sep ? 1 : 0);
  lua_pushstring(L, text);
  free(expr);
  cands_clear();
  if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (cands_add(lua_tostring(L, -2)))
        single_kind = *lua_tostring(L, -1);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
  if (cands.n == 0) return NULL;
  /* One match: a function gets "(", a keyword a space, anything else
   * nothing, so that "." or ":" can follow. */
  rl_completion_append_character =
      cands.n > 1 ? ' ' : single_kind == 'f' ? '(' : single_kind == 'k' ? ' ' : '\0';
  matches = rl_completion_matches(text, next_candidate);
  cands_clear();
  return matches;
}

/* ---- the loop -------------------------------------------------------------- */

/* With mg at the top of the stack: sets the global help to mg.help (as in
 * Python's REPL) unless a script took the name. */
static void preload_help(lua_State *L) {
  if (lua_getglobal(L, "help") == LUA_TNIL && lua_istable(L, -2)) {
    lua_getfield(L, -2, "help");
    lua_setglobal(L, "help");
  }
  lua_pop(L, 1);
}

/* Sets the global mg to require "moongrad" unless a script already set it,
 * and help to mg.help. Returns whether mg is now there. */
static int preload_mg(lua_State *L) {
  int status;
  if (lua_getglobal(L, "mg") != LUA_TNIL) {
    preload_help(L);
    lua_pop(L, 1);
    return 1;
  }
  lua_pop(L, 1);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "moongrad");
  status = mg_repl_docall(L, 1, 1);
  if (status != LUA_OK) {
    lua_pushfstring(L, "could not load the moongrad library: %s",
                    lua_tostring(L, -1));
    lua_remove(L, -2);
    mg_repl_report(L, status, "moongrad");
    return 0;
  }
  preload_help(L);
  lua_setglobal(L, "mg");
  return 1;
}

static void setup_readline(lua_State *L) {
  completion_state = L;
  rl_readline_name = "moongrad"; /* for $if moongrad in ~/.inputrc */
  rl_attempted_completion_function = attempt_completion;
  rl_basic_word_break_characters = WORD_BREAKS;
  /* We handle SIGINT and SIGWINCH around pselect ourselves. */
  rl_catch_signals = 0;
  rl_catch_sigwinch = 0;
  /* "mg.<Tab>" lists the fields at once, and "mg.ra<Tab>" fills in "rand"
   * and lists on the next Tab, as IPython does; set before readline reads
   * ~/.inputrc, so a user's own setting wins. */
  rl_variable_bind("show-all-if-unmodified", "on");
}

/* The loop: chunks run here, or go to remote.run(source) when remote (a
 * stack index) is not 0; then a false result ends the loop. */
static void repl_loop(lua_State *L, int remote) {
  Repl r = {0, NULL};
  struct sigaction old_int, old_winch;
  int have_mg = remote || preload_mg(L);
  int base = lua_gettop(L);
  r.tty = isatty(fileno(stdin));
  if (r.tty) {
    setup_readline(L);
    history_open(&r);
    prompt_thread = pthread_self();
    set_handler(SIGINT, on_sigint_prompt, &old_int);
    set_handler(SIGWINCH, on_sigwinch_prompt, &old_winch);
    if (!remote)
      printf("moongrad %s \xe2\x80\x94 %s%s \xc2\xb7 Ctrl-D to quit\n",
             MG_VERSION, LUA_RELEASE,
             have_mg ? " \xc2\xb7 `mg` is loaded" : "");
    fflush(stdout);
  }
  for (;;) {
    int status;
    lua_settop(L, base);
    status = read_chunk(L, &r);
    if (status == CHUNK_EOF) break;
    if (status == CHUNK_SKIP) continue;
    if (remote && status == LUA_OK) {
      lua_pop(L, 1); /* the function: the source goes */
      lua_getfield(L, remote, "run");
      lua_insert(L, -2);
      status = mg_repl_docall(L, 1, 1);
      if (status == LUA_OK && !lua_toboolean(L, -1)) break;
      if (status == LUA_OK) lua_settop(L, base);
    } else {
      lua_remove(L, -2); /* the source */
      if (status == LUA_OK) status = mg_repl_docall(L, 0, LUA_MULTRET);
      if (status == LUA_OK) print_results(L); /* base is 0 here */
    }
    if (status != LUA_OK) mg_repl_report(L, status, NULL);
    fflush(stdout);
  }
  lua_settop(L, base);
  if (r.tty) {
    fputc('\n', stdout);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGWINCH, &old_winch, NULL);
    free(r.history_file);
  }
  fflush(stdout);
}

void mg_repl_run(lua_State *L) {
  lua_settop(L, 0);
  repl_loop(L, 0);
}

void mg_repl_run_remote(lua_State *L, int remote) {
  remote = lua_absindex(L, remote);
  if (lua_getfield(L, remote, "complete") == LUA_TFUNCTION)
    remote_complete = luaL_ref(L, LUA_REGISTRYINDEX);
  else
    lua_pop(L, 1);
  repl_loop(L, remote);
  luaL_unref(L, LUA_REGISTRYINDEX, remote_complete);
  remote_complete = LUA_NOREF;
}
