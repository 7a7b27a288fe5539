#!/usr/bin/env bash
# The ringkv CLI against a real ringkvd: commands, exit codes, --json,
# options before and after the command, stdin values, RINGKV_SEEDS and the
# interactive prompt.
set -u
: "${RINGKVD:?path of ringkvd}" "${RINGKV:?path of ringkv}"

dir=$(mktemp -d /tmp/rkv-cli-XXXXXX)
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

R="$RINGKV"
check put 0 '^OK$' -- $R -s "$addr" put greeting hello
check get 0 '^hello$' -- $R -s "$addr" get greeting
check "options after the command" 0 '^hello$' -- $R get greeting -s "$addr"
check "json get" 0 '^\{"ok":true,"found":true,"key":"greeting","value":"hello","timestamp":\{"hlc":[0-9]+,"node":"[0-9a-f]{16}"\}\}$' \
	-- $R -s "$addr" --json get greeting
check "json after command" 0 '"value":"hello"' -- $R -s "$addr" get greeting --json
check "get missing exits 1" 1 '^$' -- $R -s "$addr" get nope
check "json missing" 1 '"found":false' -- $R -s "$addr" --json get nope
out=$(printf 'line one\nline two' | $R -s "$addr" put multi)
check "value from stdin" 0 '^line one
line two$' -- $R -s "$addr" get multi
printf 'dash' | $R -s "$addr" put dashed - >/dev/null
check "value from stdin with -" 0 '^dash$' -- $R -s "$addr" get dashed
check "raw get has no newline" 0 '^dash$' -- $R -s "$addr" --raw get dashed
check "exists yes" 0 '^yes$' -- $R -s "$addr" exists greeting
check "exists no" 1 '^no$' -- $R -s "$addr" exists nope
check del 0 '^OK$' -- $R -s "$addr" del greeting
check "get after del" 1 '^$' -- $R -s "$addr" get greeting
check "json del" 0 '"op":"delete"' -- $R -s "$addr" --json del greeting
check ping 0 '^PONG from [0-9a-f]{16} at ' -- $R -s "$addr" ping
check info 0 'cluster ringkv' -- $R -s "$addr" info
check "json info" 0 '"nodes":\[\{"id":"[0-9a-f]{16}","address":"'"$addr"'","state":"alive"\}\]' \
	-- $R -s "$addr" --json info
check "ring" 0 '^ring epoch [0-9]+ checksum [0-9a-f]{16}: 1 nodes, 256 vnodes, rf 3' -- $R -s "$addr" ring
check "json ring" 0 '"nodes":\[\{"id":"[0-9a-f]{16}","weight":1,"vnodes":256,"share":1.000000\}\]' -- $R -s "$addr" --json ring
check "ring --simulate" 0 'max/mean 1\.0' -- $R ring --simulate 10
check "ring --simulate json" 0 '"rf":2,.*"vnodes":16' -- $R ring --simulate 5 --vnodes 16 --rf 2 --json
check "ring --simulate bad" 2 '^$' -- $R ring --simulate 0
check "RINGKV_SEEDS" 0 '^PONG' -- env RINGKV_SEEDS="$addr" $R ping
check "unreachable is exit 2" 2 '^$' -- $R -s 127.0.0.1:1 ping
check "json error" 2 '"ok":false,"error":"cannot connect"' -- $R -s 127.0.0.1:1 --json ping
check "bad seed list" 2 '^$' -- $R -s nonsense ping
check "unknown command" 2 '^$' -- $R -s "$addr" frobnicate
check "missing argument" 2 '^$' -- $R -s "$addr" get
check "key too large" 2 '^$' -- $R -s "$addr" put "$(head -c 1025 /dev/zero | tr '\0' k)" v
check "incr" 0 '^1$' -- $R -s "$addr" incr ctr-a
check "counter" 0 '^1$' -- $R -s "$addr" counter ctr-a
# compare-and-set (one node: its own primary and only replica)
check "put-if-absent applies" 0 '^OK$' -- $R -s "$addr" put-if-absent lock free
check "put-if-absent does not" 1 '^free$' -- $R -s "$addr" put-if-absent lock mine
check "cas applies" 0 '^OK$' -- $R -s "$addr" cas lock free mine
check "cas fails, prints the value" 1 '^mine$' -- $R -s "$addr" cas lock free yours
check "cas --absent fails" 1 '^mine$' -- $R -s "$addr" cas --absent lock x
check "cas --absent after the flag" 1 '^mine$' -- $R -s "$addr" cas lock x --absent
check "cas json" 1 '^\{"ok":true,"op":"cas","key":"lock","applied":false,"exists":true,"value":"mine","timestamp":' \
	-- $R -s "$addr" --json cas lock free yours
check "serial get" 0 '^mine$' -- $R -s "$addr" get --consistency serial lock
check "plain get sees it" 0 '^mine$' -- $R -s "$addr" get lock
check "delete-if wrong value" 1 '^mine$' -- $R -s "$addr" delete-if lock free
check "delete-if" 0 '^OK$' -- $R -s "$addr" delete-if lock mine
check "serial get of a deleted key" 1 '^$' -- $R -s "$addr" -c serial get lock
check "cas on no value" 1 '^$' -- $R -s "$addr" cas lock free mine
check "cas --absent applies" 0 '^OK$' -- $R -s "$addr" cas --absent lock again
check "cas usage" 2 '^$' -- $R -s "$addr" cas lock only
check "cas --absent usage" 2 '^$' -- $R -s "$addr" cas --absent lock a b
check "cas key too large" 2 '^$' -- $R -s "$addr" cas "$(head -c 1025 /dev/zero | tr '\0' k)" a b
check "serial put and exists" 0 '^yes$' -- bash -c "$R -s $addr -c serial put sp 1 >/dev/null && $R -s $addr -c serial exists sp"
check "cas at the prompt" 0 '^OK
OK
again2
OK
z
\(no value\)$' -- bash -c "printf 'cas lock again again2\nput-if-absent other x\nput-if-absent lock y\ncas --absent third z\ncas third nothing else\ncas nokey a b\nquit\n' | $R -s $addr"
check "binary value as base64 in json" 0 '"value_base64":"/wA="' -- \
	bash -c "printf '\xff\x00' | $R -s $addr put bin && $R -s $addr --json get bin"
check "--help" 0 'Usage: ringkv' -- $R --help
check "--version" 0 '^ringkv [0-9]' -- $R --version
check "prompt" 0 '^OK
two words
\(not found\)$' -- bash -c "printf 'put a \"two words\"\nget a\nget zzz\nquit\n' | $R -s $addr"
check "double dash ends options" 0 '^-5$' -- bash -c "$R -s $addr put -- neg -5 >/dev/null && $R -s $addr get -- neg"

# the linearizability checker
H="$(dirname "$0")/../lincheck/histories"
check "lincheck linearizable" 0 'linearizable' -- $R lincheck "$H/etcd_002-linearizable.jsonl"
check "lincheck not linearizable" 1 'NOT linearizable' -- $R lincheck "$H/etcd_000-nonlinearizable.jsonl"
check "lincheck json" 1 '"verdict"' -- $R lincheck --json "$H/etcd_000-nonlinearizable.jsonl"
check "lincheck unreadable" 2 '^$' -- $R lincheck /nonexistent

# ringkvd's own flags
check "ringkvd --version" 0 '^ringkvd [0-9]' -- "$RINGKVD" --version
check "ringkvd bad flag" 1 '^$' -- "$RINGKVD" --no-such-flag
check "ringkvd bad setting" 1 '^$' -- "$RINGKVD" --set limits.max_key=0
check "ringkvd print-config" 0 'max_value = 2097152' -- "$RINGKVD" --set limits.max_value=2MiB --print-config
printf '[limits]\nmax_value = 3MiB\n' > "$dir/conf"
check "ringkvd config file" 0 'max_value = 3145728' -- "$RINGKVD" --config "$dir/conf" --print-config
check "flags override the file" 0 'max_value = 1024' -- "$RINGKVD" --config "$dir/conf" --set max_value=1KiB --print-config
printf '[limits]\nmax_value = lots\n' > "$dir/bad.conf"
check "bad config file" 1 '^$' -- "$RINGKVD" --config "$dir/bad.conf"
check "second ringkvd on the same data dir" 2 '^$' -- "$RINGKVD" --listen "$host:7401" --data-dir "$dir/data"

if [ $fails -ne 0 ]; then
	echo "$fails CLI checks failed; node log:"
	tail -20 "$dir/log"
	exit 1
fi
echo "all CLI checks passed"
