/*
 * parse_rules.c -- the statements that make up a mail policy: "listen
 * on", "action" and "match".
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "parse.h"
#include "privsep.h"

/*
 * listen on ADDR|IFACE|localhost|any [options]
 */

enum listen_family {
	FAMILY_ANY,
	FAMILY_INET4,
	FAMILY_INET6,
};

static int
same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4, *b4;
	const struct sockaddr_in6 *a6, *b6;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)(const void *)a;
		b4 = (const struct sockaddr_in *)(const void *)b;
		return a4->sin_port == b4->sin_port &&
		       a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	a6 = (const struct sockaddr_in6 *)(const void *)a;
	b6 = (const struct sockaddr_in6 *)(const void *)b;
	return a6->sin6_port == b6->sin6_port &&
	       a6->sin6_scope_id == b6->sin6_scope_id &&
	       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) ==
		   0;
}

/* Add one listener for `sa' (port filled in here) from the template. */
static int
add_listener(struct parser *p, const struct listener *tmpl,
	     const struct sockaddr *sa, int line, struct listener **first,
	     int *n)
{
	struct listener *l, *other;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	char addr[INET6_ADDRSTRLEN];

	if ((l = malloc(sizeof(*l))) == NULL)
		return parse_error(p, line, "out of memory");
	*l = *tmpl;
	memset(&l->ss, 0, sizeof(l->ss));
	if (sa->sa_family == AF_INET) {
		l->sslen = sizeof(struct sockaddr_in);
		memcpy(&l->ss, sa, l->sslen);
		sin = (struct sockaddr_in *)(void *)&l->ss;
		sin->sin_port = htons(l->port);
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
	} else {
		l->sslen = sizeof(struct sockaddr_in6);
		memcpy(&l->ss, sa, l->sslen);
		sin6 = (struct sockaddr_in6 *)(void *)&l->ss;
		sin6->sin6_port = htons(l->port);
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
	}
	TAILQ_FOREACH(other, &p->conf->listeners, entry)
	if (same_address(&other->ss, &l->ss)) {
		free(l);
		return parse_error(p, line, "duplicate listener on %s port %u",
				   addr, (unsigned)tmpl->port);
	}
	TAILQ_INSERT_TAIL(&p->conf->listeners, l, entry);
	if (*first == NULL)
		*first = l;
	(*n)++;
	return 0;
}

static int
add_listener_text(struct parser *p, const struct listener *tmpl, int family,
		  const char *text, int line, struct listener **first, int *n)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (family == AF_INET) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
			return parse_error(p, line, "bad address %s", text);
		return add_listener(p, tmpl, (struct sockaddr *)(void *)&sin,
				    line, first, n);
	}
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	if (inet_pton(AF_INET6, text, &sin6.sin6_addr) != 1)
		return parse_error(p, line, "bad address %s", text);
	return add_listener(p, tmpl, (struct sockaddr *)(void *)&sin6, line,
			    first, n);
}

static int
family_allowed(enum listen_family family, int af)
{
	return family == FAMILY_ANY ||
	       (family == FAMILY_INET4 && af == AF_INET) ||
	       (family == FAMILY_INET6 && af == AF_INET6);
}

static int
expand_interface(struct parser *p, const struct listener *tmpl,
		 enum listen_family family, int line, struct listener **first,
		 int *n)
{
	struct ifaddrs *ifap, *ifa;
	int found = 0, rc = 0;

	if (getifaddrs(&ifap) == -1)
		return parse_error(p, line, "getifaddrs: %s", strerror(errno));
	for (ifa = ifap; ifa != NULL && rc == 0; ifa = ifa->ifa_next) {
		if (ifa->ifa_name == NULL ||
		    strcmp(ifa->ifa_name, tmpl->ifname) != 0)
			continue;
		found = 1;
		if (ifa->ifa_addr == NULL ||
		    (ifa->ifa_addr->sa_family != AF_INET &&
		     ifa->ifa_addr->sa_family != AF_INET6) ||
		    !family_allowed(family, ifa->ifa_addr->sa_family))
			continue;
		rc = add_listener(p, tmpl, ifa->ifa_addr, line, first, n);
	}
	freeifaddrs(ifap);
	if (rc == -1)
		return -1;
	if (!found)
		return parse_error(p, line,
				   "unknown interface or address \"%s\"",
				   tmpl->ifname);
	if (*n == 0)
		return parse_error(p, line,
				   "interface \"%s\" has no usable address",
				   tmpl->ifname);
	return 0;
}

/* One listen statement may create several listeners: localhost, any, an
 * interface with several addresses. */
static int
expand_listen(struct parser *p, const struct listener *tmpl,
	      enum listen_family family, int line, struct listener **first,
	      int *n)
{
	const char *name = tmpl->ifname;
	struct addrinfo hints, *res;
	struct in_addr in4;
	int rc;

	if (strcmp(name, "localhost") == 0 || strcmp(name, "lo") == 0 ||
	    strcmp(name, "any") == 0 || strcmp(name, "all") == 0) {
		int local = name[0] == 'l';

		if (family != FAMILY_INET6 &&
		    add_listener_text(p, tmpl, AF_INET,
				      local ? "127.0.0.1" : "0.0.0.0", line,
				      first, n) == -1)
			return -1;
		if (family != FAMILY_INET4 &&
		    add_listener_text(p, tmpl, AF_INET6, local ? "::1" : "::",
				      line, first, n) == -1)
			return -1;
		return 0;
	}
	if (inet_pton(AF_INET, name, &in4) == 1) {
		if (family == FAMILY_INET6)
			return parse_error(p, line,
					   "%s is not an inet6 address", name);
		return add_listener_text(p, tmpl, AF_INET, name, line, first,
					 n);
	}
	if (strchr(name, ':') != NULL) {
		/* getaddrinfo rather than inet_pton: fe80::1%eth0 */
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_INET6;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
		if (getaddrinfo(name, NULL, &hints, &res) != 0 || res == NULL)
			return parse_error(p, line,
					   "invalid IPv6 address \"%s\"", name);
		if (family == FAMILY_INET4 ||
		    res->ai_addrlen > sizeof(struct sockaddr_storage)) {
			freeaddrinfo(res);
			return parse_error(p, line,
					   "%s is not an inet4 address", name);
		}
		rc = add_listener(p, tmpl, res->ai_addr, line, first, n);
		freeaddrinfo(res);
		return rc;
	}
	return expand_interface(p, tmpl, family, line, first, n);
}

static int
listen_option_twice(struct parser *p, const struct token *t)
{
	return parse_error(p, t->line, "listen option \"%s\" given twice",
			   t->text);
}

/*
 * NET or { NET, NET ... } after "what" (the words before it, for the
 * errors): addresses or networks in CIDR notation, at most max, added
 * to nets[*n].  toomany names them in the error past max.
 */
int
conf_get_nets(struct parser *p, const char *what, char (*nets)[LISTEN_CIDR_MAX],
    int *n, int max, const char *toomany)
{
	struct token	*t;
	char		 expect[128];
	int		 braces, first = *n;

	braces = tok_peek(p)->type == TOK_LBRACE;
	if (braces)
		tok_next(p);
	for (;;) {
		do {
			t = tok_next(p);
		} while (braces && (t->type == TOK_NEWLINE ||
		    (t->type == TOK_COMMA && *n > first)));
		if (braces && t->type == TOK_RBRACE)
			break;
		if (!tok_is_value(t)) {
			snprintf(expect, sizeof(expect), "address or network "
			    "after %s", what);
			return parse_unexpected(p, t, braces ?
			    "address or network or \"}\"" : expect);
		}
		if (*n == max)
			return parse_error(p, t->line, "at most %d %s", max,
			    toomany);
		if (conf_copy_value(p, t, nets[*n], LISTEN_CIDR_MAX,
		    "address") == -1)
			return -1;
		if (!conf_valid_cidr(nets[*n]))
			return parse_error(p, t->line, "invalid address "
			    "\"%.64s\" after %s", nets[*n], what);
		(*n)++;
		if (!braces)
			break;
	}
	if (*n == first)
		return parse_error(p, p->cur.line, "no address after %s", what);
	return 0;
}

/*
 * "proxy-protocol from NET" or "proxy-protocol from { NET, NET ... }":
 * the load balancers that may speak for their clients.  Required: a
 * PROXY header from anyone else would let them pick their own address.
 */
static int
parse_proxy_from(struct parser *p, struct listener *l)
{
	struct token	*t;

	if (!tok_is_keyword(t = tok_next(p), "from"))
		return parse_unexpected(p, t, "\"from\" after proxy-protocol "
		    "(the trusted proxies)");
	return conf_get_nets(p, "proxy-protocol from", l->proxy_from,
	    &l->nproxy_from, LISTEN_PROXY_MAX, "trusted proxies on a listener");
}

int
parse_listen(struct parser *p, const char *keyword, int line)
{
	struct listener tmpl, *first = NULL;
	enum listen_family family = FAMILY_ANY;
	struct token *t;
	int n = 0, have_port = 0, family_set = 0;
	int tls_set = 0, auth_set = 0;
	int submission_set = 0;
	struct milter_chain milters;
	struct ref *r;

	(void)keyword;
	memset(&tmpl, 0, sizeof(tmpl));
	memset(&milters, 0, sizeof(milters));
	if (!tok_is_keyword(t = tok_next(p), "on"))
		return parse_unexpected(p, t, "\"on\" after listen");
	if (conf_get_string(p, tmpl.ifname, sizeof(tmpl.ifname),
		       "address or interface for listen on") == -1)
		return -1;

	while (!tok_is_end(t = tok_peek(p))) {
		t = tok_next(p);
		if (tok_is_keyword(t, "inet4") || tok_is_keyword(t, "inet6")) {
			if (family_set++)
				return listen_option_twice(p, t);
			family =
			    t->text[4] == '4' ? FAMILY_INET4 : FAMILY_INET6;
		} else if (tok_is_keyword(t, "port")) {
			if (have_port++)
				return listen_option_twice(p, t);
			if (conf_get_port(p, "listen port", &tmpl.port) == -1)
				return -1;
			if (tmpl.port == 587)
				tmpl.submission = 1;
		} else if (tok_is_keyword(t, "tls") ||
			   tok_is_keyword(t, "tls-require") ||
			   tok_is_keyword(t, "smtps")) {
			if (tls_set++)
				return parse_error(
				    p, t->line,
				    "only one of tls, tls-require and smtps "
				    "may be given");
			tmpl.tls = tok_is_keyword(t, "tls") ? LISTEN_TLS_STARTTLS
				   : tok_is_keyword(t, "smtps")
				       ? LISTEN_TLS_SMTPS
				       : LISTEN_TLS_REQUIRE;
		} else if (tok_is_keyword(t, "pki")) {
			/*
			 * "pki a pki b ...": the first is the default, the
			 * others are chosen by SNI (smtp/smtp_tls.c)
			 */
			char *dst = tmpl.pki;
			int i;

			if (tmpl.pki[0] != '\0') {
				if (tmpl.nsni_pki >= LISTEN_SNI_MAX)
					return parse_error(p, t->line,
					    "too many pki on one listener (at "
					    "most %d)", LISTEN_SNI_MAX + 1);
				dst = tmpl.sni_pki[tmpl.nsni_pki];
			}
			if (conf_get_value(p, "pki name", &t) == -1 ||
			    conf_copy_value(p, t, dst, CONF_HOST_MAX,
				       "pki name") == -1 ||
			    conf_add_ref(p, REF_PKI, t->line, dst) == NULL)
				return -1;
			if (dst != tmpl.pki) {
				for (i = 0; i < tmpl.nsni_pki; i++)
					if (strcmp(tmpl.sni_pki[i], dst) == 0)
						break;
				if (strcmp(tmpl.pki, dst) == 0 ||
				    i < tmpl.nsni_pki)
					return parse_error(p, t->line,
					    "pki \"%s\" given twice", dst);
				tmpl.nsni_pki++;
			}
		} else if (tok_is_keyword(t, "auth") ||
			   tok_is_keyword(t, "auth-optional")) {
			if (auth_set++)
				return parse_error(
				    p, t->line,
				    "only one of auth and auth-optional may "
				    "be given");
			tmpl.auth = tok_is_keyword(t, "auth")
					? LISTEN_AUTH_REQUIRE
					: LISTEN_AUTH_OPTIONAL;
			if (tok_peek(p)->type == TOK_TABLE &&
			    conf_get_table_ref(p, tmpl.auth_table,
					  sizeof(tmpl.auth_table), 1,
					  "<table>") == -1)
				return -1;
		} else if (tok_is_keyword(t, "hostname")) {
			if (tmpl.hostname[0] != '\0')
				return listen_option_twice(p, t);
			if (conf_get_value(p, "listener hostname", &t) == -1 ||
			    conf_copy_value(p, t, tmpl.hostname,
				       sizeof(tmpl.hostname),
				       "listener hostname") == -1)
				return -1;
			if (!conf_valid_hostname(tmpl.hostname))
				return parse_error(p, t->line,
						   "invalid hostname \"%s\"",
						   tmpl.hostname);
		} else if (tok_is_keyword(t, "tag")) {
			if (tmpl.tag[0] != '\0')
				return listen_option_twice(p, t);
			if (conf_get_value(p, "tag name", &t) == -1 ||
			    conf_copy_value(p, t, tmpl.tag, sizeof(tmpl.tag),
				       "tag") == -1)
				return -1;
			if (!conf_valid_name(tmpl.tag, "{}<>,=!\"'#"))
				return parse_error(
				    p, t->line, "invalid tag \"%s\"", tmpl.tag);
		} else if (tok_is_keyword(t, "senders")) {
			if (tmpl.senders_checked++)
				return listen_option_twice(p, t);
			if (conf_get_table_ref(p, tmpl.senders_table,
					  sizeof(tmpl.senders_table), 1,
					  "<table> after senders") == -1)
				return -1;
		} else if (tok_is_keyword(t, "no-checks")) {
			/* "no-checks spf dkim ...": only those are off */
			int off = 0, bit;

			for (;;) {
				struct token *w = tok_peek(p);

				bit = tok_is_keyword(w, "spf") ? CHECK_SPF :
				    tok_is_keyword(w, "dkim") ? CHECK_DKIM :
				    tok_is_keyword(w, "dmarc") ? CHECK_DMARC :
				    tok_is_keyword(w, "dnsbl") ? CHECK_DNSBL : 0;
				if (bit == 0)
					break;
				tok_next(p);
				off |= bit;
			}
			if (tmpl.checks_off != 0 ||
			    tmpl.checks == LISTEN_CHECKS_NONE ||
			    (off == 0 && tmpl.checks != LISTEN_CHECKS_DEFAULT))
				return listen_option_twice(p, t);
			if (off == 0)
				tmpl.checks = LISTEN_CHECKS_NONE;
			tmpl.checks_off = off;
		} else if (tok_is_keyword(t, "checks")) {
			if (tmpl.checks != LISTEN_CHECKS_DEFAULT)
				return listen_option_twice(p, t);
			t = tok_next(p);
			if (!tok_is_keyword(t, "all-clients"))
				return parse_unexpected(p, t,
				    "all-clients after checks");
			tmpl.checks = LISTEN_CHECKS_ALL_CLIENTS;
		} else if (tok_is_keyword(t, "check-sender-domain")) {
			if (tmpl.check_sender_domain++)
				return listen_option_twice(p, t);
		} else if (tok_is_keyword(t, "submission")) {
			if (submission_set++)
				return listen_option_twice(p, t);
			tmpl.submission = 1;
		} else if (tok_is_keyword(t, "auth-plaintext")) {
			/* AUTH offered without TLS too */
			if (tmpl.auth_plain_ok++)
				return listen_option_twice(p, t);
		} else if (tok_is_keyword(t, "auth-cram-md5")) {
			if (tmpl.auth_cram_md5++)
				return listen_option_twice(p, t);
		} else if (tok_is_keyword(t, "proxy-protocol")) {
			if (tmpl.proxy_protocol++)
				return listen_option_twice(p, t);
			if (parse_proxy_from(p, &tmpl) == -1)
				return -1;
		} else if (tok_is_keyword(t, "milter")) {
			/* "milter NAME" or "milter { A B }" (parse_milter.c) */
			if (milters.n > 0)
				return listen_option_twice(p, t);
			if (parse_milter_chain(p, &milters) == -1)
				return -1;
			tmpl.nmilters = milters.n;
		} else
			return parse_syntax_error(p, t);
	}
	if (!have_port)
		tmpl.port = tmpl.tls == LISTEN_TLS_SMTPS ? 465
			    : tmpl.submission		 ? 587
							 : 25;
	/*
	 * AUTH is offered only inside TLS (smtp_auth.c): a listener that
	 * asks for it but has no TLS could never take a password.
	 */
	if (tmpl.auth != LISTEN_AUTH_NONE && tmpl.tls == LISTEN_TLS_NONE &&
	    !tmpl.auth_plain_ok)
		return parse_error(p, line,
				   "listen on %s: auth without tls, "
				   "tls-require or smtps: AUTH is only offered "
				   "inside TLS (add tls, or auth-plaintext to "
				   "allow it in the clear)",
				   tmpl.ifname);
	/* CRAM-MD5 needs the cleartext secret, which no system account has */
	if (tmpl.auth_cram_md5 && tmpl.auth_table[0] == '\0')
		return parse_error(p, line,
				   "listen on %s: auth-cram-md5 needs a "
				   "credentials table with {plain} secrets "
				   "(auth <table>)",
				   tmpl.ifname);
	if (expand_listen(p, &tmpl, family, line, &first, &n) == -1)
		return -1;
	if (milters.n > 0 && milter_chain_refs(p, &milters, first, n) == -1)
		return -1;
	if (tmpl.tls != LISTEN_TLS_NONE && tmpl.pki[0] == '\0') {
		if ((r = conf_add_ref(p, REF_LISTENER_TLS, line, tmpl.hostname)) ==
		    NULL)
			return -1;
		r->listener = first;
		r->nlisteners = n;
	}
	return 0;
}

/*
 * action "NAME" METHOD [options]
 */

static const char *const local_options[] = {
    "alias", "virtual", "userbase", "user", "forward-file", "junk",
};

static int
is_local_option(const struct token *t)
{
	size_t i;

	for (i = 0; i < sizeof(local_options) / sizeof(local_options[0]); i++)
		if (tok_is_keyword(t, local_options[i]))
			return 1;
	return 0;
}

static int
action_option_twice(struct parser *p, const struct token *t)
{
	return parse_error(p, t->line, "action option \"%s\" given twice",
			   t->text);
}

static int
parse_relay_options(struct parser *p, struct action *a)
{
	struct token *t;
	enum url_scheme scheme = URL_SMTP;
	const char *why;
	int tls_set = 0, host_line = 0;

	while (!tok_is_end(tok_peek(p))) {
		t = tok_next(p);
		if (tok_is_keyword(t, "host")) {
			if (a->relay_host[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_value(p, "URL after host", &t) == -1 ||
			    conf_copy_value(p, t, a->relay_host,
				       sizeof(a->relay_host),
				       "relay host") == -1)
				return -1;
			host_line = t->line;
			if ((why = conf_check_relay_url(a->relay_host, &scheme)) !=
			    NULL)
				return parse_error(
				    p, t->line,
				    "invalid relay host \"%.64s\": %s",
				    a->relay_host, why);
		} else if (tok_is_keyword(t, "tls")) {
			if (tls_set++)
				return action_option_twice(p, t);
			a->relay_tls = RELAY_TLS_REQUIRE;
			if (tok_peek(p)->type == TOK_WORD &&
			    conf_tls_level(tok_peek(p)->text, &a->relay_tls) ==
			    0)
				tok_next(p);
		} else if (tok_is_keyword(t, "auth")) {
			if (a->relay_auth_table[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_table_ref(p, a->relay_auth_table,
					  sizeof(a->relay_auth_table), 1,
					  "<table> after auth") == -1)
				return -1;
			host_line = host_line ? host_line : t->line;
		} else if (tok_is_keyword(t, "helo")) {
			if (a->helo[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_value(p, "name after helo", &t) == -1 ||
			    conf_copy_value(p, t, a->helo, sizeof(a->helo),
				       "helo name") == -1)
				return -1;
			if (!conf_valid_hostname(a->helo))
				return parse_error(p, t->line,
						   "invalid helo name \"%s\"",
						   a->helo);
		} else if (tok_is_keyword(t, "src")) {
			if (a->relay_src[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_value(p, "address after src", &t) == -1 ||
			    conf_copy_value(p, t, a->relay_src, sizeof(a->relay_src),
				       "src address") == -1)
				return -1;
			if (!conf_valid_ip(a->relay_src))
				return parse_error(
				    p, t->line,
				    "src must be an IPv4 or IPv6 address");
		} else if (tok_is_keyword(t, "pki")) {
			/* a client certificate, for servers that ask */
			if (a->relay_pki[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_value(p, "name after pki", &t) == -1 ||
			    conf_copy_value(p, t, a->relay_pki,
				       sizeof(a->relay_pki), "pki name") == -1 ||
			    conf_add_ref(p, REF_PKI, t->line, a->relay_pki) ==
				NULL)
				return -1;
		} else if (is_local_option(t))
			return parse_error(
			    p, t->line,
			    "\"%s\" is not valid for a relay action", t->text);
		else
			return parse_syntax_error(p, t);
	}
	/* credentials are only ever sent to a named smarthost, never to
	 * whatever MX a recipient domain happens to publish */
	if (a->relay_auth_table[0] != '\0' && a->relay_host[0] == '\0')
		return parse_error(p, host_line,
				   "relay auth requires a relay host");
	switch (scheme) {
	case URL_SMTPS:
	case URL_SMTP_TLS:
		if (tls_set && a->relay_tls == RELAY_TLS_NO)
			return parse_error(
			    p, host_line,
			    "\"tls no\" contradicts the relay host URL");
		if (!tls_set)
			a->relay_tls = RELAY_TLS_REQUIRE;
		else if (scheme == URL_SMTPS &&
			 a->relay_tls == RELAY_TLS_REQUIRE)
			a->relay_tls = RELAY_TLS_VERIFY;
		break;
	case URL_SMTP_NOTLS:
		if (tls_set && a->relay_tls != RELAY_TLS_NO)
			return parse_error(
			    p, host_line,
			    "tls contradicts the smtp+notls:// relay host");
		a->relay_tls = RELAY_TLS_NO;
		break;
	default:
		break;
	}
	return 0;
}

static int
parse_local_options(struct parser *p, struct action *a)
{
	struct token *t;
	int forward_set = 0;

	while (!tok_is_end(tok_peek(p))) {
		t = tok_next(p);
		if (tok_is_keyword(t, "alias") || tok_is_keyword(t, "virtual")) {
			if (a->alias_table[0] != '\0' ||
			    a->virtual_table[0] != '\0')
				return parse_error(
				    p, t->line,
				    "only one of alias and virtual may be "
				    "given");
			if (conf_get_table_ref(p,
					  t->text[0] == 'a' ? a->alias_table
							    : a->virtual_table,
					  CONF_NAME_MAX, 1, "<table>") == -1)
				return -1;
		} else if (tok_is_keyword(t, "userbase")) {
			if (a->userbase_table[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_table_ref(p, a->userbase_table,
					  sizeof(a->userbase_table), 1,
					  "<table> after userbase") == -1)
				return -1;
		} else if (tok_is_keyword(t, "user")) {
			if (a->user[0] != '\0')
				return action_option_twice(p, t);
			if (conf_get_value(p, "user name", &t) == -1 ||
			    conf_copy_value(p, t, a->user, sizeof(a->user),
				       "user name") == -1)
				return -1;
			if (!conf_valid_name(a->user, "/:"))
				return parse_error(p, t->line,
						   "invalid user name \"%s\"",
						   a->user);
			/* never as the daemon's own (common/sysusers.c) */
			if (strcmp(a->user, SMTPD_USER) == 0 ||
			    strcmp(a->user, SMTPD_QUEUE_USER) == 0)
				return parse_error(p, t->line,
						   "user %s: the daemon's own "
						   "account never receives "
						   "mail", a->user);
		} else if (tok_is_keyword(t, "junk")) {
			if (a->type != ACTION_MAILDIR)
				return parse_error(p, t->line,
				    "junk is only valid for a maildir action");
			if (a->junk++)
				return action_option_twice(p, t);
		} else if (tok_is_keyword(t, "forward-file")) {
			if (forward_set++)
				return action_option_twice(p, t);
			if (conf_get_yesno(p, "forward-file", &a->forward_file) ==
			    -1)
				return -1;
		} else if (tok_is_keyword(t, "host") || tok_is_keyword(t, "helo") ||
			   tok_is_keyword(t, "src") || tok_is_keyword(t, "tls") ||
			   tok_is_keyword(t, "auth") || tok_is_keyword(t, "pki"))
			return parse_error(
			    p, t->line,
			    "\"%s\" is only valid for a relay action", t->text);
		else
			return parse_syntax_error(p, t);
	}
	return 0;
}

int
parse_action(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config *conf = p->conf;
	char name[CONF_NAME_MAX], show[ERR_TOKEN_SHOW + 8];
	struct action *a;
	struct token *t;

	(void)keyword;
	if (conf_get_string(p, name, sizeof(name), "action name") == -1)
		return -1;
	if (config_find_action(conf, name) != NULL)
		return parse_error(p, line, "action \"%s\" already defined",
				   name);
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return parse_error(p, line, "out of memory");
	memcpy(a->name, name, sizeof(a->name));
	a->forward_file = 1;
	a->relay_tls = RELAY_TLS_OPPORTUNISTIC;
	TAILQ_INSERT_TAIL(&conf->actions, a, entry);

	t = tok_next(p);
	if (tok_is_keyword(t, "maildir")) {
		a->type = ACTION_MAILDIR;
		t = tok_peek(p);
		if (t->type == TOK_STRING ||
		    (t->type == TOK_WORD && !is_local_option(t))) {
			if (conf_get_string(p, a->path, sizeof(a->path),
				       "maildir template") == -1)
				return -1;
		}
	} else if (tok_is_keyword(t, "mbox")) {
		a->type = ACTION_MBOX;
	} else if (tok_is_keyword(t, "mda")) {
		a->type = ACTION_MDA;
		if (conf_get_string(p, a->path, sizeof(a->path),
			       "command after mda") == -1)
			return -1;
	} else if (tok_is_keyword(t, "lmtp")) {
		a->type = ACTION_LMTP;
		if (conf_get_value(p, "destination after lmtp", &t) == -1 ||
		    conf_copy_value(p, t, a->path, sizeof(a->path),
			       "lmtp destination") == -1)
			return -1;
		if (a->path[0] != '/' && strchr(a->path, ':') == NULL)
			return parse_error(
			    p, t->line,
			    "lmtp destination must be \"/socket\" or "
			    "\"host:port\"");
	} else if (tok_is_keyword(t, "relay")) {
		a->type = ACTION_RELAY;
		return parse_relay_options(p, a);
	} else if (tok_is_value(t))
		return parse_error(
		    p, t->line,
		    "unknown action \"%s\" "
		    "(expected maildir, mbox, mda, lmtp or relay)",
		    tok_show(t, show, sizeof(show)));
	else
		return parse_unexpected(p, t, "maildir, mbox, mda, lmtp or relay");
	return parse_local_options(p, a);
}

/*
 * match [!]from ... [!]for ... [criteria] action "NAME" | reject
 */

static const char *const match_keywords[] = {
    "from", "for", "auth", "mail-from", "tls", "helo", "tag", "action",
    "reject", "defer", "spf", "dnsbl", "dkim", "dmarc",
};

/* RFC 8601's DKIM and DMARC result words (common/dkim.h, lookup/dmarc.h) */
static const char *const dkim_words[] = {
    "none", "pass", "fail", "policy", "neutral", "temperror", "permerror",
};
static const char *const dmarc_words[] = {
    "none", "pass", "fail", "temperror", "permerror",
};

/* the word's index in words, or -1 */
static int
result_word(const struct token *t, const char *const *words, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		if (tok_is_keyword(t, words[i]))
			return (int)i;
	return -1;
}

/* RFC 8601's SPF result words, the values of "spf" */
static const char *const spf_words[] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror",
};

static int
is_match_keyword(const struct token *t)
{
	size_t i;

	for (i = 0; i < sizeof(match_keywords) / sizeof(match_keywords[0]); i++)
		if (tok_is_keyword(t, match_keywords[i]))
			return 1;
	return 0;
}

/*
 * A criterion's value: <table> or a literal.  `optional' accepts only a
 * quoted literal, since a bare word may be the next criterion; and a bare
 * keyword is never a value ("for domain action x" lacks the domain).
 */
static int
get_crit(struct parser *p, struct match_crit *c, int optional, const char *what)
{
	struct token *t = tok_peek(p);

	if (t->type == TOK_TABLE) {
		c->is_table = 1;
		return conf_get_table_ref(p, c->value, sizeof(c->value), 0, what);
	}
	if (optional && t->type != TOK_STRING)
		return 0;
	if (is_match_keyword(t))
		return parse_unexpected(p, tok_next(p), what);
	if (conf_get_value(p, what, &t) == -1 ||
	    conf_copy_value(p, t, c->value, sizeof(c->value), what) == -1)
		return -1;
	if (!conf_valid_pattern(c->value))
		return parse_error(p, t->line, "invalid %s \"%.64s\"", what,
				   c->value);
	return 0;
}

static int
parse_match_from(struct parser *p, struct match *m)
{
	struct token *t = tok_next(p);
	char show[ERR_TOKEN_SHOW + 8];

	if (tok_is_keyword(t, "any"))
		m->from = MATCH_FROM_ANY;
	else if (tok_is_keyword(t, "local"))
		m->from = MATCH_FROM_LOCAL;
	else if (tok_is_keyword(t, "socket"))
		m->from = MATCH_FROM_SOCKET;
	else if (tok_is_keyword(t, "src")) {
		m->from = MATCH_FROM_SRC;
		if (get_crit(p, &m->from_crit, 0,
			     "<table> or address after src") == -1)
			return -1;
		if (!m->from_crit.is_table && !conf_valid_cidr(m->from_crit.value))
			return parse_error(
			    p, p->cur.line,
			    "invalid address \"%.64s\" after src",
			    m->from_crit.value);
	} else if (tok_is_keyword(t, "rdns")) {
		m->from = MATCH_FROM_RDNS;
		return get_crit(p, &m->from_crit, 1, "rdns domain");
	} else if (tok_is_keyword(t, "auth")) {
		m->from = MATCH_FROM_AUTH;
		return get_crit(p, &m->from_crit, 1, "auth user");
	} else if (tok_is_value(t))
		return parse_error(p, t->line,
				   "unknown \"from\" criterion \"%s\"",
				   tok_show(t, show, sizeof(show)));
	else
		return parse_unexpected(p, t,
				  "any, local, socket, src, rdns or "
				  "auth after from");
	return 0;
}

static int
parse_match_for(struct parser *p, struct match *m)
{
	struct token *t = tok_next(p);
	char show[ERR_TOKEN_SHOW + 8];

	if (tok_is_keyword(t, "any"))
		m->for_ = MATCH_FOR_ANY;
	else if (tok_is_keyword(t, "local"))
		m->for_ = MATCH_FOR_LOCAL;
	else if (tok_is_keyword(t, "domain")) {
		m->for_ = MATCH_FOR_DOMAIN;
		return get_crit(p, &m->for_crit, 0,
				"<table> or domain after domain");
	} else if (tok_is_keyword(t, "rcpt-to")) {
		m->for_ = MATCH_FOR_RCPT;
		return get_crit(p, &m->for_crit, 0,
				"<table> or address after rcpt-to");
	} else if (tok_is_value(t))
		return parse_error(p, t->line,
				   "unknown \"for\" criterion \"%s\"",
				   tok_show(t, show, sizeof(show)));
	else
		return parse_unexpected(p, t,
				  "any, local, domain or rcpt-to "
				  "after for");
	return 0;
}

int
parse_match(struct parser *p, const char *keyword, int line)
{
	struct match *m;
	struct match_crit *crit;
	struct token *t;
	struct ref *r;
	int negate;

	(void)keyword;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return parse_error(p, line, "out of memory");
	m->line = line;
	m->from = MATCH_FROM_LOCAL;
	m->for_ = MATCH_FOR_LOCAL;
	TAILQ_INSERT_TAIL(&p->conf->matches, m, entry);

	for (;;) {
		t = tok_next(p);
		negate = 0;
		if (t->type == TOK_BANG) {
			negate = 1;
			t = tok_next(p);
		}
		if (tok_is_keyword(t, "from"))
			crit = &m->from_crit;
		else if (tok_is_keyword(t, "for"))
			crit = &m->for_crit;
		else if (tok_is_keyword(t, "auth"))
			crit = &m->auth;
		else if (tok_is_keyword(t, "mail-from"))
			crit = &m->mail_from;
		else if (tok_is_keyword(t, "tls"))
			crit = &m->tls;
		else if (tok_is_keyword(t, "helo"))
			crit = &m->helo;
		else if (tok_is_keyword(t, "tag"))
			crit = &m->tag;
		else if (tok_is_keyword(t, "spf"))
			crit = &m->spf;
		else if (tok_is_keyword(t, "dnsbl"))
			crit = &m->dnsbl;
		else if (tok_is_keyword(t, "dkim"))
			crit = &m->dkim;
		else if (tok_is_keyword(t, "dmarc"))
			crit = &m->dmarc;
		else if (negate)
			return parse_unexpected(p, t, "criterion after \"!\"");
		else if (tok_is_keyword(t, "action") ||
			 tok_is_keyword(t, "reject") ||
			 tok_is_keyword(t, "defer"))
			break;
		else if (tok_is_end(t))
			return parse_error(
			    p, t->line,
			    "match rule needs \"action NAME\", \"reject\" "
			    "or \"defer\"");
		else
			return parse_syntax_error(p, t);

		if (crit->set)
			return parse_error(p, t->line,
					   "match criterion \"%s\" given twice",
					   t->text);
		crit->set = 1;
		crit->negate = negate;
		if (crit == &m->from_crit) {
			if (parse_match_from(p, m) == -1)
				return -1;
		} else if (crit == &m->for_crit) {
			if (parse_match_for(p, m) == -1)
				return -1;
		} else if (crit == &m->auth) {
			if (get_crit(p, crit, 1, "auth user") == -1)
				return -1;
		} else if (crit == &m->mail_from) {
			if (get_crit(p, crit, 0,
				     "<table> or address after mail-from") ==
			    -1)
				return -1;
		} else if (crit == &m->helo) {
			if (get_crit(p, crit, 0,
				     "<table> or name after helo") == -1)
				return -1;
		} else if (crit == &m->tag) {
			if (get_crit(p, crit, 0,
				     "<table> or name after tag") == -1)
				return -1;
		} else if (crit == &m->spf) {
			size_t i;

			t = tok_next(p);
			for (i = 0; i < sizeof(spf_words) / sizeof(spf_words[0]);
			     i++)
				if (tok_is_keyword(t, spf_words[i]))
					break;
			if (i == sizeof(spf_words) / sizeof(spf_words[0]))
				return parse_unexpected(p, t, "an SPF result "
				    "(pass, fail, softfail, neutral, none, "
				    "temperror, permerror) after spf");
			snprintf(crit->value, sizeof(crit->value), "%zu", i);
			p->conf->rules_spf = 1;
		} else if (crit == &m->dkim || crit == &m->dmarc) {
			int dk = crit == &m->dkim, i;

			t = tok_next(p);
			i = dk ? result_word(t, dkim_words, sizeof(dkim_words) /
			    sizeof(dkim_words[0])) : result_word(t, dmarc_words,
			    sizeof(dmarc_words) / sizeof(dmarc_words[0]));
			if (i == -1)
				return parse_unexpected(p, t, dk ? "a DKIM result "
				    "(pass, fail, policy, neutral, none, "
				    "temperror, permerror) after dkim" :
				    "a DMARC result (pass, fail, none, "
				    "temperror, permerror) after dmarc");
			snprintf(crit->value, sizeof(crit->value), "%d", i);
			p->conf->rules_message = 1;
		} else if (crit == &m->dnsbl) {
			if (p->conf->ndnsbl == 0)
				return parse_error(p, t->line, "dnsbl criterion "
				    "without DNS lists: a \"dnsbl\" statement "
				    "must come first");
			p->conf->rules_dnsbl = 1;
		}
	}
	if ((m->dkim.set || m->dmarc.set) && (m->for_ != MATCH_FOR_ANY ||
	    m->for_crit.negate || m->from == MATCH_FROM_RDNS))
		return parse_error(p, t->line, "a rule with dkim or dmarc is for "
		    "the whole message: \"for any\", and not \"from rdns\"");
	if (tok_is_keyword(t, "reject") || tok_is_keyword(t, "defer")) {
		m->reject = tok_is_keyword(t, "reject") ? MATCH_REJECT :
		    MATCH_DEFER;
		return 0;
	}
	/* known only at the end of data, for the whole message */
	if (m->dkim.set || m->dmarc.set)
		return parse_error(p, t->line, "a rule with dkim or dmarc "
		    "rejects or defers the whole message: it takes reject or "
		    "defer, not an action");
	if (conf_get_string(p, m->action_name, sizeof(m->action_name),
		       "action name") == -1)
		return -1;
	if ((r = conf_add_ref(p, REF_ACTION, line, m->action_name)) == NULL)
		return -1;
	r->match = m;
	return 0;
}


