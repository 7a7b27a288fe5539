#!/usr/bin/env bash
# Installs the dependencies, builds ringkv and starts one node on
# 127.0.0.1:7400 with its data in ./ringkv-data.  Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null
cat <<MSG

ringkv is built.  Starting one node on 127.0.0.1:7400 (data in ./ringkv-data).
In another terminal, try:

  ./build/tools/ringkv put greeting "hello, ringkv"
  ./build/tools/ringkv get greeting
  ./build/tools/ringkv --json get greeting
  ./build/tools/ringkv            # an interactive prompt

Ctrl-C stops the node; its data stays for the next start.

MSG
exec ./build/node/ringkvd --listen 127.0.0.1:7400 --data-dir ./ringkv-data
