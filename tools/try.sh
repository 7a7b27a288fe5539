#!/usr/bin/env bash
# Installs the dependencies, builds ringkv and starts a local cluster of
# three nodes on 127.0.0.1:7401-7403 (data in ./ringkv-data/nN), joined
# through the first one, replication factor 3.  Ctrl-C stops them all.
#
# Usage: tools/try.sh [NODES]   (default 3; 1 starts a single node)
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-3}
tools/deps.sh
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build >/dev/null

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping ${#pids[@]} node(s)..."
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	echo "stopped; the data stays in ./ringkv-data for the next start"
}
trap stop INT TERM EXIT

seeds=127.0.0.1:7401
mkdir -p ringkv-data
for i in $(seq 1 "$nodes"); do
	./build/node/ringkvd --listen "127.0.0.1:740$i" \
		--data-dir "ringkv-data/n$i" --seeds "$seeds" \
		2> "ringkv-data/n$i.log" &
	pids+=($!)
	# Start nodes one at a time, each an owner before the next comes, so
	# the printout below is true when it appears (nodes started together
	# would take turns choosing their tokens after cluster.join_delay).
	for _ in $(seq 100); do
		if ./build/tools/ringkv -s "127.0.0.1:740$i" ping >/dev/null 2>&1; then
			break
		fi
		sleep 0.1
	done
	for _ in $(seq 300); do
		[ "$(./build/tools/ringkv -s 127.0.0.1:7401 --json ring 2>/dev/null |
			grep -o '"vnodes":[1-9][0-9]*' | wc -l)" -ge "$i" ] && break
		sleep 0.1
	done
done

all=$(seq -s, -f "127.0.0.1:740%g" 1 "$nodes")
cat <<MSG

ringkv is running: $nodes node(s) on 127.0.0.1:7401..740$nodes, logs in
ringkv-data/nN.log.  In another terminal, try:

  export RINGKV_SEEDS=$all
  ./build/tools/ringkv put greeting "hello, ringkv"
  ./build/tools/ringkv get greeting
  ./build/tools/ringkv --consistency all get greeting
  ./build/tools/ringkv members
  ./build/tools/ringkv ring
  ./build/tools/ringkv            # an interactive prompt

Ctrl-C stops every node.

MSG
wait
