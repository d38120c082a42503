/*
 * metrics.c -- the Prometheus text format writer (metrics.h).
 *
 * Why a writer and not printf in each process: a sample line whose
 * label value holds a quote or a newline breaks every scrape after it
 * (Prometheus drops the whole target), and a family whose TYPE line
 * comes after its samples is an error to promtool.  Here each family is
 * announced once, names are checked against the format's grammar, label
 * values are escaped (backslash, double quote, newline), and numbers are
 * written the way the format reads them (integers exactly, +Inf).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

void
metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

void
metrics_free(struct metrics *m)
{
	free(m->buf);
	memset(m, 0, sizeof(*m));
}

int
metrics_valid_name(const char *s)
{
	const char	*p;

	if (s == NULL || *s == '\0' || (*s >= '0' && *s <= '9'))
		return 0;
	for (p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == ':'))
			return 0;
	return 1;
}

static void
put(struct metrics *m, const char *s, size_t n)
{
	char	*nb;
	size_t	 ncap;

	if (m->failed)
		return;
	if (m->len + n + 1 > m->cap) {
		ncap = m->cap ? m->cap : 1024;
		while (m->len + n + 1 > ncap)
			ncap *= 2;
		if ((nb = realloc(m->buf, ncap)) == NULL) {
			m->failed = 1;
			return;
		}
		m->buf = nb;
		m->cap = ncap;
	}
	memcpy(m->buf + m->len, s, n);
	m->len += n;
	m->buf[m->len] = '\0';
}

static void
puts_(struct metrics *m, const char *s)
{
	put(m, s, strlen(s));
}

void
metrics_family(struct metrics *m, const char *name, const char *type,
    const char *help)
{
	const char	*p;

	if (!metrics_valid_name(name) || (strcmp(type, "counter") != 0 &&
	    strcmp(type, "gauge") != 0 && strcmp(type, "histogram") != 0)) {
		m->failed = 1;
		return;
	}
	puts_(m, "# HELP ");
	puts_(m, name);
	put(m, " ", 1);
	/* HELP escapes backslash and newline */
	for (p = help; *p != '\0'; p++) {
		if (*p == '\\')
			puts_(m, "\\\\");
		else if (*p == '\n')
			puts_(m, "\\n");
		else
			put(m, p, 1);
	}
	puts_(m, "\n# TYPE ");
	puts_(m, name);
	put(m, " ", 1);
	puts_(m, type);
	put(m, "\n", 1);
}

static void
label_value(struct metrics *m, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			puts_(m, "\\\\");
		else if (*v == '"')
			puts_(m, "\\\"");
		else if (*v == '\n')
			puts_(m, "\\n");
		else
			put(m, v, 1);
	}
}

/* name{k="v",...} with the labels of a NULL-ended list of pairs */
static void
sample_head(struct metrics *m, const char *name, const char *label,
    va_list ap)
{
	const char	*k, *v;
	int		 first = 1;

	if (!metrics_valid_name(name)) {
		m->failed = 1;
		return;
	}
	puts_(m, name);
	for (k = label; k != NULL; k = va_arg(ap, const char *)) {
		if ((v = va_arg(ap, const char *)) == NULL ||
		    !metrics_valid_name(k)) {
			m->failed = 1;
			return;
		}
		put(m, first ? "{" : ",", 1);
		first = 0;
		puts_(m, k);
		puts_(m, "=\"");
		label_value(m, v);
		put(m, "\"", 1);
	}
	if (!first)
		put(m, "}", 1);
}

void
metrics_u64(struct metrics *m, const char *name, uint64_t v,
    const char *label, ...)
{
	va_list	ap;
	char	num[32];

	va_start(ap, label);
	sample_head(m, name, label, ap);
	va_end(ap);
	snprintf(num, sizeof(num), " %llu\n", (unsigned long long)v);
	puts_(m, num);
}

static void
format_double(char *buf, size_t size, double v)
{
	if (isnan(v))
		snprintf(buf, size, "NaN");
	else if (isinf(v))
		snprintf(buf, size, "%sInf", v > 0 ? "+" : "-");
	else
		snprintf(buf, size, "%.15g", v);
}

void
metrics_double(struct metrics *m, const char *name, double v,
    const char *label, ...)
{
	va_list	ap;
	char	num[64];

	va_start(ap, label);
	sample_head(m, name, label, ap);
	va_end(ap);
	put(m, " ", 1);
	format_double(num, sizeof(num), v);
	puts_(m, num);
	put(m, "\n", 1);
}

void
metrics_hist_observe(struct metrics_hist *h, double v)
{
	int	i;

	for (i = 0; i < h->nbounds; i++)
		if (v <= h->bounds[i])
			break;
	h->counts[i]++;
	h->count++;
	h->sum += v;
}

void
metrics_hist_write(struct metrics *m, const char *name,
    const struct metrics_hist *h)
{
	char		 n[128], le[64];
	uint64_t	 cum = 0;
	int		 i;

	if (h->nbounds > METRICS_HIST_MAX) {
		m->failed = 1;
		return;
	}
	snprintf(n, sizeof(n), "%s_bucket", name);
	for (i = 0; i < h->nbounds; i++) {
		cum += h->counts[i];
		format_double(le, sizeof(le), h->bounds[i]);
		metrics_u64(m, n, cum, "le", le, NULL);
	}
	cum += h->counts[h->nbounds];
	metrics_u64(m, n, cum, "le", "+Inf", NULL);
	snprintf(n, sizeof(n), "%s_sum", name);
	metrics_double(m, n, h->sum, NULL);
	snprintf(n, sizeof(n), "%s_count", name);
	metrics_u64(m, n, h->count, NULL);
}

const char *
metrics_text(struct metrics *m, size_t *len)
{
	if (m->failed)
		return NULL;
	if (m->buf == NULL)
		put(m, "", 0);
	if (m->failed)
		return NULL;
	if (len)
		*len = m->len;
	return m->buf;
}
