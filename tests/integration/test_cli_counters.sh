#!/usr/bin/env bash
# The counter commands of the ringkv CLI against a real three-node cluster
# (RF 3): incr, decr, counter (--all, --local, --json, --consistency),
# counter-delete, a retry by --op-id counted once, WRONG_TYPE both ways,
# bad arguments, and a replica down (ALL fails fast, ONE works, adds that
# failed are repeated by their op id once the node is back and counted
# exactly once).
set -u
: "${RINGKVD:?path of ringkvd}" "${RINGKV:?path of ringkv}"

dir=$(mktemp -d "${TMPDIR:-/tmp}/rkv-clictr-XXXXXX")
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
		--fsync always --seeds "${addr[0]}" 2>>"$dir/log$i" &
	pid[$i]=$!
	for _ in $(seq 200); do
		$R -s "${addr[$i]}" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "node $i did not start"; tail "$dir/log$i"; exit 1
}
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
check "incr" 0 '^1$' -- $R -s "$S" incr hits
check "incr 5" 0 '^6$' -- $R -s "$S" incr hits 5
check "decr" 0 '^5$' -- $R -s "$S" decr hits
check "decr 2" 0 '^3$' -- $R -s "$S" decr hits 2
check "incr a negative delta after --" 0 '^0$' -- $R -s "$S" incr -- hits -3
check "incr back" 0 '^7$' -- $R -s "$S" incr hits 7
check "counter" 0 '^7$' -- $R -s "$S" counter hits
check "counter through another node" 0 '^7$' -- $R -s "${addr[2]}" --smart off counter hits
check "counter -c all" 0 '^7$' -- $R -s "$S" -c all counter hits
check "counter -c one" 0 '^7$' -- $R -s "$S" --consistency one counter hits
check "counter missing" 1 '^$' -- $R -s "$S" counter nothing
check "counter json missing" 1 '^\{"ok":true,"found":false,"key":"nothing","value":0\}$' -- $R -s "$S" --json counter nothing
check "counter json" 0 '^\{"ok":true,"found":true,"key":"hits","value":7\}$' -- $R -s "$S" --json counter hits

# A retry by op id is counted once.
out=$($R -s "$S" --json incr once 4)
id=$(sed -n 's/.*"op_id":"\([0-9a-f]\{32\}\)".*/\1/p' <<<"$out")
if [[ "$out" =~ \"delta\":4,\"value\":4,\"duplicate\":false,\"owner\":\"$hex\" ]] && [ -n "$id" ]; then
	echo "ok   json incr prints the op id"
else
	echo "FAIL json incr: '$out'"
	fails=$((fails + 1))
fi
check "retry by --op-id is a duplicate" 0 '"duplicate":true' -- $R -s "${addr[1]}" --json incr once 4 --op-id "$id"
check "... through another node, not counted" 0 '^4$' -- $R -s "$S" -c all counter once
check "--op-id bad" 2 '^$' -- $R -s "$S" incr once --op-id xyz

# Every replica's value, and the node's own.
out=$($R -s "$S" counter --all hits)
rc=$?
if [ $rc -eq 0 ] && [ "$(grep -cE "^$hex  OK +7$" <<<"$out")" -eq 3 ] &&
	[[ "$out" =~ merged:\ 7 ]]; then
	echo "ok   counter --all"
else
	echo "FAIL counter --all: exit $rc, '$out'"
	fails=$((fails + 1))
fi
check "json counter --all" 0 '^\{"ok":true,"found":true,"key":"hits","value":7,"replies":\[(\{"node":"'"$hex"'","status":"OK","value":7\},?){3}\]\}$' \
	-- $R -s "$S" --json counter --all hits
check "counter --local" 0 '^7$' -- $R -s "${addr[1]}" counter --local hits
check "counter --all and --local" 2 '^$' -- $R -s "$S" counter --all --local hits
check "prompt incr and counter" 0 '^8 8$' -- bash -c "printf 'incr hits\ncounter hits\nquit\n' | $R -s $S | tr '\n' ' ' | sed 's/ \$//'"

# Wrong types, bad arguments.
$R -s "$S" put reg value >/dev/null
check_err "incr on a value" 2 'wrong type: the key holds a value' -- $R -s "$S" incr reg
check_err "counter on a value" 2 'wrong type' -- $R -s "$S" counter reg
check_err "get on a counter" 2 'wrong type: the key holds a counter' -- $R -s "$S" get hits
check_err "put on a counter" 2 'wrong type' -- $R -s "$S" put hits x
check_err "del on a counter" 2 'wrong type' -- $R -s "$S" del hits
check_err "counter-delete on a value" 2 'wrong type' -- $R -s "$S" counter-delete reg
check "the value is untouched" 0 '^value$' -- $R -s "$S" get reg
check "json wrong type" 2 '"ok":false,"error":"operation against a key holding the wrong type","code":-11' -- $R -s "$S" --json incr reg
check_err "incr not a number" 2 'not a whole number' -- $R -s "$S" incr hits abc
check_err "incr too big" 2 'not a whole number' -- $R -s "$S" incr hits 99999999999999999999
check_err "incr too many args" 2 'usage' -- $R -s "$S" incr hits 1 2
check_err "counter no key" 2 'usage' -- $R -s "$S" counter
check_err "incr empty key" 2 'empty key' -- $R -s "$S" incr ""
check "help lists the counter commands" 0 'incr .*decr .*counter .*counter-delete' -- bash -c "$R help | tr '\n' ' '"

# Delete: gone, and it starts again from zero.
check "counter-delete" 0 '^OK$' -- $R -s "$S" -c all counter-delete hits
check "deleted counter" 1 '^$' -- $R -s "$S" -c all counter hits
check "incr after delete" 0 '^2$' -- $R -s "$S" incr hits 2
check "counter after delete" 0 '^2$' -- $R -s "$S" -c all counter hits

# A replica down: ALL fails fast, ONE works; adds whose owner is down
# fail and are repeated by their op id once it is back.
kill -9 "${pid[2]}"
wait "${pid[2]}" 2>/dev/null
for _ in $(seq 150); do
	[ "$($R -s "$S" members | grep "${addr[2]}" | awk '{print $2}')" = dead ] && break
	sleep 0.1
done
check_err "counter -c all with a replica down" 2 'not enough replicas available' -- $R -s "$S" -c all counter hits
check "counter -c one with a replica down" 0 '^2$' -- $R -s "$S" -c one counter hits
ok=0
retry=()
for k in $(seq 20); do
	if $R -s "$S" incr down 1 >/dev/null 2>"$dir/err"; then
		ok=$((ok + 1))
	else
		id=$(grep -o -- '--op-id [0-9a-f]\{32\}' "$dir/err" | awk '{print $2}')
		[ -n "$id" ] && retry+=("$id")
	fi
done
echo "     with a replica down: $ok of 20 adds acknowledged, ${#retry[@]} to repeat"
start 2
for _ in $(seq 150); do
	members_seen 0 $N alive && members_seen 2 $N alive && break
	sleep 0.1
done
for id in "${retry[@]}"; do
	for _ in $(seq 50); do
		$R -s "$S" incr down 1 --op-id "$id" >/dev/null 2>&1 && break
		sleep 0.2
	done
done
total=$(( ok + ${#retry[@]} ))
for _ in $(seq 100); do
	[ "$($R -s "$S" -c all counter down 2>/dev/null)" = "$total" ] && break
	sleep 0.2
done
check "each of the 20 adds counted once (repeats by op id)" 0 "^20\$" -- $R -s "$S" -c all counter down

if [ $fails -ne 0 ]; then
	echo "$fails checks failed"
	for i in $(seq 0 $((N - 1))); do echo "--- log $i"; tail -20 "$dir/log$i"; done
	exit 1
fi
echo "all counter CLI checks passed"
