#!/bin/sh
#
# check-fresh.sh -- "make check-fresh": run the README's two set-up commands
# on a freshly bootstrapped Debian 12, as a new user would, and print the
# closing line of "make check" there.
#
#   1. debootstrap --variant=minbase bookworm into FRESH_DIR (from the
#      Debian mirror this machine's apt uses), plus make and git: nothing
#      else.  /etc/hosts, /etc/hostname and the apt sources are written as
#      the Debian installer writes them; /proc, /sys, /dev and /run are
#      mounted.
#   2. the committed tree (git clone of HEAD) goes to /root/posthaste in
#      it: a checkout under root's 0700 home, where root's clones go.
#   3. "make run" there: waits for the 220 banner on 127.0.0.1:25, says
#      EHLO and QUIT, stops it with SIGINT (as Ctrl-C does).
#   4. "make check" there; its output goes to FRESH_DIR/check.log.
#   5. residue: the users, the dovecot service, /var/tmp/posthaste-test
#      must be as before "make check".
#
# Prints the time of each step and ends with make check's closing line.
# Needs root, the network to the Debian mirror, and port 25 on 127.0.0.1
# free (the chroot shares this machine's network).  Not part of "make
# check" or CI: it bootstraps a whole system and takes 15-25 minutes.
#
#   FRESH_DIR=/var/tmp/posthaste-fresh   where the root goes (removed first)
#   FRESH_KEEP=1                         keep the root afterwards
#   FRESH_MIRROR=URL                     another Debian mirror

set -u

cd "$(dirname "$0")/.." || exit 1
TREE=$(pwd)
FRESH_DIR=${FRESH_DIR:-/var/tmp/posthaste-fresh}
ROOT=$FRESH_DIR/root
SUITE=bookworm

die()
{
	echo "check-fresh: $*" >&2
	exit 1
}

say()
{
	echo "check-fresh: $*"
}

[ "$(id -u)" -eq 0 ] || die "must run as root (debootstrap, chroot)"
git -C "$TREE" rev-parse HEAD >/dev/null 2>&1 ||
    die "$TREE is not a git checkout (the committed tree is what is tried)"

# The mirror apt uses here: the first http(s) URI of a Debian suite.
mirror()
{
	[ -n "${FRESH_MIRROR:-}" ] && { echo "$FRESH_MIRROR"; return; }
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
	    /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		sed -n -e 's/^deb  *\(\[[^]]*\] *\)\{0,1\}\(https\{0,1\}:[^ ]*debian\/\{0,1\}\) .*/\2/p' \
		    -e 's/^URIs: *\(https\{0,1\}:[^ ]*debian\/\{0,1\}\)$/\1/p' "$f"
	done | grep -v security | head -n 1 | grep . ||
	    echo http://deb.debian.org/debian
}
MIRROR=$(mirror)

if ! command -v debootstrap >/dev/null 2>&1; then
	say "installing debootstrap"
	apt-get -q update >/dev/null &&
	    DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
	    --no-install-recommends debootstrap >/dev/null ||
	    die "cannot install debootstrap"
fi

# Nothing may listen on port 25 here: "make run" binds it in the chroot.
if python3 -c 'import socket,sys; s=socket.socket(); s.settimeout(2); sys.exit(s.connect_ex(("127.0.0.1",25)) != 0)' \
    2>/dev/null; then
	die "something listens on 127.0.0.1:25 already; stop it first"
fi

mounted=
cleanup()
{
	# every process whose root is the chroot (make run, a leftover daemon)
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) || continue
		[ "$r" = "$ROOT" ] && kill -9 "${p#/proc/}" 2>/dev/null
	done
	if [ -n "$mounted" ]; then
		for m in run dev/pts dev sys proc; do
			umount -l "$ROOT/$m" 2>/dev/null
		done
		umount -l "$ROOT" 2>/dev/null
	fi
	if [ "${FRESH_KEEP:-0}" != 1 ]; then
		rm -rf "$ROOT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

elapsed()
{
	echo $(($(date +%s) - $1))
}

# 1. a minimal Debian 12 ----------------------------------------------------
rm -rf "$ROOT"
mkdir -p "$FRESH_DIR" || die "cannot create $FRESH_DIR"
t=$(date +%s)
say "debootstrap --variant=minbase $SUITE from $MIRROR"
debootstrap --variant=minbase --include=make,git "$SUITE" "$ROOT" \
    "$MIRROR" >"$FRESH_DIR/debootstrap.log" 2>&1 ||
    { tail -20 "$FRESH_DIR/debootstrap.log"; die "debootstrap failed"; }
t_boot=$(elapsed "$t")

cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian*}/debian-security $SUITE-security main
EOF
echo fresh >"$ROOT/etc/hostname"
cat >"$ROOT/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	fresh
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null

# The root a mount point of its own, as / is on a machine: tests that
# unshare a mount namespace make / private, which needs a mount.
mount --bind "$ROOT" "$ROOT" &&
    mount -t proc proc "$ROOT/proc" && mount -t sysfs sys "$ROOT/sys" &&
    mount --bind /dev "$ROOT/dev" && mount --bind /dev/pts "$ROOT/dev/pts" &&
    mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run" || die "cannot mount"
mounted=1

in_root()
{
	chroot "$ROOT" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
	    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    /bin/sh -c "$1"
}

# 2. the tree under /root ----------------------------------------------------
git clone -q "$TREE" "$ROOT/root/posthaste" || die "git clone failed"
chmod 0700 "$ROOT/root"
say "tree: $(git -C "$TREE" log -1 --format='%h %s' | cut -c1-70)"

# 3. make run ----------------------------------------------------------------
t=$(date +%s)
say "make run (installs what it needs, then serves port 25)"
in_root 'cd /root/posthaste && exec make run' >"$FRESH_DIR/run.log" 2>&1 &
run_pid=$!
banner=
for _ in $(seq 1 900); do
	kill -0 "$run_pid" 2>/dev/null || break
	banner=$(python3 - <<'EOF' 2>/dev/null
import socket
s = socket.create_connection(("127.0.0.1", 25), timeout=5)
f = s.makefile("rb")
b = f.readline()
s.sendall(b"EHLO fresh.test\r\n")
while True:
    ln = f.readline()
    if not ln or ln[3:4] != b"-":
        break
s.sendall(b"QUIT\r\n")
f.readline()
print(b.decode().strip())
EOF
	) && [ -n "$banner" ] && break
	banner=
	sleep 1
done
t_run=$(elapsed "$t")
if [ -n "$banner" ]; then
	say "make run: served after ${t_run}s: $banner"
	run_ok=1
else
	run_ok=0
	say "make run: FAILED, no banner on port 25 after ${t_run}s:"
	tail -30 "$FRESH_DIR/run.log"
fi
# Ctrl-C: SIGINT to make and the daemon it runs
for p in /proc/[0-9]*; do
	r=$(readlink "$p/root" 2>/dev/null) || continue
	[ "$r" = "$ROOT" ] && kill -INT "${p#/proc/}" 2>/dev/null
done
for _ in $(seq 1 30); do
	kill -0 "$run_pid" 2>/dev/null || break
	sleep 1
done
if kill -0 "$run_pid" 2>/dev/null; then
	say "make run: still running 30 s after SIGINT"
	run_ok=0
fi
wait "$run_pid" 2>/dev/null

# 4. make check --------------------------------------------------------------
cp "$ROOT/etc/passwd" "$FRESH_DIR/passwd.before"
t=$(date +%s)
say "make check (log: $FRESH_DIR/check.log)"
in_root 'cd /root/posthaste && make check' >"$FRESH_DIR/check.log" 2>&1
check_rc=$?
t_check=$(elapsed "$t")
sed -n '/^==> summary/,$p' "$FRESH_DIR/check.log"
grep '^FAIL \|^SKIP ' "$FRESH_DIR/check.log" | sort | uniq -c | head -50

# 5. residue -----------------------------------------------------------------
residue=
new_users=$(cut -d: -f1 "$ROOT/etc/passwd" | sort |
    comm -13 "$(cut -d: -f1 "$FRESH_DIR/passwd.before" | sort >"$FRESH_DIR/u" &&
    echo "$FRESH_DIR/u")" -)
[ -n "$new_users" ] && residue="$residue users:$(echo $new_users)"
ls "$ROOT"/etc/systemd/system/*.wants/dovecot* >/dev/null 2>&1 &&
    residue="$residue dovecot-enabled"
[ -e "$ROOT/var/tmp/posthaste-test" ] && residue="$residue /var/tmp/posthaste-test"
if [ -n "$residue" ]; then
	say "residue after make check:$residue"
else
	say "residue after make check: none"
fi

say "times: debootstrap ${t_boot}s, make run ${t_run}s, make check ${t_check}s"
closing=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$FRESH_DIR/check.log" |
    tail -n 1)
[ -n "$closing" ] || closing="make check printed no closing line (exit $check_rc)"
echo "fresh Debian 12: $closing"
[ "$check_rc" -eq 0 ] && [ "$run_ok" -eq 1 ] && [ -z "$residue" ]
