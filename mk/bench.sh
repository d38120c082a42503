#!/bin/sh
# mk/bench.sh -- what `make bench` runs: Posthaste and Postfix measured by
# ../shared/bench in the same run on this machine, then their ratios.
#
#   SCENARIOS="local relay"     which scenarios; "idle" holds 10 000 idle
#                               sessions open (mk/bench_idle.py) and prints
#                               the daemon's memory per session
#   MATRIX="20:10000:1024"      sessions:messages:size cells (bench/run.sh)
#   REPS=3                      repetitions per cell, alternating
#                               between the servers (medians are
#                               reported, and the ratio of each pair:
#                               one run on this VM varies by a fifth)
#   DATAFS=1                    put state on the harness's journaled ext4
#                               loop file system (the production-like case)
#   BENCH_DIR=../shared/bench   the harness
#   POSTFIX=0                   skip the Postfix runs (quick iterations;
#                               no ratios then)
#
# Results: regress/results/bench.jsonl (one JSON line per run) and a table.
set -eu
cd "$(dirname "$0")/.."
TOP=$(pwd)
BENCH_DIR=${BENCH_DIR:-$TOP/../shared/bench}
SCENARIOS=${SCENARIOS:-"local relay"}
export MATRIX=${MATRIX:-"20:10000:1024"}
export REPS=${REPS:-3}
OUT=$TOP/regress/results/bench.jsonl
STATE=/tmp/bench-posthaste
PORT=10027

[ "$(id -u)" = 0 ] || { echo "make bench: run as root" >&2; exit 1; }
[ -x "$BENCH_DIR/run.sh" ] || {
	echo "make bench: no harness at $BENCH_DIR" >&2; exit 1; }
mkdir -p "$TOP/regress/results"
"$BENCH_DIR/setup.sh" >/dev/null
if [ "${DATAFS:-1}" = 1 ]; then
	"$BENCH_DIR/datafs.sh" up >/dev/null
	# the spool too, like the anchors' queues: same file system, same rules
	STATE=/tmp/bench-fs/bench-posthaste
fi
# the daemon's users and directories, as the tests create them
getent passwd _smtpd >/dev/null || useradd -r -M -d /var/empty \
    -s /usr/sbin/nologin _smtpd
getent passwd _smtpq >/dev/null || useradd -r -M -d /var/empty \
    -s /usr/sbin/nologin _smtpq
mkdir -p /var/empty

mkdir -p "$STATE"
cat > "$STATE/smtpd.conf" <<EOF
spool "$STATE/spool"
socket "$STATE/smtpd.sock"
listen on 127.0.0.1 port $PORT
action "local" maildir "~/Maildir"
action "relay" relay host "smtp://127.0.0.1:10040"
match from any for domain "bench.test" action "local"
match from local for domain "relay.test" action "relay"
EOF
cp "$TOP/obj/bin/smtpd" "$STATE/smtpd"

: > "$OUT.new"
for sc in $SCENARIOS; do
	if [ "$sc" = idle ]; then
		# the harness stops at 5000 sessions; this goes to 10 000
		sed -e 's/^listen on .*/listen on 127.0.0.1 port 10029/' \
		    "$STATE/smtpd.conf" > "$STATE/idle.conf"
		printf 'smtp max-sessions 20000\nsmtp max-sessions-per-ip 20000\n' \
		    >> "$STATE/idle.conf"
		rm -rf "$STATE/spool"
		"$STATE/smtpd" -d -f "$STATE/idle.conf" -P "$STATE/idle.pid" \
		    >"$STATE/idle.log" 2>&1 &
		pid=$!
		sleep 1
		/usr/bin/python3 "$TOP/mk/bench_idle.py" --port 10029 \
		    --pid "$pid" --sessions "${IDLE_SESSIONS:-10000}" || true
		kill "$pid"
		wait "$pid" 2>/dev/null || true
		continue
	fi
	# Repetitions alternate between the servers (Postfix's first, then
	# ours, then Postfix's second...), as the harness's own run_all.sh
	# does: this VM drifts by a fifth over minutes, and a drift must hit
	# both servers alike, not all of one server's runs.
	rep=1
	while [ "$rep" -le "$REPS" ]; do
		[ "${POSTFIX:-1}" = 0 ] || REPS=1 REP_BASE=$rep \
		    RESULTS=$OUT.new IDLE_RESULTS=$OUT.new \
		    "$BENCH_DIR/run.sh" postfix "$sc" || true
		START_CMD="$STATE/smtpd -d -f $STATE/smtpd.conf \
		    -P $STATE/smtpd.pid >$STATE/log 2>&1 &
		    echo \$! > $STATE/pid" \
		STOP_CMD="kill \$(cat $STATE/pid) 2>/dev/null; sleep 1" \
		RESET_CMD="rm -rf $STATE/spool" \
		REPS=1 REP_BASE=$rep RESULTS=$OUT.new IDLE_RESULTS=$OUT.new \
		PORT=$PORT "$BENCH_DIR/run.sh" custom "$sc" || true
		rep=$((rep + 1))
	done
done
cat "$OUT.new" >> "$OUT"

/usr/bin/python3 - "$OUT.new" <<'EOF'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cells = {}
for r in runs:
    if "delivered_per_s" not in r:
        continue
    key = (r["scenario"], r["sessions"], r["msgs"], r["size"])
    cells.setdefault(key, {}).setdefault(r["server"], []).append(r)
def med(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None
print("%-7s %-16s %10s %10s %7s %12s %12s  %s" % ("scen", "cell",
      "postfix/s", "posthaste/s", "ratio", "pf cpu ms/m", "ph cpu ms/m",
      "ratio of each pair of runs"))
for key, by in sorted(cells.items()):
    pf, ph = by.get("postfix", []), by.get("custom", [])
    a = med([r["delivered_per_s"] for r in pf])
    b = med([r["delivered_per_s"] for r in ph])
    ca = med([r["cpu_s"] * 1000 / r["msgs"] for r in pf])
    cb = med([r["cpu_s"] * 1000 / r["msgs"] for r in ph])
    ratio = "%.2fx" % (b / a) if a and b else "-"
    # the runs of one repetition ran next to each other (see above)
    pfrep = dict((r.get("rep"), r["delivered_per_s"]) for r in pf)
    pairs = ["%.2f" % (r["delivered_per_s"] / pfrep[r.get("rep")])
             for r in ph if pfrep.get(r.get("rep"))]
    print("%-7s %-16s %10s %10s %7s %12s %12s  %s" % (key[0],
          "%d:%d:%d" % key[1:], a, b, ratio,
          "%.2f" % ca if ca is not None else "-",
          "%.2f" % cb if cb is not None else "-", " ".join(pairs)))
EOF
