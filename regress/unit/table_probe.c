/*
 * table_probe.c -- asks a shared table (pgsql:, ldap:, redis: ...)
 * through the lookup process's own path: table_remote_load() (the
 * parent's check and read of the file), table_remote_start(), then
 * table_lookup_service() inside a parked request (table_stall_*), on a
 * libevent loop.  regress/integration/test_table_pgsql.py uses it to
 * prove what needs no SMTP around it: many questions at once over a
 * small pool, the query timeout, an outage answered at once.
 *
 *	table_probe SMTPD_CONF TABLE [-w MS] SERVICE KEY [SERVICE KEY ...]
 *
 * Every question is asked at once (after -w MS: the later ones that
 * many milliseconds after the loop starts) and answered on a line of its
 * own, in the order the answers came:
 *
 *	N found VALUE | N notfound | N error	(N: its index, from 0)
 *	  then " ms=ELAPSED" since the loop started
 *
 * Exit status 0 when every question was answered within 30 s, 2 on a
 * usage or configuration error, 3 on the deadline.
 */
#include <sys/types.h>
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "proc.h"
#include "table.h"

struct ask {
	struct table_stall	 stall;
	struct table		*t;
	enum table_service	 service;
	const char		*key;
	int			 idx;
	int			 delay_ms;
};

static struct event_base	*base;
static struct timespec		 t0;
static int			 left;

static long
elapsed_ms(void)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0.tv_sec) * 1000 +
	    (now.tv_nsec - t0.tv_nsec) / 1000000;
}

static void
ask_run(void *arg)
{
	struct ask	*a = arg;
	char		*val = NULL;
	int		 rc, stalled;

	table_stall_begin(&a->stall);
	rc = table_lookup_service(a->t, a->service, a->key, &val);
	stalled = a->stall.stalled;
	(void)table_stall_end();
	if (stalled) {
		free(val);
		table_stall_park(&a->stall, ask_run, a);
		return;
	}
	if (rc == TABLE_FOUND)
		printf("%d found %s", a->idx, val != NULL ? val : "");
	else
		printf("%d %s", a->idx, rc == TABLE_NOTFOUND ? "notfound" :
		    "error");
	printf(" ms=%ld\n", elapsed_ms());
	fflush(stdout);
	free(val);
	table_stall_done(&a->stall);
	if (--left == 0)
		event_base_loopexit(base, NULL);
}

static void
ask_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	ask_run(arg);
}

static void
deadline_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	fprintf(stderr, "table_probe: %d questions unanswered after 30 s\n",
	    left);
	exit(3);
}

int
main(int argc, char **argv)
{
	struct ask	*asks;
	struct table	*t;
	struct timeval	 tv, deadline = { 30, 0 };
	char		 err[1024];
	int		 i, n = 0, delay = 0;

	if (argc < 5) {
		fprintf(stderr, "usage: table_probe SMTPD_CONF TABLE "
		    "[-w MS] SERVICE KEY ...\n");
		return 2;
	}
	log_init(1, 1);
	if ((conf = config_parse(argv[1], err, sizeof(err))) == NULL) {
		fprintf(stderr, "table_probe: %s\n", err);
		return 2;
	}
	if (table_remote_load(conf, stderr) > 0)
		return 2;
	TAILQ_FOREACH(t, &conf->tables, entry)
		if (strcmp(t->name, argv[2]) == 0)
			break;
	if (t == NULL) {
		fprintf(stderr, "table_probe: no table %s\n", argv[2]);
		return 2;
	}
	if ((asks = calloc((size_t)argc, sizeof(*asks))) == NULL ||
	    (base = event_base_new()) == NULL)
		return 2;
	table_remote_start(base);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "-w") == 0 && i + 1 < argc) {
			delay = atoi(argv[++i]);
			continue;
		}
		if (i + 1 >= argc ||
		    table_service_parse(argv[i], &asks[n].service) == -1) {
			fprintf(stderr, "table_probe: bad service %s\n",
			    argv[i]);
			return 2;
		}
		asks[n].t = t;
		asks[n].key = argv[++i];
		asks[n].idx = n;
		asks[n].delay_ms = delay;
		n++;
	}
	left = n;
	for (i = 0; i < n; i++) {
		tv.tv_sec = asks[i].delay_ms / 1000;
		tv.tv_usec = (asks[i].delay_ms % 1000) * 1000;
		if (event_base_once(base, -1, EV_TIMEOUT, ask_cb, &asks[i],
		    &tv) == -1)
			return 2;
	}
	if (event_base_once(base, -1, EV_TIMEOUT, deadline_cb, NULL,
	    &deadline) == -1)
		return 2;
	if (n > 0)
		event_base_dispatch(base);
	return 0;
}
