#!/usr/bin/env bash
# Installs what ringkv needs to build and test, from Debian's packages;
# --test adds what only the test suite needs.
set -euo pipefail
pkgs=(
	gcc libc6-dev meson ninja-build pkg-config  # the build
	libev-dev                                   # the event loop
	protobuf-c-compiler libprotobuf-c-dev       # the wire protocol
	libinih-dev                                 # the config file
	libxxhash-dev                               # key and table hashing
	libzstd-dev                                 # compressed snapshots
	libcriterion-dev                            # unit tests
	procps iproute2                             # tests: ps, ip netns
)
# --test: the test suite's own needs.
if [ "${1:-}" = "--test" ]; then
	pkgs+=(etcd-server)                         # ringkv-bench --etcd
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
