/*
 * repl.h — running chunks the way an interpreter does, and the REPL.
 *
 * The `moongrad` executable (main.c) runs every chunk through
 * mg_repl_docall, so that an error carries a traceback and Ctrl-C stops a
 * running script with an "interrupted!" error instead of killing the
 * process. mg_repl_run is the interactive loop: readline editing, history,
 * multi-line chunks, printed results and tab completion.
 *
 * Both use process-wide signal handlers, so one process should run one
 * REPL at a time (a signal handler has no way to be told which Lua state
 * it belongs to other than a static pointer).
 */
#ifndef MG_REPL_H
#define MG_REPL_H

#include <lua.h>

/* Calls the function below narg arguments on the stack, like lua_pcall,
 * with a message handler that appends a traceback to the error message and
 * with SIGINT turned into an "interrupted!" error raised inside the running
 * chunk. A second Ctrl-C before the chunk reaches a Lua instruction (it may
 * be inside a long C call) gets the default action, so the process can
 * always be stopped. The SIGINT disposition the caller had is restored
 * afterwards. Returns the lua_pcall status; on an error the message
 * (traceback included) is left on the stack. [-(narg+1), +(nres|1), -] */
int mg_repl_docall(lua_State *L, int narg, int nres);

/* If status is not LUA_OK, prints the error message on top of the stack to
 * stderr as "progname: message" (or just the message when progname is
 * NULL) and pops it. Returns status unchanged. [-(0|1), +0, -] */
int mg_repl_report(lua_State *L, int status, const char *progname);

/* Runs the read-eval-print loop on stdin until end of input (Ctrl-D).
 *
 * On a terminal it uses readline, prints a banner, keeps history in the
 * file named by $MOONGRAD_HISTORY (default ~/.moongrad_history; an empty
 * value keeps no file), completes globals, keywords and fields on Tab, and
 * clears the line on Ctrl-C at the prompt. When stdin is not a terminal it
 * reads plain lines without prompts, so piped input gives clean output.
 * Before the first prompt it sets the global `mg` to require "moongrad"
 * when `mg` is nil (a failure to load is reported, not fatal).
 *
 * Each chunk is first tried as `return <line>`, so expressions print their
 * values (with tostring, through the global print); a chunk that ends
 * early reads more lines. Errors are reported and the loop goes on.
 * Returns when input ends; never raises. [-0, +0, -] */
void mg_repl_run(lua_State *L);

/* The same loop for a session attached to another process (moongrad
 * --attach): the table at index remote has run(source), which sends a
 * chunk's source to be run there, prints what comes back and returns
 * whether to go on, and may have complete(expr, sep, prefix), which returns
 * the candidates as mgl_candidates does (Tab). Chunks are checked for
 * completeness here; no banner is printed. [-0, +0, -] */
void mg_repl_run_remote(lua_State *L, int remote);


#endif
