#!/bin/sh
#
# install.sh DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR LIBEXECDIR
#
# What "make install" does once everything is built (see INSTALL):
#
#   SBINDIR/smtpd, SBINDIR/smtpctl, SBINDIR/makemap, SBINDIR/sendmail
#   BINDIR/mailq, BINDIR/newaliases -> SBINDIR/sendmail (multi-call)
#   MANDIR/man5/*.5, MANDIR/man8/*.8; mailq.8, newaliases.8 -> sendmail.8
#   MANDIR/../doc/posthaste/examples: the shared tables' sample files,
#       fail2ban/{filter.d,jail.d}/posthaste.conf
#   SYSCONFDIR/smtpd.conf, SYSCONFDIR/aliases     (never overwritten)
#   /lib/systemd/system/posthaste.service         (Linux)
#
# and, when installing into the live system as root (DESTDIR empty), the
# users _smtpd and _smtpq, /var/empty and the spool /var/spool/smtpd.
# With a DESTDIR (packaging) only files are staged; the package's own
# scripts create users and directories.  Programs that were not built are
# skipped.  The binaries come from OBJDIR/bin (OBJDIR defaults to obj).

set -eu

if [ $# -ne 6 ]; then
	echo "usage: $0 DESTDIR SBINDIR BINDIR MANDIR SYSCONFDIR LIBEXECDIR" >&2
	exit 2
fi
DESTDIR=$1
SBINDIR=$2
BINDIR=$3
MANDIR=$4
SYSCONFDIR=$5
# shellcheck disable=SC2034 # reserved for helper programs; none yet
LIBEXECDIR=$6

cd "$(dirname "$0")/.."
BIN=${OBJDIR:-obj}/bin

SPOOL=/var/spool/smtpd
# The spool layout of smtpd.c:setup_spool(), which creates and repairs it
# at every start as well: the spool itself root's and only traversable, so
# that the queue, chrooted into it, cannot rename it away; everything inside
# the queue user's alone.  offline/ (mail submitted by sendmail while the
# daemon is down) is world-writable and sticky like /tmp (1777), since
# sendmail has no privileges; see sendmail(8) and smtpd/offline.c.
SPOOL_SUBDIRS="incoming queue corrupt purge"

# Owner and group flags for install(1): only root can give files away, and
# a staged install (DESTDIR) by an ordinary user must still work.
if [ "$(id -u)" -eq 0 ]; then
	ROOT="-o root -g 0"
else
	ROOT=
fi

say()
{
	echo "install: $*"
}

# shellcheck disable=SC2086 # $ROOT is a list of flags
inst_dir()
{
	install -d -m 0755 $ROOT "$DESTDIR$1"
}

# inst_file SRC DST MODE
inst_file()
{
	# shellcheck disable=SC2086
	install -m "$3" $ROOT "$1" "$DESTDIR$2"
	say "$2"
}

# inst_conf SRC DST: a configuration file, never over an existing one
inst_conf()
{
	if [ -e "$DESTDIR$2" ]; then
		say "$2 exists, left alone (new version: $1)"
		return
	fi
	# The samples name /etc; point them at SYSCONFDIR.
	sed "s|/etc/aliases|$SYSCONFDIR/aliases|g" "$1" >"$DESTDIR$2.tmp"
	chmod 0644 "$DESTDIR$2.tmp"
	mv "$DESTDIR$2.tmp" "$DESTDIR$2"
	say "$2"
}

# --- programs ---------------------------------------------------------------

[ -x "$BIN/smtpd" ] || {
	echo "install: $BIN/smtpd is not built; run make first" >&2
	exit 1
}
# A sanitizer build's sandboxes allow more (platform/sandbox_linux.c marks it):
# never install one, whatever OBJDIR says.
for prog in smtpd smtpctl makemap sendmail; do
	if [ -f "$BIN/$prog" ] &&
	    grep -aq POSTHASTE_SAN_SANDBOX_ALLOWANCES "$BIN/$prog"; then
		echo "install: $BIN/$prog is a sanitizer build (SAN=1);" \
		    "refusing to install it" >&2
		exit 1
	fi
done

inst_dir "$SBINDIR"
inst_file "$BIN/smtpd" "$SBINDIR/smtpd" 0555
for prog in smtpctl makemap; do
	if [ -x "$BIN/$prog" ]; then
		inst_file "$BIN/$prog" "$SBINDIR/$prog" 0555
	fi
done
if [ -x "$BIN/sendmail" ]; then
	inst_file "$BIN/sendmail" "$SBINDIR/sendmail" 0555
	# One binary, chosen by argv[0].
	inst_dir "$BINDIR"
	for link in mailq newaliases; do
		ln -sf "$SBINDIR/sendmail" "$DESTDIR$BINDIR/$link"
		say "$BINDIR/$link -> $SBINDIR/sendmail"
	done
fi

# --- manual pages -----------------------------------------------------------

for section in 5 8; do
	for page in man/*."$section"; do
		[ -e "$page" ] || continue
		inst_dir "$MANDIR/man$section"
		inst_file "$page" "$MANDIR/man$section/$(basename "$page")" 0444
	done
done
# mailq and newaliases are sendmail under other names: so are their pages
if [ -e man/sendmail.8 ]; then
	for link in mailq newaliases; do
		ln -sf sendmail.8 "$DESTDIR$MANDIR/man8/$link.8"
		say "$MANDIR/man8/$link.8 -> sendmail.8"
	done
fi

# --- configuration ------------------------------------------------------------

inst_dir "$SYSCONFDIR"
inst_conf etc/smtpd.conf "$SYSCONFDIR/smtpd.conf"
inst_conf etc/aliases "$SYSCONFDIR/aliases"

# the shared tables' samples (smtpd.conf(5), "Shared tables") and the
# Grafana dashboard (smtpd.conf(5), "Metrics"): examples to copy, import
# and edit, never read where they are
DOCDIR=$(dirname "$MANDIR")/doc/posthaste
inst_dir "$DOCDIR/examples"
for f in etc/pgsql.conf etc/pgsql-schema.sql etc/ldap.conf etc/redis.conf \
    etc/grafana-posthaste.json; do
	if [ -e "$f" ]; then
		inst_file "$f" "$DOCDIR/examples/$(basename "$f")" 0644
	fi
done
# fail2ban's filter and jail for our log (smtpd(8) LOGGING), laid out as
# under /etc/fail2ban: an administrator copies them there
for d in filter.d jail.d; do
	if [ -e "etc/fail2ban/$d/posthaste.conf" ]; then
		inst_dir "$DOCDIR/examples/fail2ban/$d"
		inst_file "etc/fail2ban/$d/posthaste.conf" \
		    "$DOCDIR/examples/fail2ban/$d/posthaste.conf" 0644
	fi
done

if [ "$(uname -s)" = Linux ] && [ -e etc/posthaste.service ]; then
	inst_dir /lib/systemd/system
	sed -e "s|/usr/sbin/smtpd|$SBINDIR/smtpd|g" etc/posthaste.service \
	    >"$DESTDIR/lib/systemd/system/posthaste.service.tmp"
	chmod 0644 "$DESTDIR/lib/systemd/system/posthaste.service.tmp"
	mv "$DESTDIR/lib/systemd/system/posthaste.service.tmp" \
	    "$DESTDIR/lib/systemd/system/posthaste.service"
	say "/lib/systemd/system/posthaste.service"
fi

# rc scripts: OpenBSD rc.d(8), FreeBSD rc(8) (the daemon path adjusted)
case $(uname -s) in
OpenBSD)	RCSRC=etc/rc.d/posthaste.openbsd RCDIR=/etc/rc.d ;;
FreeBSD)	RCSRC=etc/rc.d/posthaste.freebsd RCDIR=/usr/local/etc/rc.d ;;
*)		RCSRC= RCDIR= ;;
esac
if [ -n "$RCSRC" ] && [ -e "$RCSRC" ]; then
	inst_dir "$RCDIR"
	sed -e "s|/usr/local/sbin/smtpd|$SBINDIR/smtpd|g" \
	    -e "s|/usr/local/etc/smtpd.conf|$SYSCONFDIR/smtpd.conf|g" \
	    -e "s| /etc/smtpd.conf| $SYSCONFDIR/smtpd.conf|g" "$RCSRC" \
	    >"$DESTDIR$RCDIR/posthaste.tmp"
	chmod 0555 "$DESTDIR$RCDIR/posthaste.tmp"
	mv "$DESTDIR$RCDIR/posthaste.tmp" "$DESTDIR$RCDIR/posthaste"
	say "$RCDIR/posthaste"
fi

# --- the live system: users and directories -------------------------------------

if [ -n "$DESTDIR" ]; then
	say "staged in $DESTDIR; users and spool are left to the package"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	say "not root: create the users _smtpd and _smtpq, /var/empty and" \
	    "$SPOOL by hand (see INSTALL)"
	exit 0
fi

# add_user NAME COMMENT: a system account, no home, no shell, own group
add_user()
{
	if id "$1" >/dev/null 2>&1; then
		return
	fi
	case $(uname -s) in
	Linux)
		if getent group "$1" >/dev/null 2>&1; then
			useradd -r -M -d /var/empty -s /usr/sbin/nologin \
			    -c "$2" -g "$1" "$1"
		else
			useradd -r -M -d /var/empty -s /usr/sbin/nologin \
			    -c "$2" -U "$1"
		fi
		;;
	FreeBSD|DragonFly)
		pw groupshow "$1" >/dev/null 2>&1 || pw groupadd "$1"
		pw useradd "$1" -g "$1" -c "$2" -d /var/empty \
		    -s /usr/sbin/nologin
		;;
	OpenBSD)
		groupinfo -e "$1" || groupadd "$1"
		useradd -g "$1" -c "$2" -d /var/empty -s /sbin/nologin "$1"
		;;
	NetBSD)
		group info -e "$1" || groupadd "$1"
		useradd -g "$1" -c "$2" -d /var/empty -s /sbin/nologin "$1"
		;;
	*)
		echo "install: create the user $1 by hand (see INSTALL)" >&2
		return
		;;
	esac
	say "user $1"
}

add_user _smtpd "Posthaste SMTP daemon"
add_user _smtpq "Posthaste queue"

if [ ! -d /var/empty ]; then
	install -d -m 0755 -o root -g 0 /var/empty
	say "/var/empty"
fi

install -d -m 0711 -o root -g 0 "$SPOOL"
for sub in $SPOOL_SUBDIRS; do
	install -d -m 0700 -o _smtpq -g _smtpq "$SPOOL/$sub"
done
install -d -m 1777 -o _smtpq -g _smtpq "$SPOOL/offline"
say "$SPOOL ($SPOOL_SUBDIRS offline)"

if [ ! -d /var/mail ]; then
	echo "install: warning: no /var/mail; mbox delivery needs it" \
	    "(root:mail 2775, see INSTALL)" >&2
fi

say "done.  Check the configuration with: $SBINDIR/smtpd -n"
if [ -d /run/systemd/system ]; then
	say "then: systemctl daemon-reload && systemctl enable --now posthaste"
fi
