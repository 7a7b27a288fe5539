#!/usr/bin/env bash
# Installs the dependencies, builds ringkv twice (release-like, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test suite
# in both builds: unit, ring, sim, lincheck and integration (real ringkvd
# processes on loopback).
#
# Usage: tools/test.sh [meson test arguments, e.g. --suite unit]
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh --test

build() { # dir, extra meson options...
	local dir=$1
	shift
	if [ -d "$dir" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null
	else
		meson setup "$dir" "$@" >/dev/null
	fi
	ninja -C "$dir"
}

start=$(date +%s)
build build
meson test -C build --print-errorlogs "$@"

build build-asan -Db_sanitize=address,undefined -Db_lundef=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C build-asan --print-errorlogs --timeout-multiplier 3 "$@"
echo "all tests passed in both builds ($(( $(date +%s) - start )) s)"
