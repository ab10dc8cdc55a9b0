# moongrad — build, test, demo. `make demo` and `make test` do everything on
# a fresh Debian 12: they install what is missing (tools/deps.sh), build,
# and run.

CC ?= gcc
ARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
PREFIX ?= /usr/local

# Native SIMD by default; `make PORTABLE=1` builds for any x86-64.
ifeq ($(PORTABLE),1)
OPT := -O3
else
OPT := -O3 -march=native
endif
CFLAGS ?= $(OPT) -g
WARN := -Wall -Wextra -Wno-unused-parameter
# -fno-math-errno lets sqrt and friends become single instructions; the
# Lua state's error handling never reads errno. -fno-trapping-math lets
# comparisons become selects and vectorise (nothing here unmasks FP traps;
# PyTorch builds the same way).
CPPFLAGS := -I/usr/include/lua5.4 -I/usr/include/$(ARCH)/openblas-openmp
ALL_CFLAGS := -std=gnu11 -fPIC -fopenmp -fno-math-errno -fno-trapping-math $(WARN) $(CFLAGS)
# OpenBLAS's OpenMP build shares moongrad's OpenMP thread pool; the rpath
# picks it even when Debian's alternatives point elsewhere.
BLAS_LIBS := -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas
LIBS := $(BLAS_LIBS) -fopenmp -lcjson -lz -lm

B := build
EXE_SRC := runtime/main.c runtime/repl.c
LIB_SRC := $(filter-out $(EXE_SRC),$(wildcard runtime/*.c))
LIB_OBJ := $(LIB_SRC:runtime/%.c=$(B)/obj/%.o)
EXE_OBJ := $(EXE_SRC:runtime/%.c=$(B)/obj/%.o)
HEADERS := $(wildcard runtime/*.h)

all: $(B)/moongrad $(B)/lua/moongrad/core.so $(B)/libmoongrad.a

$(B)/obj/%.o: runtime/%.c $(HEADERS) | $(B)/obj
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(B)/obj:
	mkdir -p $@ $(B)/lua/moongrad

$(B)/libmoongrad.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# The module stock lua5.4 loads with require "moongrad" (through
# lua/moongrad/init.lua); Lua's own symbols come from the interpreter.
# -z nodelete: lua_close dlcloses C modules, and unmapping libgomp under its
# idle pool threads crashes the process at exit (SIGSEGV) once any loop ran
# multithreaded; a module that stays mapped lets the process exit cleanly.
$(B)/lua/moongrad/core.so: $(LIB_OBJ)
	$(CC) -shared -Wl,-z,nodelete -o $@ $^ $(LIBS)

$(B)/moongrad: $(EXE_OBJ) $(B)/libmoongrad.a
	$(CC) -rdynamic -o $@ $(EXE_OBJ) $(B)/libmoongrad.a -llua5.4 -lreadline $(LIBS)

# ---- embedding ---------------------------------------------------------------
# The C API for host programs (runtime/moongrad.h, runtime/api.c, in the
# library like every runtime/*.c), its example host and the C programs the
# embedding specs run (spec/embed_spec.lua). A host links the static
# library, Lua 5.4 and the core's own libraries.
EMBED_LIBS := $(B)/libmoongrad.a -llua5.4 $(LIBS) -lpthread
EMBED_TESTS := $(B)/tests/embed_api $(B)/tests/embed_threads

all: $(B)/examples/host $(EMBED_TESTS)

$(B)/examples/host: examples/host/host.c runtime/moongrad.h $(B)/libmoongrad.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Iruntime $(ALL_CFLAGS) -o $@ $< $(EMBED_LIBS)

$(B)/tests/%: spec/support/%.c runtime/moongrad.h $(B)/libmoongrad.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Iruntime $(ALL_CFLAGS) -o $@ $< $(EMBED_LIBS)
# ---- end of embedding ------------------------------------------------------------

deps:
	@sh tools/deps.sh test

deps-build:
	@sh tools/deps.sh build

# Specs run under stock lua5.4 with the repo's module paths.
SPEC_ENV := LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(B)/lua/?.so;;"

test: deps
	$(MAKE) all
	@$(SPEC_ENV) sh tools/run-specs.sh spec

# The main job: an MLP on Fashion-MNIST to >= 89% test accuracy, with a
# checkpoint, the history CSV and an SVG of its curves in runs/.
demo: deps-build
	$(MAKE) all
	$(B)/moongrad scripts/fashion_mnist_mlp.lua

# moongrad against PyTorch on the same workloads (bench/run.lua): installs
# Debian's python3-torch as the peer, prints one line per workload and
# writes build/bench.md.
bench:
	@sh tools/deps.sh bench
	$(MAKE) all
	$(B)/moongrad bench/run.lua

clean:
	rm -rf $(B)

.PHONY: all deps deps-build test demo bench clean
