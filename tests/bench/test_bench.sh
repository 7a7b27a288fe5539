#!/usr/bin/env bash
# ringkv-bench against a real ringkvd: a pipelined run completes with no
# errors, the JSON report is whole, cas and incr work (incr adds exactly),
# and the options that cannot work fail with exit 2 and a clear message.
set -u
: "${RINGKVD:?path of ringkvd}" "${RINGKV:?path of ringkv}" \
  "${RINGKV_BENCH:?path of ringkv-bench}"

dir=$(mktemp -d /tmp/rkv-bench-XXXXXX)
host="127.$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2)).$((RANDOM % 250 + 2))"
addr="$host:7400"
"$RINGKVD" --listen "$addr" --data-dir "$dir/data" 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do
	"$RINGKV" -s "$addr" ping >/dev/null 2>&1 && break
	sleep 0.05
done

fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
B="$RINGKV_BENCH"

# The run the issue asks for: 2000 requests, 4 connections, pipeline 4.
out=$("$B" -s "$addr" -n 2000 -c 4 -P 4 --keys 1000 --json -q 2>"$dir/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *'"requests":2000,'* ]] &&
	[[ "$out" == *'"errors":0,'* ]] &&
	[[ "$out" == *'"wrong_value_size":0,'* ]] &&
	[[ "$out" == *'"warmup":{"keys":1000,'* ]]; then
	ok "-n 2000 -c 4 -P 4: 0 errors"
else
	bad "-n 2000 -c 4 -P 4: exit $rc, stdout '$out', stderr '$(cat "$dir/err")'"
fi
# Every GET found its warmed-up key.
if [[ "$out" =~ \"get\":\{[^}]*\}[^}]*\"ok\":([0-9]+),\"not_found\":0, ]] &&
	[ "${BASH_REMATCH[1]}" -gt 0 ]; then
	ok "warm-up: every get found its key"
else
	bad "warm-up: gets did not all find their keys: '$out'"
fi
if command -v python3 >/dev/null 2>&1; then
	if printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["all"]["count"]==2000' 2>"$dir/err"; then
		ok "JSON parses"
	else
		bad "JSON does not parse: $(cat "$dir/err")"
	fi
fi

# The human table, zipfian keys, two threads, a consistency level.
out=$("$B" -s "$addr" -n 3000 -c 6 -T 2 -P 2 --keys 500 --dist zipfian:0.9 \
	--mix get=1,put=1 --consistency quorum --smart on --seed 7 2>"$dir/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *"p99.9"* ]] &&
	[[ "$out" =~ all\ +3000\ +3000\ +0\ +0 ]] &&
	grep -q "smart" "$dir/err"; then
	ok "table, zipfian, threads, --smart on routes by the ring"
else
	bad "table run: exit $rc, stdout '$out', stderr '$(cat "$dir/err")'"
fi

# --duration stops by itself.
start=$(date +%s)
out=$("$B" -s "$addr" --duration 1s -c 2 --no-warmup --mix put --json -q 2>"$dir/err")
rc=$?
if [ $rc -eq 0 ] && [ $(( $(date +%s) - start )) -lt 10 ] &&
	[[ "$out" == *'"errors":0,'* ]]; then
	ok "--duration 1s"
else
	bad "--duration: exit $rc, '$out', '$(cat "$dir/err")'"
fi

# incr: counter adds with op ids, every one acknowledged, and the counters
# hold exactly that many adds (keys '#' + the key without its first byte).
out=$("$B" -s "$addr" -n 1000 -c 4 -P 8 --keys 50 --mix incr --json -q 2>"$dir/err")
rc=$?
sum=0
for i in $(seq 0 49); do
	v=$("$RINGKV" -s "$addr" counter "$(printf '#ey:%012d' "$i")" 2>/dev/null)
	sum=$((sum + ${v:-0}))
done
if [ $rc -eq 0 ] && [[ "$out" == *'"errors":0,'* ]] &&
	[[ "$out" =~ \"incr\":\{[^}]*\}[^}]*\"ok\":1000, ]] && [ "$sum" -eq 1000 ]; then
	ok "incr: 1000 adds, the counters sum to 1000"
else
	bad "incr: exit $rc, sum $sum, stdout '$out', stderr '$(cat "$dir/err")'"
fi
out=$("$B" -s "$addr" -n 600 -c 3 --keys 50 --mix get=1,put=1,incr=1 --json -q 2>"$dir/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *'"errors":0,'* ]]; then
	ok "incr mixed with get and put: no WRONG_TYPE"
else
	bad "incr mixed: exit $rc, '$out', '$(cat "$dir/err")'"
fi

# cas: a Paxos decision per request, value -> value after the warm-up.
out=$("$B" -s "$addr" -n 200 -c 4 -k 50 --mix get=1,cas=1 --json -q 2>"$dir/err")
rc=$?
if [ $rc -eq 0 ] && [[ "$out" == *'"cas":{'*'"errors":0,'* ]] &&
	[[ "$out" == *'"cas":{"count":'* ]]; then
	ok "cas: compare-and-set through Paxos"
else
	bad "cas: exit $rc, '$out', '$(cat "$dir/err")'"
fi

# Usage and connection errors.
check_exit2() { # name, args...
	local name=$1
	shift
	"$B" "$@" >/dev/null 2>"$dir/err"
	local rc=$?
	if [ $rc -eq 2 ] && [ -s "$dir/err" ]; then
		ok "$name"
	else
		bad "$name: exit $rc, stderr '$(cat "$dir/err")'"
	fi
}
check_exit2 "unreachable server" -s 127.0.0.1:1 -n 10
check_exit2 "bad mix" -s "$addr" --mix frob=1
check_exit2 "key does not fit" -s "$addr" --keys 1000000 --key-size 8
check_exit2 "bad zipf theta" -s "$addr" --dist zipfian:1.5
check_exit2 "resp options on ringkv" -s "$addr" --wait 1
check_exit2 "RESP against a ringkv node is a protocol error" --resp -s "$addr" -n 10 --no-warmup --mix put
check_exit2 "etcd has no counters" --etcd -s "$addr" --mix incr=1
check_exit2 "etcd takes no consistency" --etcd -s "$addr" --consistency one
check_exit2 "HTTP against a ringkv node fails" --etcd -s "$addr" -n 10 --no-warmup --mix put

# --etcd against a real etcd (tools/deps.sh installs etcd-server): puts,
# linearizable gets of the warmed-up keys, and txn compare-and-swaps that
# all succeed (value -> value).
if command -v etcd >/dev/null 2>&1; then
	eport=$((23000 + RANDOM % 500))
	etcd --name bench --data-dir "$dir/etcd" \
		--listen-client-urls "http://$host:$eport" \
		--advertise-client-urls "http://$host:$eport" \
		--listen-peer-urls "http://$host:$((eport + 500))" \
		--initial-advertise-peer-urls "http://$host:$((eport + 500))" \
		--initial-cluster "bench=http://$host:$((eport + 500))" \
		--logger zap --log-level error >"$dir/etcd.log" 2>&1 &
	epid=$!
	trap 'kill $pid $epid 2>/dev/null; wait $pid $epid 2>/dev/null; rm -rf "$dir"' EXIT
	out=""
	for _ in $(seq 100); do
		out=$("$B" --etcd -s "$host:$eport" -n 600 -c 4 -P 2 -k 100 \
			--mix get=1,put=1,cas=1 --json -q 2>"$dir/err") && break
		sleep 0.1
	done
	if [[ "$out" == *'"protocol":"etcd"'* ]] &&
		[[ "$out" == *'"requests":600,'* ]] && [[ "$out" == *'"errors":0,'* ]] &&
		[[ "$out" =~ \"cas\":\{[^}]*\}[^}]*\"ok\":([0-9]+),\"not_found\":0, ]] &&
		[ "${BASH_REMATCH[1]}" -gt 0 ] &&
		[[ "$out" =~ \"get\":\{[^}]*\}[^}]*\"ok\":([0-9]+),\"not_found\":0, ]] &&
		[ "${BASH_REMATCH[1]}" -gt 0 ]; then
		ok "--etcd: get, put and cas against a real etcd"
	else
		bad "--etcd: '$out', '$(cat "$dir/err")', etcd log: $(tail -3 "$dir/etcd.log")"
	fi
	kill $epid 2>/dev/null
	wait $epid 2>/dev/null
else
	echo "skip --etcd against a real etcd: etcd is not installed"
fi

# bench/compare itself needs Redis and minutes; here only that it parses
# and its help runs.
if [ -n "${BENCH_COMPARE:-}" ] && command -v python3 >/dev/null 2>&1; then
	if python3 "$BENCH_COMPARE" --help >"$dir/out" 2>"$dir/err" &&
		grep -q -- "--rounds" "$dir/out"; then
		ok "bench/compare.py --help"
	else
		bad "bench/compare.py --help: $(cat "$dir/err")"
	fi
fi

if ! kill -0 $pid 2>/dev/null; then
	bad "ringkvd died; log: $(tail -5 "$dir/log")"
fi
if [ $fails -ne 0 ]; then
	echo "$fails bench checks failed"
	exit 1
fi
echo "all bench checks passed"
