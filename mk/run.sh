#!/bin/sh
#
# run.sh -- what "make run" does once the programs are built: prepare the
# few things the daemon needs from the system and run it in the foreground
# from the build tree, logging to the terminal (Ctrl-C stops it).
#
#   RUN_CONF=FILE   configuration to use (default etc/smtpd.conf: loopback
#                   only, port 25, local delivery to /var/mail/USER, no
#                   relaying)
#   RUN_FLAGS=...   extra smtpd flags, e.g. RUN_FLAGS=-v for traces
#
# Needs root: the daemon binds port 25, chroots and drops to _smtpd/_smtpq.

set -u

cd "$(dirname "$0")/.." || exit 1

CONF=${RUN_CONF:-etc/smtpd.conf}
SMTPD=./smtpd/smtpd

die()
{
	echo "make run: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (the daemon binds port 25," \
    "chroots and drops privileges to _smtpd/_smtpq)"
[ -x "$SMTPD" ] || die "$SMTPD is not built (run make first)"
[ -r "$CONF" ] || die "cannot read configuration $CONF"

# add_user NAME: a system account with no home and no shell, and a group of
# its own (reusing a group of that name if one exists already).
add_user()
{
	id "$1" >/dev/null 2>&1 && return 0
	if getent group "$1" >/dev/null 2>&1; then
		group="-g $1"
	else
		group="-U"
	fi
	# shellcheck disable=SC2086 # $group is two words on purpose
	useradd -r -M -d /var/empty -s /usr/sbin/nologin \
	    -c "Posthaste $1" $group "$1" || die "cannot create user $1"
	echo "make run: created system user $1"
}

add_user _smtpd
add_user _smtpq

# The chroot of the unprivileged processes: empty, root's, not writable.
if [ ! -d /var/empty ]; then
	mkdir -p /var/empty || die "cannot create /var/empty"
	chown root:root /var/empty
	chmod 0755 /var/empty
	echo "make run: created /var/empty"
fi

# The default configuration reads /etc/aliases, which a machine without an
# MTA does not have: install the sample (RFC 2142 role names to root).
if grep -q '^[^#]*file:/etc/aliases' "$CONF" && [ ! -e /etc/aliases ]; then
	install -m 0644 etc/aliases /etc/aliases ||
	    die "cannot install /etc/aliases"
	echo "make run: installed /etc/aliases from etc/aliases"
fi

# listening_on PORT: print "ADDR:PORT by PROGRAM" for each local TCP
# listener on PORT that would keep us from binding the loopback address
# (loopback itself or a wildcard, IPv4 or IPv6), from /proc/net/tcp*
# (no ss/netstat on a minimal system).
listening_on()
{
	hexport=$(printf '%04X' "$1")
	for table in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$table" ] || continue
		# local_address is HEXADDR:HEXPORT, st 0A is LISTEN, inode is $10
		awk -v port="$hexport" 'NR > 1 && $4 == "0A" {
			split($2, a, ":")
			if (a[2] != port)
				next
			addr = a[1]
			if (addr == "0100007F")
				name = "127.0.0.1"
			else if (addr == "00000000")
				name = "0.0.0.0"
			else if (addr == "00000000000000000000000000000000")
				name = "[::]"
			else if (addr == "00000000000000000000000001000000")
				name = "[::1]"
			else
				next
			print name, $10
		}' "$table"
	done | while read -r name inode; do
		echo "$name:$1 by $(socket_owner "$inode")"
	done
}

# socket_owner INODE: "PROGRAM (pid N)" holding the socket, or "?"
socket_owner()
{
	for fd in /proc/[0-9]*/fd/*; do
		if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$1]" ]; then
			pid=${fd#/proc/}
			pid=${pid%%/*}
			echo "$(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid)"
			return
		fi
	done
	echo "?"
}

# The ports this configuration listens on ("listen on X port N"; 25 when
# no port is given).
ports=$(awk '$1 == "listen" && $2 == "on" {
		p = 25
		for (i = 3; i < NF; i++)
			if ($i == "port")
				p = $(i + 1)
		print p
	}' "$CONF" | sort -u)

busy=
for port in $ports; do
	case $port in
	*[!0-9]*|'') continue ;;
	esac
	taken=$(listening_on "$port")
	if [ -n "$taken" ]; then
		busy="$busy
	$taken"
	fi
done
if [ -n "$busy" ]; then
	cat >&2 <<EOF
make run: a port in $CONF is already taken:$busy

Another mail server (postfix, exim4, opensmtpd...) is probably running.
Either stop it (e.g. systemctl stop postfix), or run Posthaste on another
port with a configuration of your own, for example:

	sed 's/^listen on localhost\$/listen on 127.0.0.1 port 2525/' \\
	    etc/smtpd.conf > /tmp/smtpd.conf
	make run RUN_CONF=/tmp/smtpd.conf
EOF
	exit 1
fi

echo "make run: $SMTPD -d ${RUN_FLAGS:+$RUN_FLAGS }-f $CONF (Ctrl-C to stop)"
# shellcheck disable=SC2086 # RUN_FLAGS is a list of flags
exec "$SMTPD" -d ${RUN_FLAGS:-} -f "$CONF"
