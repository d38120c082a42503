/*
 * fuzz_parse.c -- libFuzzer harness for the smtpd.conf parser.
 *
 * The input is the whole file, parsed from memory with fmemopen().  A
 * parse either fails with a one-line "fuzz:LINE: message" or yields a
 * configuration whose cross-references all hold; anything else aborts.
 *
 *   clang -std=c11 -D_GNU_SOURCE -I. -Icommon -Ismtpd -g -O1 \
 *       -fsanitize=fuzzer,address,undefined -o fuzz_parse \
 *       regress/fuzz/fuzz_parse.c config/parse.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_parse: %s:%d: %s\n", __FILE__,   \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* A fixed-size field must hold its terminator. */
#define TERMINATED(field) CHECK(memchr(field, '\0', sizeof(field)) != NULL)

static void
check_error(const char *err)
{
	const char *c;

	CHECK(strncmp(err, "fuzz:", 5) == 0);
	c = err + 5;
	CHECK(*c >= '0' && *c <= '9');
	while (*c >= '0' && *c <= '9')
		c++;
	CHECK(c[0] == ':' && c[1] == ' ' && c[2] != '\0');
	for (; *c != '\0'; c++)
		CHECK((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f);
}

static void
check_config(const struct smtpd_config *conf)
{
	const struct table *t;
	const struct pki *pki;
	const struct listener *l;
	const struct action *a;
	const struct match *m;
	const struct milter_conf *mc;
	size_t i;
	int j;

	TERMINATED(conf->spool);
	TERMINATED(conf->socket);
	TERMINATED(conf->hostname);
	TERMINATED(conf->mailname);
	CHECK(conf->spool[0] == '/' && conf->socket[0] == '/');
	TERMINATED(conf->dnssec_anchor);
	CHECK(conf->dnssec_anchor[0] == '\0' || conf->dnssec_anchor[0] == '/');
	/* rate limits: none, or N in 1..1000000 over 1 s..1 day, at most
	 * 1000 a second; the exempt networks are CIDRs */
	for (j = 0; j < RATE_MAX; j++) {
		CHECK(conf->rate[j].n >= 0 && conf->rate[j].n <= 1000000);
		CHECK(conf->rate[j].n == 0 || (conf->rate[j].period >= 1 &&
		    conf->rate[j].period <= 86400 &&
		    conf->rate[j].n <= conf->rate[j].period * 1000));
	}
	CHECK(conf->nrate_exempt >= 0 && conf->nrate_exempt <= RATE_EXEMPT_MAX);
	for (j = 0; j < conf->nrate_exempt; j++) {
		TERMINATED(conf->rate_exempt[j]);
		CHECK(conf->rate_exempt[j][0] != '\0');
	}
	TAILQ_FOREACH(t, &conf->tables, entry)
	{
		TERMINATED(t->name);
		CHECK(config_find_table(conf, t->name) == t);
		for (i = 0; i < t->nentries; i++) {
			CHECK(t->entries[i].key != NULL);
			CHECK((t->entries[i].value != NULL) == t->is_mapping);
		}
	}
	TAILQ_FOREACH(pki, &conf->pkis, entry)
	CHECK(pki->cert_file[0] == '/' && pki->key_file[0] == '/');
	TAILQ_FOREACH(l, &conf->listeners, entry)
	{
		CHECK(l->port != 0);
		CHECK(l->ss.ss_family == AF_INET ||
		      l->ss.ss_family == AF_INET6);
		if (l->tls != LISTEN_TLS_NONE)
			CHECK(config_find_pki(conf, l->pki) != NULL);
		if (l->auth_table[0] != '\0')
			CHECK(config_find_table(conf, l->auth_table) != NULL);
		if (l->senders_checked)
			CHECK(config_find_table(conf, l->senders_table) !=
			      NULL);
		CHECK(l->nmilters >= 0 && l->nmilters <= CONF_MILTER_CHAIN);
		for (j = 0; j < l->nmilters; j++)
			CHECK(config_milter_at(conf, l->milters[j]) != NULL);
	}
	j = 0;
	TAILQ_FOREACH(mc, &conf->milters, entry)
	{
		TERMINATED(mc->name);
		TERMINATED(mc->address);
		CHECK(mc->index == j++);
		CHECK(config_find_milter(conf, mc->name) == mc);
		CHECK(mc->sslen > 0 && mc->sslen <= sizeof(mc->ss));
		CHECK(mc->ss.ss_family == AF_UNIX ||
		      mc->ss.ss_family == AF_INET ||
		      mc->ss.ss_family == AF_INET6);
		CHECK(mc->connect_timeout > 0 && mc->command_timeout > 0 &&
		      mc->eom_timeout > 0);
	}
	CHECK(j == conf->nmilters && j <= CONF_MAX_MILTERS);
	CHECK(conf->nlocal_milters >= 0 &&
	      conf->nlocal_milters <= CONF_MILTER_CHAIN);
	for (j = 0; j < conf->nlocal_milters; j++)
		CHECK(config_milter_at(conf, conf->local_milters[j]) != NULL);
	TAILQ_FOREACH(a, &conf->actions, entry)
	{
		TERMINATED(a->path);
		CHECK(config_find_action(conf, a->name) == a);
		CHECK(a->alias_table[0] == '\0' || a->virtual_table[0] == '\0');
		if (a->alias_table[0] != '\0')
			CHECK(config_find_table(conf, a->alias_table) != NULL);
		if (a->relay_auth_table[0] != '\0')
			CHECK(a->relay_host[0] != '\0');
	}
	TAILQ_FOREACH(m, &conf->matches, entry)
	{
		CHECK(m->line > 0);
		if (m->reject)
			CHECK(m->action == NULL);
		else
			CHECK(m->action != NULL &&
			      strcmp(m->action->name, m->action_name) == 0);
		if (m->for_crit.is_table)
			CHECK(config_find_table(conf, m->for_crit.value) !=
			      NULL);
		if (m->from_crit.is_table)
			CHECK(config_find_table(conf, m->from_crit.value) !=
			      NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtpd_config *conf;
	char err[1024];
	FILE *fp;

	/* fmemopen() refuses an empty buffer on some libcs */
	if (size == 0)
		return 0;
	if ((fp = fmemopen((void *)(uintptr_t)data, size, "r")) == NULL)
		return 0;
	err[0] = '\0';
	conf = config_parse_file(fp, "fuzz", err, sizeof(err));
	fclose(fp);
	if (conf == NULL) {
		check_error(err);
		return 0;
	}
	check_config(conf);
	config_free(conf);
	return 0;
}
