#!/bin/sh
#
# deps.sh -- install the Debian packages Posthaste needs to build and test.
#
# Idempotent: every package is checked with dpkg-query first; when all are
# present this prints nothing and touches nothing.  Otherwise it runs
# "apt-get update" once and installs only the missing packages, without
# recommends and without questions (it is also run by CI, as root, with no
# terminal and no standard input).
#
# What a minimal Debian (debootstrap --variant=minbase) lacks is listed
# too, since recommends are not installed: swaks's TLS and AUTH modules
# (Net::SSLeay, IO::Socket::SSL, Authen::SASL, Digest::HMAC),
# ca-certificates, mandoc for the manual page lint, git, dpkg-dev,
# debhelper and lintian for the package test (which fails on lintian's
# errors; lintian brings groff for the manual page rendering test).
# gdb for gcore(1): test_keys_memory.py dumps the processes' memory to
# prove that no private key is outside the keys process.
# "make check-fresh" proves the list.
#
# python3-dnslib and python3-yaml: the SPF conformance test
# (regress/integration/test_spf_suite.py) reads the openspf suite's YAML
# and serves its zones from regress/integration/dnsserver.py, a loopback
# authoritative DNS server built on dnslib (reused for DKIM keys, DMARC
# and block lists); python3-spf (pyspf, on python3-dnspython) is the
# independent SPF implementation the same test compares generated
# records with.
#
# Mail authentication (issue 18): libpsl-dev and publicsuffix for DMARC's
# organizational domain (libpsl reads Debian's list from
# /usr/share/publicsuffix, never a copy in the tree), zlib1g-dev for the
# gzip'd DMARC aggregate reports, libxml2-utils for xmllint, which checks
# those reports against RFC 7489's schema in the unit tests, and
# python3-authres, an independent RFC 8601 parser that reads back the
# Authentication-Results headers we write (test_authres), and
# libopendmarc2, OpenDMARC's library, an independent DMARC implementation
# that test_dmarc_oracle loads with dlopen(3) to compare record readings
# and verdicts (a test oracle only: nothing of Posthaste links it; it
# brings libspf2-2 along as its own dependency, which we never use);
# rbldnsd, the DNS block list server, which test_dnsbl_rbldnsd starts on
# loopback to check our block list questions against (its own service,
# a DNS server on port 53, is disabled at once, as Dovecot's is).
#
# Dovecot (for the LMTP tests) is installed but never enabled or left
# running: its package enables dovecot.service, which is undone at once.
# So is fail2ban: the logging tests run its fail2ban-regex(1) and filters
# against the daemon's log; its service, which would firewall, stays off.
# pflogsumm (issue 22): test_log_tools.py runs Debian's Postfix log
# summariser on a syslog file the daemon wrote and checks its counts of
# received, delivered, deferred, bounced and rejected messages (a Perl
# script, no service).
#
# The DKIM codec is proven against independent implementations
# (regress/integration/test_dkim_codec.py): python3-dkim (dkimpy, with
# python3-nacl for ed25519 and python3-cryptography for its test keys)
# and opendkim-tools (opendkim-testmsg and libopendkim; the milter package
# opendkim is not needed).  opendkim-testmsg finds keys only in DNS, so
# it runs in a network namespace of its own (unshare from util-linux, ip
# from iproute2) with dnsmasq answering there.
#
# python3-milter (pymilter, built on Sendmail's libmilter): the milter
# codec (common/milter.c) is proven against libmilter by
# regress/integration/test_milter_codec.py, which runs a scripted filter
# on it; the milter tests with real filters use it too (issue 19).
# The milter tests (issue 19) run real Debian filters against the daemon:
# python3-milter (pymilter, on Sendmail's libmilter) for the scripted
# filters in regress/milter/, rspamd (its proxy worker in milter mode,
# started by test_milter_rspamd.py with a minimal configuration of its own;
# it does not need the redis-server its package recommends, which is
# installed for the redis table tests below) and opendkim, the milter daemon
# (signing and verify mode, test_milter_opendkim.py).  The services both
# packages enable stay off: the tests start their own on loopback ports.
#
# libmilter-dev (issue 19): "make bench SCENARIOS=milter" builds its
# no-op milter, regress/milter/noop_milter.c, on Sendmail's libmilter,
# the library the Debian filters are written on, and links its static
# archive (the fixture counts libmilter's reads and writes).  Posthaste's
# own milter client links nothing of it.
#
# stunnel4 (issue 20): "make bench SCENARIOS=tls" puts it in front of
# the harness's smtp-sink as the TLS sink; it logs every handshake as new
# or resumed, which the scenario counts.  Its service stays off.
#
# MTA-STS (issue 20): libcurl4-openssl-dev, libcurl built on OpenSSL (the
# TLS library we already use), for the lookup process's HTTPS fetch of
# policies (lookup/sts.c), on its libevent loop through curl's multi
# interface.
#
# DANE (issue 20): dns-root-data, Debian's DNSSEC root trust anchor
# (/usr/share/dns/root.key), which lookup validates DANE's lookups with
# unless "dnssec trust-anchor" names another; for
# regress/integration/test_mta_dane.py, which signs a test zone at test
# time, ldnsutils (ldns-keygen, ldns-signzone), nsd (the authoritative
# server for the signed zone) and unbound (the validating resolver in
# front of it).  The test starts its own nsd and unbound on loopback
# ports with configurations of its own; the packages' services (DNS on
# port 53, and unbound-resolvconf, which would point /etc/resolv.conf at
# it) are disabled at once, as Dovecot's is.
#
# Shared tables (issue 21): libpq-dev, PostgreSQL's client library, for
# the pgsql: table (table/pgsql.c, asynchronous on lookup's event loop);
# postgresql for the test server: regress/integration/pglib.py makes and
# starts a throw-away cluster as an unprivileged user on a loopback port.
# The package's own cluster service (port 5432) is disabled at once.
#
# haproxy (issue 21): regress/integration/test_proxy_protocol.py puts a
# real HAProxy in front of the daemon (send-proxy and send-proxy-v2) to
# prove the PROXY protocol listener.  The test runs its own in the
# foreground (-db) with a configuration it writes, on 127.0.0.71; the
# package's service is disabled at once like the others (Debian's
# /etc/haproxy/haproxy.cfg binds no port anyway, but a running service
# is one more process to get in the way).  test_cluster.py puts it in
# front of three daemons (round robin, PROXY v2, SMTP health checks), as
# a site with several MX hosts behind a TCP load balancer does.
#
# LDAP shared tables (issue 21): libldap-dev, OpenLDAP's client library
# (table/ldap.c; Debian 12 names it libldap-dev, libldap2-dev being the
# old name of the same package), and for
# regress/integration/test_table_ldap.py slapd, the OpenLDAP server, and
# ldap-utils (ldapadd, ldapsearch).  The test runs its own slapd as the
# user openldap (made by the package) with a cn=config directory of its
# own on 127.0.0.1:15730.  Debian's slapd postinst, installed without
# questions (DEBIAN_FRONTEND=noninteractive), makes a default directory
# for the host's domain and starts slapd on port 389 and ldapi:///
# through its init script (systemd runs it as slapd.service from
# /etc/init.d/slapd): the temporary policy-rc.d below denies that start,
# and the service is disabled at once, as Dovecot's is, so no system
# slapd runs on port 389.
#
# Shared tables (issue 21): libhiredis-dev, the client library of the
# redis: tables (table/redis.c: its asynchronous API and libevent
# adapter), and redis-server, which regress/integration/test_table_redis.py
# starts itself, unprivileged, on 127.0.0.1:15740 without persistence.
# The package's own service (redis-server.service, port 6379) must not
# run: its start is forbidden during the install (policy-rc.d, below) and
# it is disabled at once, as nsd's and unbound's are, so that nothing
# answers on the default port unless an administrator sets it up.
#
# prometheus (issue 22): its promtool checks our metrics text ("promtool
# check metrics") and regress/integration/test_metrics.py starts the
# server itself, with a configuration of its own on a loopback port, to
# scrape the daemon's GET /metrics and read the values back through its
# query API.  The package's own service (port 9090, and the node exporter
# it recommends, which is not installed) is disabled at once, as nsd's is.
#
# Deliberately absent: postfix.  Its smtp-source(1) is handy for load tests,
# but installing the package starts a second MTA on port 25 that competes
# with the daemon under test (and with "make run").  Whatever needs it (the
# benchmarks) must install it on purpose and stop its service.  Likewise no
# other mail-transport-agent is pulled in here.

set -u

PACKAGES="
	build-essential
	pkg-config
	clang
	libclang-rt-14-dev
	libssl-dev
	libbsd-dev
	libseccomp-dev
	libdb-dev
	db-util
	libevent-dev
	libunbound-dev
	libcmocka-dev
	python3
	python3-dnslib
	python3-yaml
	python3-spf
	swaks
	libnet-ssleay-perl
	libio-socket-ssl-perl
	libauthen-sasl-perl
	libdigest-hmac-perl
	ca-certificates
	openssl
	procps
	passwd
	util-linux
	dnsmasq-base
	iproute2
	python3-dkim
	python3-nacl
	python3-cryptography
	opendkim-tools
	dovecot-core
	dovecot-lmtpd
	fail2ban
	pflogsumm
	gdb
	mandoc
	git
	dpkg-dev
	debhelper
	lintian
	libpsl-dev
	publicsuffix
	zlib1g-dev
	libxml2-utils
	python3-authres
	libopendmarc2
	rbldnsd
	python3-milter
	rspamd
	opendkim
	libmilter-dev
	dns-root-data
	ldnsutils
	nsd
	unbound
	stunnel4
	libcurl4-openssl-dev
	libpq-dev
	postgresql
	haproxy
	libldap-dev
	slapd
	ldap-utils
	libhiredis-dev
	redis-server
	prometheus
"

if ! command -v dpkg-query >/dev/null 2>&1; then
	# shellcheck disable=SC2086 # one word per package
	echo "deps: not a Debian system (no dpkg-query); install the" \
	    "equivalents of these packages by hand:" $PACKAGES >&2
	exit 0
fi

missing=
for pkg in $PACKAGES; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)
	if [ "$status" != installed ]; then
		missing="$missing $pkg"
	fi
done

# smtp-sink (regress/integration/test_mta_*.py) is taken out of the
# postfix package without installing it: no second MTA, no daemon.
SINK_DIR=/usr/local/libexec/posthaste-test/postfix
need_sink=
[ -x /usr/sbin/smtp-sink ] || [ -x "$SINK_DIR/smtp-sink" ] || need_sink=1

[ -z "$missing" ] && [ -z "$need_sink" ] && exit 0

echo "deps: missing Debian packages:$missing${need_sink:+ (and smtp-sink)}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: run as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a concurrent apt/dpkg (unattended-upgrades on a fresh machine)
# instead of failing at once on its lock.
APT="apt-get -q -o DPkg::Lock::Timeout=300"

$APT update || {
	echo "deps: apt-get update failed" >&2
	exit 1
}
if [ -n "$missing" ]; then
	# Dovecot (for the LMTP tests) and fail2ban must not stay running
	# after their install: forbid service starts meanwhile, as
	# policy-rc.d(8) allows.
	tmp_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d &&
		    chmod 755 /usr/sbin/policy-rc.d && tmp_policy=1
	fi
	# shellcheck disable=SC2086 # word splitting of the list is wanted
	$APT install -y --no-install-recommends $missing || {
		echo "deps: apt-get install failed:$missing" >&2
		[ -n "$tmp_policy" ] && rm -f /usr/sbin/policy-rc.d
		exit 1
	}
	[ -n "$tmp_policy" ] && rm -f /usr/sbin/policy-rc.d
	case " $missing " in
	*" dovecot-core "*)
		# the tests start their own dovecot; the system's stays off
		if command -v deb-systemd-helper >/dev/null 2>&1; then
			deb-systemd-helper disable dovecot.service \
			    dovecot.socket >/dev/null 2>&1
		fi
		rm -f /etc/systemd/system/*.wants/dovecot.service \
		    /etc/systemd/system/*.wants/dovecot.socket
		if command -v update-rc.d >/dev/null 2>&1; then
			update-rc.d dovecot disable >/dev/null 2>&1
		fi
		;;
	esac
	case " $missing " in
	*" fail2ban "*)
		# only fail2ban-regex and the filters are used, never the service
		if command -v deb-systemd-helper >/dev/null 2>&1; then
			deb-systemd-helper disable fail2ban.service \
			    >/dev/null 2>&1
		fi
		rm -f /etc/systemd/system/*.wants/fail2ban.service
		if command -v update-rc.d >/dev/null 2>&1; then
			update-rc.d fail2ban disable >/dev/null 2>&1
		fi
		;;
	esac
	case " $missing " in
	*" rbldnsd "*)
		# test_dnsbl_rbldnsd starts its own on a loopback port; the
		# package's socket unit would answer DNS on port 53
		if command -v deb-systemd-helper >/dev/null 2>&1; then
			deb-systemd-helper disable rbldnsd.socket \
			    rbldnsd.service >/dev/null 2>&1
		fi
		rm -f /etc/systemd/system/*.wants/rbldnsd.socket \
		    /etc/systemd/system/*.wants/rbldnsd.service
		if command -v update-rc.d >/dev/null 2>&1; then
			update-rc.d rbldnsd disable >/dev/null 2>&1
		fi
		;;
	esac
	for svc in rspamd opendkim nsd unbound haproxy slapd redis-server \
	    postgresql prometheus; do
		case " $missing " in
		*" $svc "*)
			# the milter, DANE, PROXY protocol, shared table and
			# metrics tests start their own on loopback ports
			if command -v deb-systemd-helper >/dev/null 2>&1; then
				deb-systemd-helper disable "$svc.service" \
				    >/dev/null 2>&1
			fi
			rm -f "/etc/systemd/system/multi-user.target.wants/$svc.service"
			[ "$svc" = unbound ] &&
			    rm -rf /etc/systemd/system/unbound.service.wants
			if command -v update-rc.d >/dev/null 2>&1; then
				update-rc.d "$svc" disable >/dev/null 2>&1
			fi
			;;
		esac
	done
	echo "deps: installed:$missing"
fi
if [ -n "$need_sink" ]; then
	tmp=$(mktemp -d) && chmod 755 "$tmp" &&
	(cd "$tmp" && $APT download postfix && dpkg-deb -x postfix_*.deb x) &&
	mkdir -p "$SINK_DIR" &&
	cp "$tmp/x/usr/sbin/smtp-sink" "$tmp/x/usr/sbin/smtp-source" \
	    "$tmp/x/usr/lib/postfix/libpostfix-global.so" \
	    "$tmp/x/usr/lib/postfix/libpostfix-util.so" "$SINK_DIR/" || {
		echo "deps: cannot extract smtp-sink from postfix" >&2
		rm -rf "$tmp"
		exit 1
	}
	rm -rf "$tmp"
	echo "deps: installed smtp-sink in $SINK_DIR"
fi
