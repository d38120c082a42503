/*
 * ctl_qshape.c -- smtpctl show qshape: see ctl_qshape.h.
 *
 * Postfix admins read a queue's shape with qshape(1): one row per
 * domain, a column per age band, each band twice as wide as the one
 * before (0-5 minutes, 5-10, 10-20, ... 640-1280, then older), so a
 * destination that stopped taking mail stands out as a row whose counts
 * move right.  We count envelopes (one per recipient), as the queue
 * holds them; qshape counts recipients too.
 *
 * The domain is what follows the last '@' of the address (recipient
 * after expansion, or the sender with -s), in lower case; the empty
 * sender is "MAILER-DAEMON", as in qshape.  The address came from a
 * client: a byte that is not a domain's (letters, digits, '.', '-',
 * '_', '[', ']', ':') prints as '?', so nothing a sender chose reaches
 * the terminal raw and the columns stay aligned.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_qshape.h"

/* the upper bound of each band, in minutes; the last band is older */
static const unsigned	qshape_band[QSHAPE_BUCKETS - 1] = {
	5, 10, 20, 40, 80, 160, 320, 640, 1280
};

void
qshape_init(struct qshape *qs, int by_sender)
{
	memset(qs, 0, sizeof(*qs));
	qs->by_sender = by_sender;
	snprintf(qs->all.domain, sizeof(qs->all.domain), "TOTAL");
}

static void
domain_of(const char *addr, char *out, size_t len)
{
	const char	*at = strrchr(addr, '@');
	size_t		 o = 0;

	if (addr[0] == '\0') {
		snprintf(out, len, "MAILER-DAEMON");
		return;
	}
	at = at != NULL ? at + 1 : addr;
	for (; *at != '\0' && o + 1 < len; at++) {
		unsigned char	c = (unsigned char)*at;

		if (isalnum(c) && c < 0x80)
			out[o++] = tolower(c);
		else if (strchr(".-_[]:", c) != NULL)
			out[o++] = c;
		else
			out[o++] = '?';
	}
	out[o] = '\0';
	if (o == 0)
		snprintf(out, len, "?");
}

static int
band_of(const struct ctl_queue_entry *q)
{
	int64_t	age = q->now > q->arrival ? q->now - q->arrival : 0;
	int	i;

	for (i = 0; i < QSHAPE_BUCKETS - 1; i++)
		if (age < (int64_t)qshape_band[i] * 60)
			return i;
	return QSHAPE_BUCKETS - 1;
}

int
qshape_add(struct qshape *qs, const struct ctl_queue_entry *q)
{
	char			 dom[sizeof(qs->all.domain)];
	struct qshape_row	*r = NULL, *n;
	size_t			 i;
	int			 b = band_of(q);

	domain_of(qs->by_sender ? q->sender : q->recipient, dom, sizeof(dom));
	/* a linear search: an admin's tool, and a queue has few domains */
	for (i = 0; i < qs->nrows; i++)
		if (strcmp(qs->rows[i].domain, dom) == 0) {
			r = &qs->rows[i];
			break;
		}
	if (r == NULL) {
		if (qs->nrows == qs->cap) {
			size_t	cap = qs->cap ? qs->cap * 2 : 16;

			if ((n = reallocarray(qs->rows, cap, sizeof(*n))) ==
			    NULL)
				return -1;
			qs->rows = n;
			qs->cap = cap;
		}
		r = &qs->rows[qs->nrows++];
		memset(r, 0, sizeof(*r));
		memcpy(r->domain, dom, sizeof(dom));
	}
	r->total++;
	r->age[b]++;
	qs->all.total++;
	qs->all.age[b]++;
	return 0;
}

static int
row_cmp(const void *a, const void *b)
{
	const struct qshape_row	*x = a, *y = b;

	if (x->total != y->total)
		return x->total < y->total ? 1 : -1;
	return strcmp(x->domain, y->domain);
}

static void
row_print(FILE *fp, const struct qshape_row *r)
{
	int	i;

	fprintf(fp, "%30s %6lu", r->domain, r->total);
	for (i = 0; i < QSHAPE_BUCKETS; i++)
		fprintf(fp, " %5lu", r->age[i]);
	fputc('\n', fp);
}

void
qshape_print(FILE *fp, struct qshape *qs)
{
	size_t	i;

	fprintf(fp, "%30s %6s", "", "T");
	for (i = 0; i < QSHAPE_BUCKETS - 1; i++)
		fprintf(fp, " %5u", qshape_band[i]);
	fprintf(fp, " %5s\n", "1280+");
	row_print(fp, &qs->all);
	if (qs->nrows > 1)
		qsort(qs->rows, qs->nrows, sizeof(*qs->rows), row_cmp);
	for (i = 0; i < qs->nrows; i++)
		row_print(fp, &qs->rows[i]);
}

void
qshape_free(struct qshape *qs)
{
	free(qs->rows);
	qs->rows = NULL;
	qs->nrows = qs->cap = 0;
}
