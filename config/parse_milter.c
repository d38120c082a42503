/*
 * parse_milter.c -- the mail filter (milter) statements of smtpd.conf:
 *
 *	milter NAME ADDRESS [connect-timeout 30s] [command-timeout 30s]
 *	    [eom-timeout 5m] [on-error tempfail|accept|reject|quarantine]
 *	    [reuse]
 *	listen on ... milter NAME		(or: milter { NAME NAME ... })
 *	sendmail milter NAME			(or: sendmail milter { ... })
 *
 * ADDRESS is Postfix's and Sendmail's: "unix:/PATH" (or "local:/PATH"),
 * or "inet:HOST:PORT" with HOST an IPv4 address, "[IPv6]" or a name.
 * Where to connect is settled here, once, when the file is read: the
 * parent connects for the chrooted workers (smtpd/milter_connect.c) and
 * must never wait for a resolver on its event loop, so a name is looked
 * up now (its first address) and a name that does not resolve is an
 * error at its line, as is a unix path too long for a socket address.
 *
 * A chain (a listener's, or the sendmail one: mail from sendmail(8) and
 * local submission, Postfix's non_smtpd_milters) names filters that may
 * be defined further down the file: its names are references resolved
 * at the end (parse.c, resolve_refs()) into indexes of conf->milters,
 * which is in the order the filters were written.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "parse.h"

#define MILTER_NAME_JUNK	"{}<>,=!\"'#"
#define MILTER_TIMEOUT_MAX	SECONDS_PER_DAY

static const char *const on_error_names[] = {
	[MILTER_DEFAULT_TEMPFAIL] = "tempfail",
	[MILTER_DEFAULT_ACCEPT] = "accept",
	[MILTER_DEFAULT_REJECT] = "reject",
	[MILTER_DEFAULT_QUARANTINE] = "quarantine",
};

const char *
config_milter_on_error_name(enum milter_default d)
{
	if ((size_t)d >= sizeof(on_error_names) / sizeof(on_error_names[0]))
		return "unknown";
	return on_error_names[d];
}

/* "unix:/PATH" or "local:/PATH" into a sockaddr_un */
static int
milter_unix_address(struct parser *p, struct milter_conf *mc, const char *path,
    int line)
{
	struct sockaddr_un	*sun = (struct sockaddr_un *)(void *)&mc->ss;
	size_t			 len = strlen(path);

	if (path[0] != '/')
		return parse_error(p, line, "milter \"%s\": the socket path "
		    "must be absolute (unix:/PATH)", mc->name);
	if (len >= sizeof(sun->sun_path))
		return parse_error(p, line, "milter \"%s\": socket path too "
		    "long (at most %zu characters)", mc->name,
		    sizeof(sun->sun_path) - 1);
	memset(&mc->ss, 0, sizeof(mc->ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	mc->sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    1);
	return 0;
}

/* "HOST:PORT" with HOST an IPv4 address, [IPv6] or a name */
static int
milter_inet_address(struct parser *p, struct milter_conf *mc, const char *spec,
    int line)
{
	struct addrinfo		 hints, *res;
	char			 host[CONF_HOST_MAX];
	const char		*colon, *end, *port;
	size_t			 len;
	long long		 v;
	int			 rc;

	if (spec[0] == '[') {
		if ((end = strchr(spec, ']')) == NULL)
			return parse_error(p, line, "milter \"%s\": missing "
			    "\"]\" after the IPv6 address", mc->name);
		len = (size_t)(end - spec - 1);
		if (len == 0 || len >= sizeof(host))
			return parse_error(p, line, "milter \"%s\": invalid "
			    "IPv6 address", mc->name);
		memcpy(host, spec + 1, len);
		host[len] = '\0';
		if (end[1] != ':')
			return parse_error(p, line, "milter \"%s\": "
			    "inet:[IPv6]:PORT expected", mc->name);
		port = end + 2;
	} else {
		if ((colon = strrchr(spec, ':')) == NULL)
			return parse_error(p, line, "milter \"%s\": missing "
			    "port (inet:HOST:PORT)", mc->name);
		len = (size_t)(colon - spec);
		if (memchr(spec, ':', len) != NULL)
			return parse_error(p, line, "milter \"%s\": an IPv6 "
			    "address goes in brackets (inet:[::1]:PORT)",
			    mc->name);
		if (len == 0)
			return parse_error(p, line, "milter \"%s\": missing "
			    "host (inet:HOST:PORT)", mc->name);
		if (len >= sizeof(host))
			return parse_error(p, line, "milter \"%s\": host name "
			    "too long", mc->name);
		memcpy(host, spec, len);
		host[len] = '\0';
		if (!conf_valid_ip(host) && !conf_valid_hostname(host))
			return parse_error(p, line, "milter \"%s\": invalid "
			    "host \"%s\"", mc->name, host);
		port = colon + 1;
	}
	v = 0;
	for (end = port; *end >= '0' && *end <= '9' && v <= 65535; end++)
		v = v * 10 + (*end - '0');
	if (end == port || *end != '\0' || v < 1 || v > 65535)
		return parse_error(p, line, "milter \"%s\": invalid port "
		    "\"%.16s\" (1 to 65535)", mc->name, port);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = spec[0] == '[' ? AF_INET6 : AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (spec[0] == '[')
		hints.ai_flags |= AI_NUMERICHOST;
#ifdef POSTHASTE_FUZZ
	/* the fuzzer's inputs are not sent to the resolver */
	hints.ai_flags |= AI_NUMERICHOST;
#endif
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return parse_error(p, line, "milter \"%s\": %s %s: %s",
		    mc->name, spec[0] == '[' ? "invalid IPv6 address" :
		    "cannot resolve", host, gai_strerror(rc));
	if (res == NULL || res->ai_addrlen > sizeof(mc->ss) ||
	    (res->ai_family != AF_INET && res->ai_family != AF_INET6)) {
		if (res != NULL)
			freeaddrinfo(res);
		return parse_error(p, line, "milter \"%s\": no usable address "
		    "for %s", mc->name, host);
	}
	memset(&mc->ss, 0, sizeof(mc->ss));
	memcpy(&mc->ss, res->ai_addr, res->ai_addrlen);
	mc->sslen = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
milter_address(struct parser *p, struct milter_conf *mc, int line)
{
	const char	*a = mc->address;

	if (strncmp(a, "unix:", 5) == 0)
		return milter_unix_address(p, mc, a + 5, line);
	if (strncmp(a, "local:", 6) == 0)
		return milter_unix_address(p, mc, a + 6, line);
	if (strncmp(a, "inet:", 5) == 0)
		return milter_inet_address(p, mc, a + 5, line);
	return parse_error(p, line, "milter \"%s\": unknown address \"%.48s\" "
	    "(expected inet:HOST:PORT or unix:/PATH)", mc->name, a);
}

static int
milter_option(struct parser *p, struct milter_conf *mc, struct token *t,
    int *seen)
{
	static const char *const timeouts[] = {
		"connect-timeout", "command-timeout", "eom-timeout",
	};
	time_t		*dst[3];
	char		 show[ERR_TOKEN_SHOW + 8], what[64];
	size_t		 i;

	dst[0] = &mc->connect_timeout;
	dst[1] = &mc->command_timeout;
	dst[2] = &mc->eom_timeout;
	for (i = 0; i < 3; i++) {
		if (!tok_is_keyword(t, timeouts[i]))
			continue;
		if (seen[i]++)
			return parse_error(p, t->line, "milter \"%s\": %s "
			    "given twice", mc->name, timeouts[i]);
		snprintf(what, sizeof(what), "milter %s", timeouts[i]);
		return conf_get_duration(p, what, 1, MILTER_TIMEOUT_MAX,
		    dst[i]);
	}
	if (tok_is_keyword(t, "reuse")) {
		if (seen[4]++)
			return parse_error(p, t->line, "milter \"%s\": reuse "
			    "given twice", mc->name);
		mc->reuse = 1;
		return 0;
	}
	if (!tok_is_keyword(t, "on-error"))
		return parse_error(p, t->line, "milter \"%s\": unknown option "
		    "\"%s\"", mc->name, tok_show(t, show, sizeof(show)));
	if (seen[3]++)
		return parse_error(p, t->line, "milter \"%s\": on-error given "
		    "twice", mc->name);
	t = tok_next(p);
	for (i = 0; i < sizeof(on_error_names) / sizeof(on_error_names[0]);
	    i++)
		if (tok_is_keyword(t, on_error_names[i])) {
			mc->on_error = (enum milter_default)i;
			return 0;
		}
	return parse_unexpected(p, t,
	    "tempfail, accept, reject or quarantine after on-error");
}

int
parse_milter(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config	*conf = p->conf;
	struct milter_conf	*mc, *other;
	struct token		*t;
	char			 name[CONF_NAME_MAX];
	int			 seen[5] = { 0, 0, 0, 0, 0 };

	(void)keyword;
	if (conf_get_value(p, "milter name", &t) == -1 ||
	    conf_copy_value(p, t, name, sizeof(name), "milter name") == -1)
		return -1;
	if (!conf_valid_name(name, MILTER_NAME_JUNK))
		return parse_error(p, t->line, "invalid milter name \"%s\"",
		    name);
	if ((other = config_find_milter(conf, name)) != NULL)
		return parse_error(p, line, "milter \"%s\" already defined "
		    "at line %d", name, other->line);
	if (conf->nmilters >= CONF_MAX_MILTERS)
		return parse_error(p, line, "too many milters (at most %d)",
		    CONF_MAX_MILTERS);
	if ((mc = calloc(1, sizeof(*mc))) == NULL)
		return parse_error(p, line, "out of memory");
	memcpy(mc->name, name, sizeof(mc->name));
	mc->index = conf->nmilters++;
	mc->line = line;
	/* Postfix's defaults: milter_connect_timeout, _command_timeout,
	 * _content_timeout, milter_default_action */
	mc->connect_timeout = 30;
	mc->command_timeout = 30;
	mc->eom_timeout = 5 * 60;
	mc->on_error = MILTER_DEFAULT_TEMPFAIL;
	TAILQ_INSERT_TAIL(&conf->milters, mc, entry);

	if (conf_get_value(p, "milter address (inet:HOST:PORT or unix:/PATH)",
	    &t) == -1 || conf_copy_value(p, t, mc->address,
	    sizeof(mc->address), "milter address") == -1)
		return -1;
	if (milter_address(p, mc, t->line) == -1)
		return -1;
	while (!tok_is_end(tok_peek(p)))
		if (milter_option(p, mc, tok_next(p), seen) == -1)
			return -1;
	return 0;
}

/*
 * "milter NAME" or "milter { NAME NAME ... }" (commas between them
 * optional, newlines allowed inside the braces), after the keyword.
 */
int
parse_milter_chain(struct parser *p, struct milter_chain *chain)
{
	struct token	*t;
	int		 braces, i;

	memset(chain, 0, sizeof(*chain));
	chain->line = p->cur.line;
	braces = tok_peek(p)->type == TOK_LBRACE;
	if (braces)
		tok_next(p);
	for (;;) {
		do {
			t = tok_next(p);
		} while (braces && (t->type == TOK_NEWLINE ||
		    (t->type == TOK_COMMA && chain->n > 0)));
		if (braces && t->type == TOK_RBRACE)
			break;
		if (!tok_is_value(t))
			return parse_unexpected(p, t, braces ?
			    "milter name or \"}\"" : "milter name");
		if (chain->n == CONF_MILTER_CHAIN)
			return parse_error(p, t->line, "at most %d milters in "
			    "a chain", CONF_MILTER_CHAIN);
		if (conf_copy_value(p, t, chain->name[chain->n],
		    sizeof(chain->name[0]), "milter name") == -1)
			return -1;
		for (i = 0; i < chain->n; i++)
			if (strcmp(chain->name[i], chain->name[chain->n]) == 0)
				return parse_error(p, t->line, "milter \"%s\" "
				    "named twice in one chain",
				    chain->name[i]);
		chain->lines[chain->n++] = t->line;
		if (!braces)
			break;
	}
	if (chain->n == 0)
		return parse_error(p, chain->line, "empty milter chain");
	return 0;
}

/*
 * The chain's names as references: into the n listeners from `first'
 * on (one listen statement may make several), or, when first is NULL,
 * into conf->local_milters.
 */
int
milter_chain_refs(struct parser *p, const struct milter_chain *chain,
    struct listener *first, int n)
{
	struct ref	*r;
	int		 i;

	for (i = 0; i < chain->n; i++) {
		if ((r = conf_add_ref(p, REF_MILTER, chain->lines[i],
		    chain->name[i])) == NULL)
			return -1;
		r->listener = first;
		r->nlisteners = n;
		r->slot = i;
	}
	return 0;
}

int
milter_resolve_ref(struct parser *p, const struct ref *r)
{
	struct milter_conf	*mc;
	struct listener		*l;
	int			 j;

	if ((mc = config_find_milter(p->conf, r->name)) == NULL)
		return parse_error(p, r->line, "no milter \"%s\" defined",
		    r->name);
	if (r->listener == NULL) {
		p->conf->local_milters[r->slot] = mc->index;
		return 0;
	}
	for (l = r->listener, j = 0; l != NULL && j < r->nlisteners;
	    l = TAILQ_NEXT(l, entry), j++)
		l->milters[r->slot] = mc->index;
	return 0;
}

/* sendmail milter NAME | sendmail milter { NAME ... } */
int
parse_sendmail(struct parser *p, const char *keyword, int line)
{
	struct smtpd_config	*conf = p->conf;
	struct milter_chain	 chain;
	struct token		*t = tok_next(p);

	(void)keyword;
	if (!tok_is_keyword(t, "milter"))
		return parse_unexpected(p, t, "milter after sendmail");
	if (conf->nlocal_milters > 0)
		return parse_error(p, line, "sendmail milter given twice: "
		    "name the chain in one statement");
	if (parse_milter_chain(p, &chain) == -1)
		return -1;
	conf->nlocal_milters = chain.n;
	return milter_chain_refs(p, &chain, NULL, 0);
}

struct milter_conf *
config_find_milter(const struct smtpd_config *conf, const char *name)
{
	struct milter_conf	*mc;

	TAILQ_FOREACH(mc, &conf->milters, entry)
		if (strcmp(mc->name, name) == 0)
			return mc;
	return NULL;
}

struct milter_conf *
config_milter_at(const struct smtpd_config *conf, int i)
{
	struct milter_conf	*mc;

	TAILQ_FOREACH(mc, &conf->milters, entry)
		if (mc->index == i)
			return mc;
	return NULL;
}

void
config_free_milters(struct smtpd_config *conf)
{
	struct milter_conf	*mc;

	while ((mc = TAILQ_FIRST(&conf->milters)) != NULL) {
		TAILQ_REMOVE(&conf->milters, mc, entry);
		free(mc);
	}
	conf->nmilters = 0;
	conf->nlocal_milters = 0;
}

/* where a filter's socket address points, "127.0.0.1 port 11332" */
const char *
config_milter_sockaddr(const struct milter_conf *mc, char *buf, size_t len)
{
	const struct sockaddr_un	*sun;
	const struct sockaddr_in	*sin;
	const struct sockaddr_in6	*sin6;
	char				 a[INET6_ADDRSTRLEN];

	switch (mc->ss.ss_family) {
	case AF_UNIX:
		sun = (const struct sockaddr_un *)(const void *)&mc->ss;
		snprintf(buf, len, "%s", sun->sun_path);
		break;
	case AF_INET:
		sin = (const struct sockaddr_in *)(const void *)&mc->ss;
		if (inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a)) == NULL)
			a[0] = '\0';
		snprintf(buf, len, "%s port %u", a,
		    (unsigned)ntohs(sin->sin_port));
		break;
	case AF_INET6:
		sin6 = (const struct sockaddr_in6 *)(const void *)&mc->ss;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, a, sizeof(a)) ==
		    NULL)
			a[0] = '\0';
		snprintf(buf, len, "%s port %u", a,
		    (unsigned)ntohs(sin6->sin6_port));
		break;
	default:
		snprintf(buf, len, "(none)");
		break;
	}
	return buf;
}

static void
print_chain(FILE *out, const struct smtpd_config *conf, const int *chain,
    int n)
{
	const struct milter_conf	*mc;
	int				 i;

	for (i = 0; i < n; i++) {
		mc = config_milter_at(conf, chain[i]);
		fprintf(out, " %s", mc != NULL ? mc->name : "?");
	}
	fputc('\n', out);
}

/*
 * smtpd -n: each filter as it will be reached (the address a name
 * resolved to, which may surprise), and which mail goes through which.
 */
void
config_print_milters(const struct smtpd_config *conf, FILE *out)
{
	const struct milter_conf	*mc;
	const struct listener		*l;
	char				 where[CONF_PATH_MAX + 16];
	char				 a[INET6_ADDRSTRLEN] = "";

	TAILQ_FOREACH(mc, &conf->milters, entry)
		fprintf(out, "milter %s %s: connect to %s, connect-timeout "
		    "%llds, command-timeout %llds, eom-timeout %llds, "
		    "on-error %s%s\n", mc->name, mc->address,
		    config_milter_sockaddr(mc, where, sizeof(where)),
		    (long long)mc->connect_timeout,
		    (long long)mc->command_timeout,
		    (long long)mc->eom_timeout,
		    config_milter_on_error_name(mc->on_error),
		    mc->reuse ? ", reuse" : "");
	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->nmilters == 0)
			continue;
		if (l->ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)
			    (const void *)&l->ss)->sin6_addr, a, sizeof(a));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)
			    (const void *)&l->ss)->sin_addr, a, sizeof(a));
		fprintf(out, "listen on %s port %u: milters", a,
		    (unsigned)l->port);
		print_chain(out, conf, l->milters, l->nmilters);
	}
	if (conf->nlocal_milters > 0) {
		fprintf(out, "sendmail: milters");
		print_chain(out, conf, conf->local_milters,
		    conf->nlocal_milters);
	}
}
