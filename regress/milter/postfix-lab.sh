#!/bin/sh
#
# postfix-lab.sh -- a private Postfix instance (Debian's postfix package,
# run from a config and queue directory of its own, as root) with a
# filter in front of it, to see what Postfix sends a milter and what it
# does with the answers: the reference the milter tests' expectations
# were checked against (regress/milter/POSTFIX_NOTES.md).  Not run by
# the test suite.
#
#   postfix-lab.sh start DIR SMTP_PORT MILTER [NON_SMTPD_MILTER]
#   postfix-lab.sh stop DIR
#   postfix-lab.sh sendmail DIR ARGS...   (message on standard input)
#
# MILTER is Postfix's spelling (inet:127.0.0.1:PORT).  Mail for
# example.test (users a-f and x-z) is delivered by virtual(8) into
# DIR/vmail/USER/ (Maildir, one per recipient); everything else is refused.
set -eu

cmd=$1 dir=$2
case $cmd in
start)
	port=$3 milter=$4 nonsmtpd=${5:-}
	rm -rf "$dir"
	mkdir -p "$dir/etc" "$dir/spool" "$dir/data" "$dir/vmail"
	chmod 755 "$dir" "$dir/etc"
	chown postfix: "$dir/data"
	chown nobody: "$dir/vmail"
	cat >"$dir/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $dir/spool
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
myhostname = mx.lab.test
mydomain = lab.test
myorigin = \$mydomain
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
alias_maps =
alias_database =
virtual_mailbox_domains = example.test
virtual_mailbox_base = $dir/vmail
virtual_mailbox_maps = texthash:$dir/etc/vmaps
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(id -g nobody)
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_dns_support_level = disabled
smtpd_tls_security_level = none
smtpd_milters = $milter
non_smtpd_milters = $nonsmtpd
milter_default_action = tempfail
CF
	for u in a b c d e f x y z; do
		echo "$u@example.test $u/"
	done >"$dir/etc/vmaps"
	cat >"$dir/etc/master.cf" <<CF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
smtp      unix  -       -       n       -       -       smtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
CF
	/usr/sbin/postfix -c "$dir/etc" check
	/usr/sbin/postfix -c "$dir/etc" start
	;;
stop)
	[ -f "$dir/spool/pid/master.pid" ] &&
	    /usr/sbin/postfix -c "$dir/etc" stop || true
	;;
sendmail)
	shift 2
	MAIL_CONFIG=$dir/etc /usr/sbin/sendmail "$@"
	;;
*)
	echo "usage: postfix-lab.sh start|stop|sendmail DIR ..." >&2
	exit 2
	;;
esac
