/*
 * embed_check.h — the check lines of the embedding test programs
 * (spec/support/embed_*.c): "ok <name>" or "FAIL <name>: <why>", one a
 * line, which spec/embed_spec.lua looks for; `failures` counts the FAILs
 * for the exit status.
 */
#ifndef EMBED_CHECK_H
#define EMBED_CHECK_H

#include <stdio.h>

static int failures;

static void check(int ok, const char *name, const char *why) {
  if (ok) printf("ok %s\n", name);
  else {
    printf("FAIL %s: %s\n", name, why);
    failures++;
  }
  fflush(stdout);
}

#endif
