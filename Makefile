# moongrad — build, test, demo. `make demo` and `make test` do everything on
# a fresh Debian 12: they install what is missing (tools/deps.sh), build,
# and run.

CC ?= gcc
ARCH := $(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BLAS_DIR := /usr/lib/$(ARCH)/openblas-openmp
PREFIX ?= /usr/local

# Native SIMD by default; `make PORTABLE=1` builds for any x86-64.
# Link-time optimisation inlines the core's small accessors (mg_data,
# mg_numel, ...) across files: a tenth of a small op's time. The objects
# stay fat, so a host that links libmoongrad.a without LTO still links.
LTO := -flto=auto -ffat-lto-objects
ifeq ($(PORTABLE),1)
OPT := -O3 $(LTO)
else
OPT := -O3 -march=native $(LTO)
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
# libpng and libjpeg-turbo decode and encode images (io_image.c); oneDNN
# runs float32 conv2d (conv_dnnl.c).
LIBS := $(BLAS_LIBS) -fopenmp -ldnnl -lcjson -lpng16 -ljpeg -lz -lm

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
	$(CC) $(CFLAGS) -shared -Wl,-z,nodelete -o $@ $^ $(LIBS)

$(B)/moongrad: $(EXE_OBJ) $(B)/libmoongrad.a
	$(CC) $(CFLAGS) -rdynamic -o $@ $(EXE_OBJ) $(B)/libmoongrad.a -llua5.4 -lreadline $(LIBS)

# ---- embedding ---------------------------------------------------------------
# The C API for host programs (runtime/moongrad.h, runtime/api.c, in the
# library like every runtime/*.c), its example host and the C programs the
# embedding specs run (spec/embed_spec.lua). A host links the static
# library, Lua 5.4 and the core's own libraries.
EMBED_LIBS := $(B)/libmoongrad.a -llua5.4 $(LIBS) -lpthread
EMBED_TESTS := $(B)/tests/embed_api $(B)/tests/embed_threads $(B)/tests/embed_signals \
  $(B)/tests/file_threads

all: $(B)/examples/host $(EMBED_TESTS)

embed-tests: $(EMBED_TESTS)

$(B)/examples/host: examples/host/host.c runtime/moongrad.h $(B)/libmoongrad.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Iruntime $(ALL_CFLAGS) -o $@ $< $(EMBED_LIBS)

$(B)/tests/%: spec/support/%.c spec/support/embed_check.h runtime/moongrad.h $(B)/libmoongrad.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Iruntime $(ALL_CFLAGS) -o $@ $< $(EMBED_LIBS)

.PHONY: embed-tests
# ---- end of embedding ------------------------------------------------------------

# ---- Jupyter -------------------------------------------------------------------
# The kernel's transport (runtime/jupyter/wire.c: ZeroMQ sockets, HMAC-SHA256
# signing from libcrypto) is a module of its own, so the core and the
# executable load ZeroMQ only when `moongrad --kernel` runs.
all: $(B)/lua/moongrad/jupyter_wire.so

$(B)/lua/moongrad/jupyter_wire.so: runtime/jupyter/wire.c | $(B)/obj
	$(CC) $(CPPFLAGS) $(ALL_CFLAGS) -shared -Wl,-z,nodelete -o $@ $< -lzmq -lcrypto -lcjson -lpthread
# ---- end of Jupyter -------------------------------------------------------------

# ---- distributed (MPI) ----------------------------------------------------------
# moongrad.dist's C half, lua/moongrad/dist_mpi.so, is a separate module built
# only where Open MPI's compiler wrapper (libopenmpi-dev) is installed, so
# the rest builds and runs without MPI; it reaches the core through the
# registry (runtime/mg_capi.h), never by linking it. -z nodelete, as for
# core.so: Open MPI must stay mapped until its atexit finalisation ran.
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
ifneq ($(MPI_LIBS),)
all: $(B)/lua/moongrad/dist_mpi.so
endif

$(B)/lua/moongrad/dist_mpi.so: runtime/mpi/dist.c runtime/mg_capi.h runtime/mg_core.h | $(B)/obj
	$(CC) $(CPPFLAGS) $(MPI_CFLAGS) $(ALL_CFLAGS) -shared -Wl,-z,nodelete -o $@ $< $(MPI_LIBS)
# ---- end of distributed ----------------------------------------------------------

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

# The specs that check moongrad's files in the peers themselves — state
# dicts loading into PyTorch with strict=True, PNGs read back by Pillow —
# with the peers installed (they are pending without them in make test).
test-peers:
	@sh tools/deps.sh bench
	$(MAKE) all
	@MOONGRAD_REQUIRE_PEERS=1 $(SPEC_ENV) sh tools/run-specs.sh spec/torch_bridge_spec.lua \
	  spec/attention_spec.lua spec/conv_options_spec.lua spec/image_spec.lua

# moongrad against PyTorch on the same workloads (bench/run.lua): installs
# Debian's python3-torch as the peer, prints one line per workload and
# writes build/bench.md; then moongrad.tune's samplers against Optuna's
# (python3-optuna) on three test functions (bench/tune_samplers.lua,
# build/tune_bench.md).
bench:
	@sh tools/deps.sh bench
	$(MAKE) all
	$(B)/moongrad bench/run.lua
	$(B)/moongrad bench/tune_samplers.lua

# float32 products at the workloads' shapes, OpenBLAS's sgemm against
# oneDNN's matmul (bench/gemm_shapes.c: the evidence behind mg_gemm's
# choice), on one thread unless OMP_NUM_THREADS says otherwise, with the
# OpenBLAS kernel set the moongrad executable runs.
bench-gemm: deps
	$(MAKE) all
	$(CC) $(CPPFLAGS) -O2 -o $(B)/gemm_shapes bench/gemm_shapes.c $(BLAS_LIBS) -ldnnl
	@t=$${OMP_NUM_THREADS:-1}; \
	  core=$$($(B)/moongrad -e 'io.write(((require "moongrad").blas_core()))'); \
	  echo "gemm_shapes: $$t thread(s), OPENBLAS_CORETYPE=$$core"; \
	  OMP_NUM_THREADS=$$t OPENBLAS_NUM_THREADS=$$t OPENBLAS_CORETYPE=$$core $(B)/gemm_shapes

# The example notebook (examples/notebook/): `make notebook` runs it on the
# kernel with nbclient and saves its outputs in place (what a reader sees
# without running it); `make notebook-screenshot` runs it in a real browser
# (jupyter-notebook and headless chromium, installed here: tools for this
# target only) and writes docs/notebook.png.
NOTEBOOK := examples/notebook/fashion_mnist.ipynb
notebook: deps
	$(MAKE) all
	/usr/bin/python3 tools/run-notebook.py $(B)/moongrad $(NOTEBOOK) $(NOTEBOOK)

notebook-screenshot: deps
	@sh tools/deps.sh notebook
	$(MAKE) all
	/usr/bin/python3 tools/notebook-screenshot.py $(B)/moongrad $(NOTEBOOK) docs/notebook.png

# Data-parallel scaling of moongrad.dist (bench/dist_scaling.lua): 1 rank
# with 2 threads against 2 MPI ranks with 1 each, the compute/communication
# split, a projection to 8 and 64 ranks on 10 Gbit/s; writes
# build/dist_scaling.md. Needs Open MPI (mpirun and the dist_mpi module).
bench-dist: deps
	$(MAKE) all
	$(B)/moongrad bench/dist_scaling.lua

# ---- installation
# make install PREFIX=/usr/local [DESTDIR=/staging]: the executable, the
# static and shared libraries, the public headers, the Lua library (source
# modules and core.so, where stock lua5.4 looks under PREFIX), a pkg-config
# file and the man page. make uninstall removes those files and the moongrad
# directories left empty, nothing else. The directories follow the GNU names
# and may be set one by one (make install libdir=/usr/lib64).
VERSION := $(shell sed -n 's/^\#define MG_VERSION "\(.*\)"/\1/p' runtime/mg_core.h)
SONAME := libmoongrad.so.$(firstword $(subst ., ,$(VERSION)))
SHLIB := libmoongrad.so.$(VERSION)
# moongrad.h, the embedding API, joins mg_core.h once it exists.
# The C manual: the core and the op families' headers (mg_core.h lists them).
PUBLIC_HEADERS := $(addprefix runtime/,mg_core.h mg_conv.h mg_pool.h mg_rnn.h mg_augment.h \
  mg_imageops.h mg_image.h mg_io.h mg_file.h mg_safetensors.h) $(wildcard runtime/moongrad.h)
# Every Lua module, as a path below lua/ (moongrad/nn/conv.lua).
LUA_MODULES := $(patsubst lua/%,%,$(sort $(shell find lua/moongrad -name '*.lua')))

bindir = $(PREFIX)/bin
libdir = $(PREFIX)/lib
includedir = $(PREFIX)/include
mandir = $(PREFIX)/share/man
pkgconfigdir = $(libdir)/pkgconfig
# Where stock lua5.4 looks (Debian's default paths include /usr/local's);
# the installed executable finds its Lua library at $(PREFIX)/share/lua/5.4.
# The rockspec points these two at the rock's tree.
luadir = $(PREFIX)/share/lua/5.4
luacdir = $(PREFIX)/lib/lua/5.4

all: $(B)/$(SHLIB)

# The core for host programs that link it dynamically. Like libmoongrad.a it
# leaves Lua's symbols to the host, which links its own Lua (pkg-config's
# Requires: lua5.4); everything else it needs, it names.
$(B)/$(SHLIB): $(LIB_OBJ)
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(LIBS)
	ln -sf $(SHLIB) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libmoongrad.so

install: all install-lua
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(libdir) $(DESTDIR)$(includedir)/moongrad \
	  $(DESTDIR)$(pkgconfigdir) $(DESTDIR)$(mandir)/man1
	install -m 755 $(B)/moongrad $(DESTDIR)$(bindir)/moongrad
	install -m 644 $(B)/libmoongrad.a $(DESTDIR)$(libdir)/libmoongrad.a
	install -m 755 $(B)/$(SHLIB) $(DESTDIR)$(libdir)/$(SHLIB)
	ln -sf $(SHLIB) $(DESTDIR)$(libdir)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(libdir)/libmoongrad.so
	install -m 644 $(PUBLIC_HEADERS) $(DESTDIR)$(includedir)/moongrad/
	sed -e 's|@prefix@|$(PREFIX)|g' -e 's|@libdir@|$(libdir)|g' \
	  -e 's|@includedir@|$(includedir)|g' -e 's|@blasdir@|$(BLAS_DIR)|g' \
	  -e 's|@version@|$(VERSION)|g' moongrad.pc.in > $(DESTDIR)$(pkgconfigdir)/moongrad.pc
	install -m 644 man/moongrad.1 $(DESTDIR)$(mandir)/man1/moongrad.1

# The Lua library alone: what stock lua5.4 needs, and all a rock installs.
install-lua: $(B)/lua/moongrad/core.so $(B)/lua/moongrad/jupyter_wire.so
	for m in $(LUA_MODULES); do install -D -m 644 lua/$$m $(DESTDIR)$(luadir)/$$m || exit 1; done
	install -D -m 755 $(B)/lua/moongrad/core.so $(DESTDIR)$(luacdir)/moongrad/core.so
	install -D -m 755 $(B)/lua/moongrad/jupyter_wire.so $(DESTDIR)$(luacdir)/moongrad/jupyter_wire.so
	[ ! -f $(B)/lua/moongrad/dist_mpi.so ] || \
	  install -D -m 755 $(B)/lua/moongrad/dist_mpi.so $(DESTDIR)$(luacdir)/moongrad/dist_mpi.so

uninstall:
	rm -f $(DESTDIR)$(bindir)/moongrad $(DESTDIR)$(libdir)/libmoongrad.a \
	  $(DESTDIR)$(libdir)/$(SHLIB) $(DESTDIR)$(libdir)/$(SONAME) $(DESTDIR)$(libdir)/libmoongrad.so \
	  $(addprefix $(DESTDIR)$(includedir)/moongrad/,$(sort $(notdir $(PUBLIC_HEADERS)) moongrad.h)) \
	  $(DESTDIR)$(pkgconfigdir)/moongrad.pc $(DESTDIR)$(mandir)/man1/moongrad.1 \
	  $(DESTDIR)$(luacdir)/moongrad/core.so $(DESTDIR)$(luacdir)/moongrad/dist_mpi.so \
	  $(DESTDIR)$(luacdir)/moongrad/jupyter_wire.so
	[ ! -d $(DESTDIR)$(luadir) ] || (cd $(DESTDIR)$(luadir) && rm -f $(LUA_MODULES))
	for d in $(DESTDIR)$(includedir)/moongrad $(DESTDIR)$(luacdir)/moongrad $(DESTDIR)$(luadir)/moongrad; do \
	  [ ! -d $$d ] || find $$d -depth -type d -empty -delete; done

.PHONY: install install-lua uninstall
# ---- end of installation

# ---- sanitizers ---------------------------------------------------------------
# make test-sanitize: the whole spec suite against a second tree, build-san/,
# compiled with AddressSanitizer (LeakSanitizer included) and
# UndefinedBehaviorSanitizer, float-to-int overflow too. No finding is
# recovered from: the first one ends the process with an error, so it fails
# the run. The specs read MOONGRAD_BUILD for the tree whose executable,
# example host and C test programs they run.
#
# The runner is the sanitized executable, build-san/moongrad, which takes
# lua5.4's command line; build-san/bin/lua5.4 execs it and goes first on
# PATH, so busted and every `lua5.4` a spec starts run instrumented, with the
# ASan runtime linked in. The other way, stock lua5.4 with libasan in
# LD_PRELOAD, hands the preload down to every child the specs start (make,
# gcc, mktemp, tmux, luarocks), and LeakSanitizer then fails them on their
# own leaks. Busted exits through os.exit(code, true), which closes the Lua
# state, so every tensor has been freed when LeakSanitizer looks.
# allocator_may_return_null: a tensor too large for the machine must come
# back from malloc as NULL, as it does without ASan, so the specs see
# moongrad's "not enough memory" error rather than ASan's abort.
SAN_B := build-san
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all \
  -fno-omit-frame-pointer
SAN_CFLAGS := -O1 $(if $(filter 1,$(PORTABLE)),,-march=native) -g -DMG_CHECK_OP_LIST
SAN_ENV := PATH="$(CURDIR)/$(SAN_B)/bin:$$PATH" MOONGRAD_BUILD=$(SAN_B) \
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions=$(CURDIR)/tools/lsan.supp:print_suppressions=0 \
  LUA_PATH="lua/?.lua;lua/?/init.lua;spec/?.lua;;" LUA_CPATH="$(SAN_B)/lua/?.so;;"

# The sanitizers ride in CC, so the same rules compile and link both trees.
sanitize-build: deps-sanitize
	$(MAKE) B=$(SAN_B) CC="$(CC) $(SAN_FLAGS)" CFLAGS="$(SAN_CFLAGS)" all
	@mkdir -p $(SAN_B)/bin
	printf '#!/bin/sh\nexec "%s" "$$@"\n' "$(CURDIR)/$(SAN_B)/moongrad" > $(SAN_B)/bin/lua5.4
	chmod +x $(SAN_B)/bin/lua5.4

deps-sanitize:
	@sh tools/deps.sh sanitize

test-sanitize: sanitize-build
	@$(SAN_ENV) sh tools/run-specs.sh spec

# make test-tsan: ThreadSanitizer over the embedding programs that run
# several states on several threads at once (the specs tagged #tsan in
# spec/embed_spec.lua and spec/file_writes_spec.lua: training, signals,
# saving and loading one path), in a third tree, build-tsan/, which
# holds only the static library and those programs. libgomp is not
# instrumented, so ThreadSanitizer cannot see OpenMP's synchronisation:
# built with -fsanitize=thread (__SANITIZE_THREAD__), the programs give each
# state one thread for its loops, and nothing needs suppressing. A report
# ends the program with status 66, which fails its spec.
TSAN_B := build-tsan
TSAN_ENV := MOONGRAD_BUILD=$(TSAN_B) TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

tsan-build: deps-sanitize
	$(MAKE) B=$(TSAN_B) CC="$(CC) -fsanitize=thread -fno-omit-frame-pointer" \
	  CFLAGS="-O1 -g" embed-tests

test-tsan: tsan-build
	@$(TSAN_ENV) $(SPEC_ENV) sh tools/run-specs.sh --tags=tsan spec/embed_spec.lua \
	  spec/file_writes_spec.lua

clean-sanitize:
	rm -rf $(SAN_B) $(TSAN_B)

.PHONY: sanitize-build deps-sanitize test-sanitize clean-sanitize tsan-build test-tsan
# ---- end of sanitizers ---------------------------------------------------------

clean:
	rm -rf $(B)

.PHONY: all deps deps-build test test-peers demo bench bench-gemm bench-dist notebook notebook-screenshot clean

# ---- fuzzing -----------------------------------------------------------------
# libFuzzer harnesses (fuzz/*_fuzz.c) for the file readers and the tensor API,
# built with clang-14 under ASan and UBSan against the core compiled the same
# way in build-fuzz/ (never mixed with build/). `make fuzz` runs each for
# FUZZ_SECONDS on a scratch copy of its committed corpus (build-fuzz/corpus/),
# so the corpus in git only grows on purpose; `make fuzz-build` only builds.
# See fuzz/README.md.
FUZZ_CC := clang-14
FB := build-fuzz
FUZZ_SECONDS ?= 60
FUZZERS := safetensors idx csv lua image
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# No OpenMP pragmas (a single thread, as the harnesses set): ASan and
# libFuzzer's coverage then see one deterministic loop per op.
FUZZ_CFLAGS := -std=gnu11 -O1 -g -fno-omit-frame-pointer -fno-math-errno \
  -Wall -Wextra -Wno-unused-parameter -Wno-unknown-pragmas $(FUZZ_SAN)
FUZZ_OBJ := $(LIB_SRC:runtime/%.c=$(FB)/obj/%.o)
FUZZ_BINS := $(FUZZERS:%=$(FB)/%_fuzz)
# The core calls omp_* itself, so it still links an OpenMP runtime: gcc's
# libgomp, the one OpenBLAS uses, rather than clang's libomp beside it.
FUZZ_LIBS := $(BLAS_LIBS) -lgomp -ldnnl -llua5.4 -lcjson -lpng16 -ljpeg -lz -lm

fuzz-build: fuzz-deps fuzz-harnesses

fuzz-deps:
	@sh tools/deps.sh sanitize

fuzz-harnesses: $(FUZZ_BINS)

$(FB)/obj/%.o: runtime/%.c $(HEADERS) | $(FB)/obj
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FB)/obj:
	mkdir -p $@

$(FB)/%_fuzz: fuzz/%_fuzz.c fuzz/fuzz_file.h $(FUZZ_OBJ)
	$(FUZZ_CC) $(CPPFLAGS) -Iruntime $(FUZZ_CFLAGS) -fsanitize=fuzzer \
	  -DMG_FUZZ_LUA_DIR='"$(CURDIR)/lua"' -o $@ $< $(FUZZ_OBJ) $(FUZZ_LIBS)

# Each harness in turn, on a scratch copy of its corpus seeded from fuzz/corpus,
# with its dictionary when it has one; findings land in build-fuzz/findings/.
# lua_fuzz keeps one Lua state across inputs, whose heap grows and shrinks
# from input to input: libFuzzer's per-input leak check would then run
# LeakSanitizer after nearly every input (a 5x slowdown) and find nothing
# unreachable, so it is off there.
fuzz: fuzz-build
	@mkdir -p $(FB)/findings
	@for f in $(FUZZERS); do \
	  rm -rf $(FB)/corpus/$$f; mkdir -p $(FB)/corpus/$$f; \
	  cp fuzz/corpus/$$f/* $(FB)/corpus/$$f/ 2>/dev/null; \
	  dict=; [ -f fuzz/$$f.dict ] && dict=-dict=fuzz/$$f.dict; \
	  leaks=; [ $$f = lua ] && leaks=-detect_leaks=0; \
	  echo "== $$f: $(FUZZ_SECONDS) s"; \
	  $(FB)/$${f}_fuzz $$dict $$leaks -max_total_time=$(FUZZ_SECONDS) -timeout=25 \
	    -rss_limit_mb=2048 -artifact_prefix=$(FB)/findings/$$f- \
	    -print_final_stats=1 $(FB)/corpus/$$f || exit 1; \
	done

fuzz-clean:
	rm -rf $(FB)

.PHONY: fuzz fuzz-build fuzz-deps fuzz-harnesses fuzz-clean
# ---- end of fuzzing
