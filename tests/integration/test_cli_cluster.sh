#!/usr/bin/env bash
# The ringkv CLI against a real three-node cluster (RF 3): status, get
# --all, get --local, --smart, and the consistency levels while a replica
# is down (ALL fails fast with UNAVAILABLE, ONE still works); and
# ringkv-bench --smart on reaching every node.
set -u
: "${RINGKVD:?path of ringkvd}" "${RINGKV:?path of ringkv}"

dir=$(mktemp -d /tmp/rkv-clic-XXXXXX)
base="127.$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2))"
N=3
addr=()
pid=()
for i in $(seq 0 $((N - 1))); do
	addr[$i]="$base.$((i + 10)):7400"
done
cleanup() {
	for p in "${pid[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
R="$RINGKV"
start() {
	local i=$1
	"$RINGKVD" --listen "${addr[$i]}" --data-dir "$dir/n$i" \
		--seeds "${addr[0]}" 2>>"$dir/log$i" &
	pid[$i]=$!
	for _ in $(seq 200); do
		$R -s "${addr[$i]}" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "node $i did not start"; tail "$dir/log$i"; exit 1
}
# members_seen I N STATE: node I lists N members in STATE
members_seen() {
	[ "$($R -s "${addr[$1]}" members | grep -c " $3 ")" -eq "$2" ]
}
ring_size() {
	$R -s "${addr[$1]}" --json ring | grep -o '"vnodes":[0-9]*' | wc -l
}
for i in $(seq 0 $((N - 1))); do
	start "$i"
	for _ in $(seq 150); do
		[ "$(ring_size "$i")" -eq $((i + 1)) ] && break
		sleep 0.1
	done
done
for i in $(seq 0 $((N - 1))); do
	for _ in $(seq 150); do
		members_seen "$i" $N alive && [ "$(ring_size "$i")" -eq $N ] && break
		sleep 0.1
	done
done

fails=0
# check NAME EXPECTED_EXIT EXPECTED_STDOUT(regex) -- COMMAND...
check() {
	local name=$1 want_rc=$2 want_out=$3
	shift 4
	local out rc
	out=$("$@" 2>"$dir/err")
	rc=$?
	if [ "$rc" != "$want_rc" ] || ! [[ "$out" =~ $want_out ]]; then
		echo "FAIL $name: exit $rc (want $want_rc), stdout '$out'" \
		     "(want /$want_out/), stderr '$(cat "$dir/err")'"
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}
# check_err NAME EXPECTED_EXIT EXPECTED_STDERR(regex) -- COMMAND...
check_err() {
	local name=$1 want_rc=$2 want_err=$3
	shift 4
	local err rc
	"$@" >"$dir/out" 2>"$dir/err"
	rc=$?
	err=$(cat "$dir/err")
	if [ "$rc" != "$want_rc" ] || ! [[ "$err" =~ $want_err ]]; then
		echo "FAIL $name: exit $rc (want $want_rc), stderr '$err'" \
		     "(want /$want_err/), stdout '$(cat "$dir/out")'"
		fails=$((fails + 1))
	else
		echo "ok   $name"
	fi
}

S="${addr[0]}"
hex='[0-9a-f]{16}'
ts='[0-9]+/[0-9a-f]{16}'
check put 0 '^OK$' -- $R -s "$S" put greeting hello
check "put, smart off" 0 '^OK$' -- $R -s "$S" --smart off put other world
check "get, smart off" 0 '^hello$' -- $R -s "${addr[2]}" --smart off get greeting
check "bad --smart" 2 '^$' -- $R -s "$S" --smart maybe get greeting

# status: every node, alive, normal, its keys and a third of the ring x3.
for _ in $(seq 50); do
	[ "$($R -s "$S" status | grep -c '^UN .* alive .* normal .* 2 .*100\.0%')" -eq $N ] && break
	sleep 0.1
done
out=$($R -s "$S" status)
if [ "$(grep -cE "^UN  $hex  $base\.[0-9]+:7400 +alive +normal +2 +[0-9.]+ [KMG]?i?B +100\.0% +0$" <<<"$out")" -eq $N ] &&
	[[ "$out" =~ ^cluster\ ringkv:\ 3\ nodes,\ rf\ 3,\ ring\ epoch ]]; then
	echo "ok   status lists every node"
else
	echo "FAIL status: '$out'"
	fails=$((fails + 1))
fi
for i in $(seq 0 $((N - 1))); do
	check "status names ${addr[$i]}" 0 "${addr[$i]}" -- $R -s "$S" status
done
check "json status" 0 '^\{"ok":true,"cluster":"ringkv","self":"'"$hex"'","rf":3,"ring_epoch":[0-9]+,"ring_checksum":"'"$hex"'","nodes":\[\{"id":"'"$hex"'","address":"[0-9.:]+","state":"alive","incarnation":[0-9]+,"tokens":256,"owns":1\.000000,"reachable":true,"ring_status":"normal","keys":2,' \
	-- $R -s "$S" --json status

# get --all: three answers and the newest.
out=$($R -s "$S" get --all greeting)
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -cE "^$hex  OK +$ts +hello$" <<<"$out")" -eq 3 ] &&
	[[ "$out" =~ newest:\ hello\ \ \($ts\) ]]; then
	echo "ok   get --all"
else
	echo "FAIL get --all: exit $rc, '$out'"
	fails=$((fails + 1))
fi
check "json get --all" 0 '^\{"ok":true,"found":true,"key":"greeting","value":"hello","timestamp":\{[^}]*\},"replies":\[(\{"node":"'"$hex"'","status":"OK","value":"hello","timestamp":\{[^}]*\}\},?){3}\]\}$' \
	-- $R -s "$S" --json get --all greeting
check "get --all missing exits 1" 1 'newest: \(not found\)' -- $R -s "$S" get --all nope
check "get --all json missing" 1 '"found":false.*"status":"NOT_FOUND"' -- $R -s "$S" --json get --all nope
$R -s "$S" put gone x >/dev/null && $R -s "$S" del gone >/dev/null
check "get --all deleted" 1 'DELETED.*newest: \(deleted at ' -- $R -s "$S" get --all gone
check "get --local" 0 '^hello$' -- $R -s "${addr[1]}" get --local greeting
check "json get --local" 0 '"local":true,"address":"'"${addr[1]}"'"' -- $R -s "${addr[1]}" --json get --local greeting
check "get --local missing" 1 '^$' -- $R -s "${addr[1]}" get --local nope
check "--all and --local" 2 '^$' -- $R -s "$S" get --all --local greeting
check "prompt get --all" 0 'newest: hello' -- bash -c "printf 'get --all greeting\nquit\n' | $R -s $S"
check "help lists status" 0 'status .*decommission .*removenode' -- bash -c "$R help | tr '\n' ' '"
check "removenode bad id" 2 '^$' -- $R -s "$S" removenode xyz
check "decommission needs one node" 2 '^$' -- $R -s "$S,${addr[1]}" decommission

# ringkv-bench --smart on spreads its connections over every node, and
# each answers its share.
if [ -n "${RINGKV_BENCH:-}" ]; then
	out=$("$RINGKV_BENCH" -s "$S" -n 3000 -c 3 -P 4 --keys 300 --smart on \
		--json -q 2>"$dir/err")
	rc=$?
	if [ $rc -eq 0 ] && [[ "$out" == *'"errors":0,'* ]] &&
		[ "$(grep -oE '"id":"[0-9a-f]{16}","requests":[1-9][0-9]*' <<<"$out" | wc -l)" -eq $N ]; then
		echo "ok   ringkv-bench --smart on reaches every node"
	else
		echo "FAIL ringkv-bench --smart on: exit $rc, '$out', stderr '$(cat "$dir/err")'"
		fails=$((fails + 1))
	fi
fi

# A replica down: ALL fails fast and says why, ONE and QUORUM still work,
# status shows the node down with '?' for its load.
kill -9 "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
for _ in $(seq 150); do
	$R -s "$S" members | grep -q "${addr[2]}.*" &&
		[ "$($R -s "$S" members | grep "${addr[2]}" | awk '{print $2}')" = dead ] && break
	sleep 0.1
done
start_t=$(date +%s%N)
check_err "--consistency all with a replica down" 2 'not enough replicas available' -- \
	$R -s "$S" --consistency all put greeting again
check_err "--consistency all read with a replica down" 2 'UNAVAILABLE|not enough replicas available' -- \
	$R -s "$S" -c all get greeting
ms=$((($(date +%s%N) - start_t) / 1000000))
if [ $ms -lt 3000 ]; then
	echo "ok   ALL failed fast ($ms ms for both)"
else
	echo "FAIL ALL took $ms ms to fail"
	fails=$((fails + 1))
fi
check "json ALL error" 2 '"ok":false,"error":"not enough replicas available","code":-8' -- \
	$R -s "$S" --json -c all get greeting
check "--consistency one with a replica down" 0 '^OK$' -- $R -s "$S" --consistency one put greeting again
check "--consistency one read" 0 '^again$' -- $R -s "$S" --consistency one get greeting
check "quorum read" 0 '^again$' -- $R -s "${addr[1]}" -c quorum get greeting
check "status with a node down" 0 "D\?  $hex  ${addr[2]//./\\.} +dead +\? +\? +\? +100\.0% +\?" -- $R -s "$S" status
check "json status down" 0 '"state":"dead","incarnation":[0-9]+,"tokens":256,"owns":1\.000000,"reachable":false,"ring_status":null,"keys":null' \
	-- $R -s "$S" --json status
check "get --all with a replica down" 0 'TIMEOUT|UNAVAILABLE|CLOSED|CONNECT' -- $R -s "$S" get --all greeting

# Ring changes: a fourth node joins and is decommissioned, then the dead
# node is removed.
start 2
for _ in $(seq 150); do
	members_seen 0 $N alive && break
	sleep 0.1
done
addr[3]="$base.13:7400"
start 3
for _ in $(seq 300); do
	[ "$(ring_size 0)" -eq 4 ] && [ "$(ring_size 3)" -eq 4 ] &&
		$R -s "$S" status | grep -qE "^UN  $hex  ${addr[3]//./\\.} " && break
	sleep 0.1
done
$R -s "${addr[3]}" decommission >"$dir/out" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && grep -qE "^node $hex \(${addr[3]//./\\.}\) has left the ring$" "$dir/out"; then
	echo "ok   decommission"
	for _ in $(seq 100); do
		[ "$(ring_size 0)" -eq 3 ] && break
		sleep 0.1
	done
	check "ring after decommission" 0 '3 nodes' -- $R -s "$S" ring
	check "status after decommission" 0 "${addr[3]//./\\.} +(left|removed)" -- $R -s "$S" status
	check "data after decommission" 0 '^again$' -- $R -s "$S" get greeting
else
	echo "FAIL decommission: exit $rc, stdout '$(cat "$dir/out")', stderr '$(cat "$dir/err")'"
	fails=$((fails + 1))
fi
id2=$($R -s "${addr[2]}" --json ping | grep -oE '"node":"[0-9a-f]{16}"' | cut -d'"' -f4)
kill -9 "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
for _ in $(seq 150); do
	[ "$($R -s "$S" members | grep "${addr[2]}" | awk '{print $2}')" = dead ] && break
	sleep 0.1
done
check_err "removenode of a stranger" 2 'no such node' -- $R -s "$S" removenode 1234567890abcdef
$R -s "$S" removenode "$id2" >"$dir/out" 2>"$dir/err"
rc=$?
if [ $rc -eq 0 ] && grep -qE "^node $id2 removed from the ring$" "$dir/out"; then
	echo "ok   removenode"
	check "ring after removenode" 0 '2 nodes' -- $R -s "$S" ring
	check "data after removenode" 0 '^again$' -- $R -s "$S" get greeting
else
	echo "FAIL removenode: exit $rc, stdout '$(cat "$dir/out")', stderr '$(cat "$dir/err")'"
	fails=$((fails + 1))
fi

if [ $fails -ne 0 ]; then
	echo "$fails CLI cluster checks failed; node logs:"
	for i in $(seq 0 $((N - 1))); do tail -5 "$dir/log$i"; done
	exit 1
fi
echo "all CLI cluster checks passed"
