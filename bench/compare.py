#!/usr/bin/env python3
"""ringkv side by side with Redis and etcd (issue 8), on this machine's
loopback.

Every row is a pair: the same workload (connections, pipeline depth, value
size, key space) against ringkv (A) and against the other server (B), run
alternately A B A B ... for --rounds rounds, rounds outermost so that a
burst of load from elsewhere on the machine hits both sides alike.  The
table shows medians over the rounds and the ratio ringkv/other.

Both sides are driven by the same client, ringkv-bench (its --resp mode for
Redis, its --etcd mode for etcd's v3 HTTP/JSON gateway), so the client's
own costs are the same; redis-benchmark's numbers for the same settings are
shown too, as a reference.

Server CPU per operation is the user+system CPU time the server processes
spent during a run (utime+stime from /proc/PID/stat, all threads), divided
by the operations the run completed.

Servers run on CPU 0 and clients on CPU 1 (taskset) unless --no-pin, so a
server and its load generator do not fight over one core.

Standard library only.  Every process this script starts is stopped by PID
when it exits, however it exits.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# How the ringkv side of a multi-node row would set its replication factor
# once the replication issue lands (the setting's name is that to
# choose; adjust here).
RINGKV_RF_SETTING = "cluster.replication_factor"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# processes


class Procs:
    """Every server this script started, stopped by PID at exit."""

    def __init__(self):
        self.procs = []  # (name, Popen)
        self.logs = {}   # pid -> (name, log file)

    def start(self, name, argv, logpath, cpu=None):
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        out = open(logpath, "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        self.procs.append((name, p))
        self.logs[p.pid] = (name, logpath)
        return p

    def stop(self, p, grace=10.0):
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.procs = [(n, q) for (n, q) in self.procs if q is not p]

    def stop_all(self):
        for _, p in list(reversed(self.procs)):
            self.stop(p)


PROCS = Procs()
TMPDIRS = []
# Logs of servers that died on their own outlive the run here.
KEPT_LOGS = "/var/tmp/ringkv-compare-logs-" + time.strftime("%Y%m%d-%H%M%S")


def cleanup():
    PROCS.stop_all()
    for d in TMPDIRS:
        shutil.rmtree(d, ignore_errors=True)


def on_signal(signum, frame):
    sys.exit(128 + signum)  # runs atexit


def cpu_ticks(pid):
    """utime + stime of a process, all its threads, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def random_host():
    return "127.%d.%d.%d" % (random.randint(2, 251), random.randint(2, 251),
                             random.randint(2, 251))


def wait_port(host, port, proc, what, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"compare: {what} exited at start "
                             f"(status {proc.returncode})")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"compare: {what} did not listen on {host}:{port}")


# ---------------------------------------------------------------------------
# servers


class Env:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build)
        self.ringkvd = os.path.join(self.build, "node", "ringkvd")
        self.ringkv = os.path.join(self.build, "tools", "ringkv")
        self.bench = os.path.join(self.build, "tools", "bench", "ringkv-bench")
        for exe in (self.ringkvd, self.ringkv, self.bench):
            if not os.access(exe, os.X_OK):
                raise SystemExit(f"compare: {exe} is missing; build first "
                                 "(meson setup build && ninja -C build)")
        pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        self.server_cpu = 0 if pin else None
        self.client_cpu = 1 if pin else None
        self.tmp = tempfile.mkdtemp(prefix="ringkv-compare-", dir="/var/tmp")
        TMPDIRS.append(self.tmp)
        self.host = random_host()

    def client(self, argv):
        if self.client_cpu is not None:
            return ["taskset", "-c", str(self.client_cpu)] + argv
        return argv


class Server:
    """One or more processes serving one side of a row."""

    def __init__(self, name, kind, procs, addrs):
        self.name = name
        self.kind = kind      # "ringkv", "redis" or "etcd"
        self.procs = procs
        self.addrs = addrs    # host:port strings

    def cpu_ticks(self):
        return sum(cpu_ticks(p.pid) for p in self.procs)

    def rss(self):
        return sum(rss_bytes(p.pid) for p in self.procs)

    def stop(self):
        for p in self.procs:
            PROCS.stop(p)

    def deaths(self):
        """Says which processes exited by themselves, and keeps their logs
        (the temporary directory goes away at exit)."""
        out = []
        for p in self.procs:
            rc = p.poll()
            if rc is None:
                continue
            name, logpath = PROCS.logs.get(p.pid, ("?", None))
            how = (f"killed by signal {signal.Signals(-rc).name}" if rc < 0
                   else f"exited with status {rc}")
            msg = f"{name} (pid {p.pid}) {how}"
            if logpath and os.path.exists(logpath):
                os.makedirs(KEPT_LOGS, exist_ok=True)
                kept = os.path.join(KEPT_LOGS, os.path.basename(logpath))
                shutil.copy(logpath, kept)
                with open(logpath, errors="replace") as f:
                    tail = f.read().splitlines()[-8:]
                msg += f"; log kept in {kept}, last lines:\n    " + \
                    "\n    ".join(tail)
            out.append(msg)
        return out


def start_ringkvd(env, name, port, fsync="interval", extra=()):
    host = env.host
    data = os.path.join(env.tmp, f"{name}-data")
    shutil.rmtree(data, ignore_errors=True)  # every start is a new node
    argv = [env.ringkvd, "--listen", f"{host}:{port}", "--data-dir", data,
            "--fsync", fsync, "--log-level", "warn"] + list(extra)
    p = PROCS.start(name, argv, os.path.join(env.tmp, f"{name}.log"),
                    env.server_cpu)
    wait_port(host, port, p, name)
    return Server(name, "ringkv", [p], [f"{host}:{port}"])


def ringkvd_has_flag(env, flag):
    out = subprocess.run([env.ringkvd, "--help"], capture_output=True,
                         text=True).stdout
    return flag in out


def start_ringkv_cluster(env, n, rf, fsync="interval"):
    """n ringkvd nodes joined through --seeds, replication factor rf.
    Returns (Server, None), or (None, why) while ringkv cannot do it."""
    if not ringkvd_has_flag(env, "--seeds"):
        return None, "skipped: ringkv replication/CAS not built yet"
    host = env.host
    ports = [7410 + i for i in range(n)]
    procs = []
    # One at a time, each an owner before the next starts: nodes started
    # together would also take turns choosing their tokens (after
    # cluster.join_delay), but this way the setup is the same every run.
    for i, port in enumerate(ports):
        name = f"ringkvd-c{i}"
        data = os.path.join(env.tmp, f"{name}-data")
        # A new cluster: stage 3 must not restart stage 2's nodes.
        shutil.rmtree(data, ignore_errors=True)
        argv = [env.ringkvd, "--listen", f"{host}:{port}",
                "--data-dir", data,
                "--fsync", fsync, "--log-level", "warn",
                "--seeds", f"{host}:{ports[0]}",
                "--set", f"{RINGKV_RF_SETTING}={rf}"]
        p = PROCS.start(name, argv, os.path.join(env.tmp, f"{name}.log"),
                        env.server_cpu)
        procs.append(p)
        wait_port(host, port, p, "ringkvd cluster node")
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([env.ringkv, "-s", f"{host}:{ports[0]}",
                                "--json", "ring"], capture_output=True,
                               text=True)
            try:
                owners = [m for m in json.loads(r.stdout)["nodes"]
                          if m.get("vnodes", 0) > 0]
            except (ValueError, KeyError, TypeError):
                owners = []
            if len(owners) == i + 1:
                break
            time.sleep(0.1)
        else:
            return None, (f"skipped: ringkvd {i + 1} did not become a ring "
                          "owner in 30 s")
    # Wait until the first node sees every member alive.
    deadline = time.time() + 30
    while time.time() < deadline:
        r = subprocess.run([env.ringkv, "-s", f"{host}:{ports[0]}", "--json",
                            "info"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.count('"alive"') >= n:
            break
        time.sleep(0.2)
    else:
        return None, "skipped: the ringkv cluster did not form in 30 s"
    return Server(f"ringkv x{n} RF={rf}", "ringkv", procs,
                  [f"{host}:{p}" for p in ports]), None


def redis_cli(host, port, *args, check=True):
    r = subprocess.run(["redis-cli", "-h", host, "-p", str(port)] + list(args),
                       capture_output=True, text=True, timeout=60)
    if check and r.returncode != 0:
        raise SystemExit(f"compare: redis-cli {' '.join(args)}: {r.stderr}")
    return r.stdout


def start_redis(env, name, port, persistence="none", cluster=False):
    """persistence: "none" (no RDB, no AOF) or "aof-everysec"."""
    host = env.host
    d = os.path.join(env.tmp, name)
    os.makedirs(d, exist_ok=True)
    argv = ["redis-server", "--bind", host, "--port", str(port),
            "--protected-mode", "no", "--daemonize", "no", "--dir", d,
            "--save", "", "--logfile", "", "--loglevel", "warning"]
    if persistence == "aof-everysec":
        argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
    else:
        argv += ["--appendonly", "no"]
    if cluster:
        # Connections from a node on 127.x.y.z would otherwise leave from
        # 127.0.0.1, and its peers would gossip an address it does not
        # listen on: the cluster never forms.
        argv += ["--bind-source-addr", host, "--cluster-announce-ip", host]
        # Replicas sync at once instead of after the default 5 s pause
        # (a WAIT issued before then blocks until it ends).
        argv += ["--repl-diskless-sync-delay", "0"]
        argv += ["--cluster-enabled", "yes", "--cluster-config-file",
                 os.path.join(d, "nodes.conf"), "--cluster-node-timeout",
                 "5000"]
    p = PROCS.start(name, argv, os.path.join(env.tmp, f"{name}.log"),
                    env.server_cpu)
    wait_port(host, port, p, name)
    deadline = time.time() + 20
    while redis_cli(host, port, "ping", check=False).strip() != "PONG":
        if time.time() > deadline:
            raise SystemExit(f"compare: {name} does not answer PING")
        time.sleep(0.05)
    return Server(name, "redis", [p], [f"{host}:{port}"])


def start_redis_cluster(env, masters=3, replicas=1):
    host = env.host
    n = masters * (1 + replicas)
    ports = [7001 + i for i in range(n)]
    nodes = [start_redis(env, f"redis-c{i}", port, cluster=True)
             for i, port in enumerate(ports)]
    r = subprocess.run(["redis-cli", "--cluster", "create"] +
                       [f"{host}:{p}" for p in ports] +
                       ["--cluster-replicas", str(replicas), "--cluster-yes"],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise SystemExit("compare: redis-cli --cluster create failed:\n" +
                         r.stdout + r.stderr)
    # Every node must agree the cluster is up and every replica must be
    # attached and synced, or WAIT 1 0 blocks until it is.
    deadline = time.time() + 60
    while True:
        ok = all("cluster_state:ok" in redis_cli(host, p, "cluster", "info")
                 for p in ports)
        if ok:
            linked = 0
            for p in ports:
                info = redis_cli(host, p, "info", "replication")
                if ("role:master" in info and "connected_slaves:1" in info
                        and "state=online" in info):
                    linked += 1
            if linked == masters:
                break
        if time.time() > deadline:
            raise SystemExit("compare: Redis Cluster did not come up in 60 s")
        time.sleep(0.25)
    procs = [s.procs[0] for s in nodes]
    return Server(f"Redis Cluster {masters}+{masters * replicas}", "redis",
                  procs, [f"{host}:{p}" for p in ports])


def start_etcd_cluster(env, n=3):
    """An n-member etcd cluster on loopback, as its docs set one up
    (static bootstrap), each member's WAL fsync'd as etcd always does."""
    host = env.host
    cports = [23791 + i for i in range(n)]
    pports = [23801 + i for i in range(n)]
    initial = ",".join(f"e{i}=http://{host}:{pp}" for i, pp in enumerate(pports))
    procs = []
    for i in range(n):
        name = f"etcd-{i}"
        curl, purl = f"http://{host}:{cports[i]}", f"http://{host}:{pports[i]}"
        argv = ["etcd", "--name", f"e{i}",
                "--data-dir", os.path.join(env.tmp, f"{name}-data"),
                "--listen-client-urls", curl, "--advertise-client-urls", curl,
                "--listen-peer-urls", purl,
                "--initial-advertise-peer-urls", purl,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "ringkv-compare",
                "--logger", "zap", "--log-level", "warn"]
        procs.append(PROCS.start(name, argv,
                                 os.path.join(env.tmp, f"{name}.log"),
                                 env.server_cpu))
    for p, port in zip(procs, cports):
        wait_port(host, port, p, "etcd member")
    endpoints = ",".join(f"http://{host}:{p}" for p in cports)
    deadline = time.time() + 60
    while True:
        r = subprocess.run(["etcdctl", "--endpoints", endpoints,
                            "endpoint", "health"], capture_output=True,
                           text=True, env=dict(os.environ, ETCDCTL_API="3"),
                           timeout=30)
        if r.returncode == 0:
            break
        if time.time() > deadline:
            raise SystemExit("compare: the etcd cluster was not healthy in "
                             "60 s:\n" + r.stdout + r.stderr)
        time.sleep(0.25)
    return Server(f"etcd x{n}", "etcd", procs,
                  [f"{host}:{p}" for p in cports])


# ---------------------------------------------------------------------------
# clients


class RunError(Exception):
    pass


def run_bench(env, server, extra, timeout=600):
    """One ringkv-bench run against server, in the protocol of its kind.
    Returns a sample dict."""
    argv = [env.bench, "-s", ",".join(server.addrs), "--json", "-q",
            "--keys", str(env.args.keys), "-d", str(env.args.value_size)]
    if server.kind == "redis":
        argv.append("--resp")
    elif server.kind == "etcd":
        argv.append("--etcd")
    argv += extra
    t0 = server.cpu_ticks()
    r = subprocess.run(env.client(argv), capture_output=True, text=True,
                       timeout=timeout)
    t1 = server.cpu_ticks()
    if r.returncode not in (0, 1):
        dead = server.deaths()
        raise RunError(f"ringkv-bench {' '.join(extra)} against "
                       f"{server.name}: {r.stderr.strip()}" +
                       "".join(f"\n  {d}" for d in dead))
    d = json.loads(r.stdout)
    if "requests" not in d:  # --warmup-only
        return d
    ops = d["requests"]
    return {
        "ops_per_sec": d["ops_per_sec"],
        "p50_us": d["all"]["latency_us"]["p50"],
        "p99_us": d["all"]["latency_us"]["p99"],
        "p999_us": d["all"]["latency_us"]["p99_9"],
        "max_us": d["all"]["latency_us"]["max"],
        "requests": ops,
        "errors": d["errors"],
        "server_cpu_us_per_op": (t1 - t0) / CLK_TCK * 1e6 / ops if ops else 0,
        "client_cpu_us_per_op": d["client_cpu_us_per_op"],
    }


def fill(env, server, keys, cluster=False):
    extra = ["--warmup-only", "-c", str(env.args.connections), "-P", "16",
             "--keys", str(keys)]
    if cluster:
        extra.append("--cluster")
    t = time.time()
    d = run_bench(env, server, extra)
    log(f"  filled {server.name}: {d['warmup']['keys']} keys in "
        f"{time.time() - t:.1f} s")


def run_redis_benchmark(env, server, test, pipeline, n):
    host, port = server.addrs[0].rsplit(":", 1)
    argv = ["redis-benchmark", "-h", host, "-p", port, "-c",
            str(env.args.connections), "-n", str(n), "-d",
            str(env.args.value_size), "-r", str(env.args.keys), "-P",
            str(pipeline), "-t", test, "--csv"]
    t0 = server.cpu_ticks()
    r = subprocess.run(env.client(argv), capture_output=True, text=True,
                       timeout=600)
    t1 = server.cpu_ticks()
    if r.returncode != 0:
        raise RunError(f"redis-benchmark: {r.stderr.strip()}" +
                       "".join(f"\n  {d}" for d in server.deaths()))
    # Redis 7 prints a header ("test","rps","avg_latency_ms",...,
    # "p50_latency_ms",...); Redis 6 only "TEST","rps" rows.
    header = []
    for line in r.stdout.splitlines():
        cols = [c.strip('"') for c in line.strip().split(",")]
        if cols and cols[0] == "test":
            header = cols
            continue
        if cols and cols[0].upper() == test.upper():
            row = dict(zip(header, cols)) if header else {"rps": cols[1]}
            out = {"ops_per_sec": float(row["rps"]),
                   "server_cpu_us_per_op": (t1 - t0) / CLK_TCK * 1e6 / n}
            for src, dst in (("p50_latency_ms", "p50_us"),
                             ("p99_latency_ms", "p99_us")):
                if src in row:
                    out[dst] = float(row[src]) * 1000
            return out
    raise RunError(f"redis-benchmark printed no {test} row: {r.stdout!r}")


# ---------------------------------------------------------------------------
# rows


class Row:
    def __init__(self, key, title, a_name, b_name, a_run, b_run, ref_run=None,
                 skip_a=None, skip_b=None, a_durability="", b_durability=""):
        self.key = key
        self.title = title
        self.a_name, self.b_name = a_name, b_name
        self.a_run, self.b_run, self.ref_run = a_run, b_run, ref_run
        self.skip_a, self.skip_b = skip_a, skip_b
        self.a_durability, self.b_durability = a_durability, b_durability
        self.a, self.b, self.ref = [], [], []
        self.failures = []


def median(samples, field):
    vals = [s[field] for s in samples if field in s]
    return statistics.median(vals) if vals else None


def fmt_int(v):
    return "–" if v is None else f"{v:,.0f}"


def fmt_lat(samples):
    p50, p99 = median(samples, "p50_us"), median(samples, "p99_us")
    if p50 is None:
        return "–"
    return f"{p50:,.0f} / {p99:,.0f}"


def fmt_cpu(samples):
    v = median(samples, "server_cpu_us_per_op")
    return "–" if v is None else f"{v:.2f}"


def run_rows(rows, rounds, ref_rounds=None):
    for r in range(rounds):
        for row in rows:
            for side in ("a", "b", "ref"):
                fn = {"a": row.a_run, "b": row.b_run, "ref": row.ref_run}[side]
                skip = {"a": row.skip_a, "b": row.skip_b, "ref": None}[side]
                if fn is None or skip:
                    continue
                if side == "ref" and ref_rounds is not None and r >= ref_rounds:
                    continue
                try:
                    s = fn()
                except (RunError, subprocess.TimeoutExpired) as e:
                    row.failures.append(f"round {r + 1} {side}: {e}")
                    log(f"  {row.key} {side}: FAILED: {e}")
                    continue
                getattr(row, side).append(s)
                if s.get("errors"):
                    row.failures.append(f"round {r + 1} {side}: "
                                        f"{s['errors']} error replies")
                log(f"  round {r + 1} {row.key} {side:3}: "
                    f"{s['ops_per_sec']:>10,.0f} ops/s  p50 "
                    f"{s.get('p50_us', 0):>8,.0f} us  p99 "
                    f"{s.get('p99_us', 0):>8,.0f} us  server CPU "
                    f"{s['server_cpu_us_per_op']:.2f} us/op")


def paired_ratio(row, field):
    """Median over rounds of A/B, each A next to its B in time: a burst
    of load from elsewhere on the machine hits a pair, not one side."""
    n = min(len(row.a), len(row.b))
    vals = [row.a[i][field] / row.b[i][field] for i in range(n)
            if row.b[i].get(field)]
    return statistics.median(vals) if vals else None


def table(rows):
    head = ("| row | workload | ringkv ops/s | other ops/s | ringkv/other "
            "ops/s | ringkv p50 / p99 µs | other p50 / p99 µs "
            "| ringkv CPU µs/op | other CPU µs/op | ringkv/other CPU/op "
            "| redis-benchmark ops/s (p50 / p99 µs) |")
    lines = [head, "|---|---|" + "---:|" * 9]
    for row in rows:
        a = median(row.a, "ops_per_sec")
        b = median(row.b, "ops_per_sec")
        r_ops = paired_ratio(row, "ops_per_sec")
        r_cpu = paired_ratio(row, "server_cpu_us_per_op")
        if row.skip_a:
            ratio, cpu_ratio = row.skip_a, "–"
        else:
            ratio = f"**{r_ops:.2f}×**" if r_ops else "–"
            cpu_ratio = f"{r_cpu:.2f}×" if r_cpu else "–"
        ref = "–"
        if row.ref:
            ref = (f"{median(row.ref, 'ops_per_sec'):,.0f} "
                   f"({fmt_lat(row.ref)})")
        flag = " (!)" if row.failures else ""
        lines.append(
            f"| {row.key} | {row.title}{flag} | {fmt_int(a)} | {fmt_int(b)} "
            f"| {ratio} | {fmt_lat(row.a)} | {fmt_lat(row.b)} "
            f"| {fmt_cpu(row.a)} | {fmt_cpu(row.b)} | {cpu_ratio} | {ref} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# the stages


def stage_single(env, rows_out):
    a = env.args
    c = str(a.connections)
    dur = ["--duration", f"{a.duration}s", "--no-warmup"]
    log("stage 1: one node — ringkvd (fsync=interval) vs redis-server")
    rk = start_ringkvd(env, "ringkvd", 7400, fsync="interval")
    rd = start_redis(env, "redis", 6379, persistence="none")
    rda = start_redis(env, "redis-aof", 6380, persistence="aof-everysec")
    for s in (rk, rd, rda):
        fill(env, s, a.keys)

    def bench(server, mix, pipeline):
        return lambda: run_bench(env, server, ["-c", c, "-P", str(pipeline),
                                               "--mix", mix] + dur)

    def ref(server, test, pipeline):
        n = int(a.duration * (40000 if pipeline == 1 else 200000))
        return lambda: run_redis_benchmark(env, server, test, pipeline, n)

    rk_dur = "op-log, fsync every 100 ms (fsync=interval, the default)"
    rows = [
        Row("1a", f"GET, c={c}, P=1", "ringkv", "Redis",
            bench(rk, "get", 1), bench(rd, "get", 1),
            ref(rd, "get", 1), a_durability=rk_dur,
            b_durability="none (no RDB, no AOF)"),
        Row("1b", f"PUT / SET, c={c}, P=1", "ringkv", "Redis",
            bench(rk, "put", 1), bench(rd, "put", 1),
            ref(rd, "set", 1), a_durability=rk_dur,
            b_durability="none (no RDB, no AOF)"),
        Row("1c", f"GET, c={c}, P=16", "ringkv", "Redis",
            bench(rk, "get", 16), bench(rd, "get", 16),
            ref(rd, "get", 16), a_durability=rk_dur,
            b_durability="none (no RDB, no AOF)"),
        Row("1d", f"PUT / SET, c={c}, P=16", "ringkv", "Redis",
            bench(rk, "put", 16), bench(rd, "put", 16),
            ref(rd, "set", 16), a_durability=rk_dur,
            b_durability="none (no RDB, no AOF)"),
        Row("1e", f"PUT / SET, c={c}, P=1, both durable", "ringkv",
            "Redis AOF", bench(rk, "put", 1), bench(rda, "put", 1),
            ref(rda, "set", 1), a_durability=rk_dur,
            b_durability="AOF, appendfsync everysec"),
        Row("1f", f"PUT / SET, c={c}, P=16, both durable", "ringkv",
            "Redis AOF", bench(rk, "put", 16),
            bench(rda, "put", 16), ref(rda, "set", 16),
            a_durability=rk_dur, b_durability="AOF, appendfsync everysec"),
    ]
    # redis-benchmark is a reference, not half of a pair: --quick runs it
    # once per row.
    run_rows(rows, a.rounds, ref_rounds=1 if a.quick else None)
    rows_out += rows
    for s in (rk, rd, rda):
        s.stop()


def cluster_bench(env, rk):
    """A maker of runs against the ringkv cluster rk: (mix, consistency)
    -> one run at c connections, P=1, smart routing on."""
    a = env.args
    dur = ["--duration", f"{a.duration}s", "--no-warmup"]

    def make(mix, cl):
        return lambda: run_bench(env, rk, ["-c", str(a.connections), "-P",
                                           "1", "--mix", mix,
                                           "--consistency", cl,
                                           "--smart", "on"] + dur)
    return make


def stage_cluster(env, rows_out):
    a = env.args
    c = str(a.connections)
    dur = ["--duration", f"{a.duration}s", "--no-warmup"]
    log("stage 2: Redis Cluster (3 masters + 3 replicas) vs ringkv 3 nodes RF=3")
    rk, why = start_ringkv_cluster(env, 3, 3)
    rc = start_redis_cluster(env)
    fill(env, rc, a.keys, cluster=True)
    if rk:
        fill(env, rk, a.keys)

    # ringkv routes each key to a replica (libringkv's default), as
    # --cluster sends each Redis key to its master.
    rk_bench = cluster_bench(env, rk)

    def rc_bench(mix, wait):
        extra = ["-c", c, "-P", "1", "--mix", mix, "--cluster"] + dur
        if wait:
            extra += ["--wait", "1:0"]
        return lambda: run_bench(env, rc, extra)

    rows = [
        Row("2a", f"PUT QUORUM vs SET + WAIT 1 0, c={c}, P=1",
            "ringkv x3 RF=3", "Redis Cluster",
            rk_bench("put", "quorum") if rk else None, rc_bench("put", True),
            skip_a=why, a_durability="op-log fsync=interval on 2 of 3 replicas",
            b_durability="in memory on master + 1 replica (no AOF)"),
        Row("2b", f"GET QUORUM vs GET, c={c}, P=1", "ringkv x3 RF=3",
            "Redis Cluster", rk_bench("get", "quorum") if rk else None,
            rc_bench("get", False), skip_a=why),
    ]
    run_rows(rows, a.rounds)
    rows_out += rows
    rc.stop()
    if rk:
        rk.stop()


def stage_etcd(env, rows_out):
    a = env.args
    c = str(a.connections)
    dur = ["--duration", f"{a.duration}s", "--no-warmup"]
    log("stage 3: etcd 3 members vs ringkv 3 nodes RF=3 (CAS, linearizable "
        "reads)")
    rk, why = start_ringkv_cluster(env, 3, 3)
    et = start_etcd_cluster(env)
    fill(env, et, a.keys)
    if rk:
        fill(env, rk, a.keys)

    # Smart routing sends each key to its primary, where its Paxos
    # proposals are queued (libringkv does the same).
    rk_bench = cluster_bench(env, rk)

    def et_bench(mix):
        return lambda: run_bench(env, et, ["-c", c, "-P", "1", "--mix", mix]
                                 + dur)

    rows = [
        Row("3a", f"CAS vs etcd txn (compare value, put), c={c}, P=1",
            "ringkv x3 RF=3", "etcd x3",
            rk_bench("cas", "serial") if rk else None, et_bench("cas"),
            skip_a=why,
            a_durability="Paxos acceptor state fdatasync'd on a quorum",
            b_durability="Raft WAL fsync'd on a quorum"),
        Row("3b", f"GET SERIAL vs etcd linearizable range, c={c}, P=1",
            "ringkv x3 RF=3", "etcd x3",
            rk_bench("get", "serial") if rk else None, et_bench("get"),
            skip_a=why),
    ]
    run_rows(rows, a.rounds)
    rows_out += rows
    et.stop()
    if rk:
        rk.stop()


def stage_memory(env):
    a = env.args
    n = a.memory_keys
    log(f"memory: {n:,} keys of 16 bytes with 100-byte values")
    out = {}
    for kind in ("ringkv", "redis"):
        if kind == "ringkv":
            s = start_ringkvd(env, "ringkvd-mem", 7401)
        else:
            s = start_redis(env, "redis-mem", 6381)
        time.sleep(0.5)
        before = s.rss()
        extra_info = {}
        if kind == "redis":
            host, port = s.addrs[0].rsplit(":", 1)
            used0 = redis_used_memory(host, port)
        argv = ["--warmup-only", "-c", str(a.connections), "-P", "16",
                "--keys", str(n), "--key-size", "16", "-d", "100"]
        d = run_bench(env, s, argv)
        time.sleep(2.0)  # let ringkvd's log writer drain its buffers
        after = s.rss()
        if kind == "redis":
            extra_info["used_memory_per_key"] = (
                redis_used_memory(host, port) - used0) / n
        out[kind] = {"keys": d["warmup"]["keys"], "rss_before": before,
                     "rss_after": after,
                     "bytes_per_key": (after - before) / n, **extra_info}
        log(f"  {kind}: RSS {before / 2**20:.1f} MiB -> "
            f"{after / 2**20:.1f} MiB, {(after - before) / n:.1f} B/key")
        s.stop()
    return out


def redis_used_memory(host, port):
    for line in redis_cli(host, port, "info", "memory").splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":")[1])
    return 0


# ---------------------------------------------------------------------------


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    osname = "?"
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    osname = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "os": osname,
            "kernel": platform.release()}


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True,
                              timeout=10).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


def main():
    p = argparse.ArgumentParser(
        prog="bench/compare",
        description="ringkv side by side with Redis and etcd on loopback "
                    "(issue 8).")
    p.add_argument("--build", default=os.path.join(ROOT, "build"),
                   help="ringkv build directory (default build/)")
    p.add_argument("--rounds", type=int, default=3,
                   help="A B rounds per row (default 3)")
    p.add_argument("--duration", type=float, default=3.0,
                   help="seconds per measured run (default 3)")
    p.add_argument("--quick", action="store_true",
                   help="about a minute: 1 s runs, redis-benchmark once "
                        "per row, 200k keys for the memory figure")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--keys", type=int, default=100000,
                   help="key space of the throughput rows (default 100000)")
    p.add_argument("--memory-keys", type=int, default=1000000)
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin servers to CPU 0 and clients to CPU 1")
    p.add_argument("--skip-cluster", action="store_true")
    p.add_argument("--skip-etcd", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--only", choices=["single", "cluster", "etcd", "memory"],
                   help="run one stage")
    p.add_argument("--json", metavar="FILE",
                   help="also write every sample to FILE")
    p.add_argument("--no-install", action="store_true",
                   help="(bench/compare wrapper) skip apt-get")
    args = p.parse_args()
    if args.quick:
        args.duration = min(args.duration, 1.0)
        args.memory_keys = min(args.memory_keys, 200000)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    for tool in ("redis-server", "redis-cli", "redis-benchmark", "etcd",
                 "etcdctl"):
        if not shutil.which(tool):
            raise SystemExit(f"compare: {tool} not found; run bench/compare "
                             "(it installs redis-server, redis-tools, "
                             "etcd-server and etcd-client)")

    atexit.register(cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    env = Env(args)
    m = machine()
    started = datetime.datetime.now()
    load0 = os.getloadavg()
    log(f"compare: {m['cpu']}, {m['cores']} cores, {m['os']}; "
        f"servers on CPU {env.server_cpu}, clients on CPU {env.client_cpu}; "
        f"loopback host {env.host}; {args.rounds} rounds of "
        f"{args.duration:g} s")

    rows = []
    memory = None
    if args.only in (None, "single"):
        stage_single(env, rows)
    if args.only in (None, "cluster") and not args.skip_cluster:
        stage_cluster(env, rows)
    if args.only in (None, "etcd") and not args.skip_etcd:
        stage_etcd(env, rows)
    if args.only in (None, "memory") and not args.skip_memory:
        memory = stage_memory(env)
    load1 = os.getloadavg()

    print()
    print(f"ringkv vs Redis and etcd, {started:%Y-%m-%d %H:%M}; {m['cpu']}, "
          f"{m['cores']} cores, {m['os']}, kernel {m['kernel']}")
    print(f"{version([env.ringkvd, '--version'])}; "
          f"{version(['redis-server', '--version'])}; "
          f"{version(['etcd', '--version'])}")
    print(f"{args.connections} connections, {args.value_size}-byte values, "
          f"{args.keys:,} keys of 16 bytes (uniform), medians of "
          f"{args.rounds} rounds of {args.duration:g} s, A B alternating "
          "(ratios: median of the per-round A/B ratios); "
          f"servers pinned to CPU {env.server_cpu}, client to CPU "
          f"{env.client_cpu}; load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after")
    print()
    print(table(rows))
    print()
    groups = {}
    for row in rows:
        for name, dur in ((row.a_name, row.a_durability),
                          (row.b_name, row.b_durability)):
            if dur:
                groups.setdefault((name, dur), []).append(row.key)
    if groups:
        print("Durability of each side:")
    for (name, dur), keys in groups.items():
        print(f"- {name} (rows {', '.join(keys)}): {dur}")
    for row in rows:
        for f in row.failures:
            print(f"(!) {row.key}: {f}")
    if memory:
        print()
        print(f"Memory, {args.memory_keys:,} keys of 16 bytes with 100-byte "
              "values (VmRSS after load minus before):")
        rk, rd = memory["ringkv"], memory["redis"]
        print(f"- ringkv: {rk['bytes_per_key']:.1f} bytes/key "
              f"(RSS {rk['rss_before'] / 2**20:.1f} -> "
              f"{rk['rss_after'] / 2**20:.1f} MiB)")
        print(f"- Redis:  {rd['bytes_per_key']:.1f} bytes/key "
              f"(RSS {rd['rss_before'] / 2**20:.1f} -> "
              f"{rd['rss_after'] / 2**20:.1f} MiB; INFO used_memory "
              f"{rd.get('used_memory_per_key', 0):.1f} bytes/key)")
        print(f"- ratio ringkv/Redis: {rk['bytes_per_key'] / rd['bytes_per_key']:.2f}×")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "started": started.isoformat(),
                       "load": [load0, load1], "args": vars(args),
                       "rows": [{"key": r.key, "title": r.title,
                                 "a": r.a, "b": r.b, "ref": r.ref,
                                 "skip": r.skip_a, "failures": r.failures}
                                for r in rows],
                       "memory": memory}, f, indent=1)
    failed = any(r.failures for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
