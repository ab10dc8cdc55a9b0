#!/bin/sh
# Installs the Debian packages moongrad needs, if any are missing.
# Usage: tools/deps.sh [build|test|sanitize|bench]   (default: test)
# As root it runs apt-get; otherwise it names the packages to install.
set -eu

# cJSON parses safetensors headers in C; dkjson encodes checkpoint metadata
# in Lua; the Fashion-MNIST package is the main job's data and wamerican's
# word list (/usr/share/dict/words) the character-level models'. libpng
# and libjpeg-turbo decode and encode images (mg.image); lua-argparse reads
# the image scripts' command lines (their --help). oneDNN runs float32
# conv2d (runtime/conv_dnnl.c). ZeroMQ and libcrypto (libssl-dev) carry
# and sign the Jupyter kernel's messages (runtime/jupyter/wire.c).
build="gcc make lua5.4 liblua5.4-dev libopenblas-openmp-dev libdnnl-dev zlib1g-dev libreadline-dev libcjson-dev libpng-dev libjpeg62-turbo-dev lua-dkjson lua-argparse libzmq3-dev libssl-dev dataset-fashion-mnist wamerican"
# busted runs the specs; tmux drives the REPL through a pseudo-terminal.
# The installation spec builds the rock with luarocks, builds C programs
# with pkg-config's flags (pkgconf) and renders the man page (groff-base,
# man-db): the tools a user of the installed files reaches for.
# Open MPI (its compiler wrapper and mpirun) builds moongrad.dist and runs
# its two-rank specs. jupyter_client is the real client the kernel's specs
# drive it with; nbclient runs the example notebook through it end to end.
test="$build lua-busted tmux luarocks pkgconf groff-base man-db libopenmpi-dev openmpi-bin python3-jupyter-client python3-nbclient"
# make test-sanitize builds with gcc's AddressSanitizer and UBSan runtimes
# (libasan8, libubsan1: gcc pulls them in, named here to be plain), make
# test-tsan with its ThreadSanitizer runtime (libtsan2); the fuzzing targets
# need clang and its runtime (libFuzzer, clang's ASan).
sanitize="$test libasan8 libubsan1 libtsan2 clang-14 libclang-rt-14-dev"
# The benchmark's peers, PyTorch and torchvision (with Pillow, which also
# makes the image benchmark's photo folder from python3-skimage's
# photographs), and Optuna for the search benchmark: never dependencies of
# moongrad itself.
bench="$test python3-torch python3-torchvision python3-pil python3-skimage python3-optuna"
# make notebook-screenshot: the example notebook run in a real browser —
# Jupyter's notebook server and headless Chromium, driven over the DevTools
# protocol (python3-websocket).
notebook="$test jupyter-notebook chromium python3-websocket"

case "${1:-test}" in
  build) want=$build ;;
  test) want=$test ;;
  sanitize) want=$sanitize ;;
  bench) want=$bench ;;
  notebook) want=$notebook ;;
  *) echo "usage: $0 [build|test|sanitize|bench|notebook]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "moongrad needs these Debian packages:$missing" >&2
  echo "install them with: sudo apt-get install$missing" >&2
  exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# An apt that has never been updated (a fresh machine) knows no packages.
if ! apt-get install -y -q --no-install-recommends $missing; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends $missing
fi
