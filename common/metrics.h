/*
 * metrics.h -- the Prometheus text exposition format (version 0.0.4,
 * which OpenMetrics parsers read too), written by one small writer so
 * that no process hand-builds the lines: names are checked, every
 * family gets its HELP and TYPE before its samples, and label values
 * are escaped.  Used by the queue for "smtpctl show metrics" and the
 * control process's GET /metrics (control/metrics_http.c).
 */
#ifndef POSTHASTE_METRICS_H
#define POSTHASTE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics {
	char	*buf;
	size_t	 len, cap;
	int	 failed;	/* out of memory, or a bad name: no output */
};

/* a histogram: cumulative buckets as Prometheus wants them at output */
#define METRICS_HIST_MAX	16
struct metrics_hist {
	const double	*bounds;	/* upper bounds, ascending */
	int		 nbounds;	/* <= METRICS_HIST_MAX */
	uint64_t	 counts[METRICS_HIST_MAX + 1];	/* last: +Inf */
	uint64_t	 count;
	double		 sum;
};

void	metrics_init(struct metrics *);
void	metrics_free(struct metrics *);
/* "counter", "gauge" or "histogram"; help is one line of plain text */
void	metrics_family(struct metrics *, const char *name, const char *type,
	    const char *help);
/* labels: NULL, or "k1", "v1", "k2", "v2", ..., NULL */
void	metrics_u64(struct metrics *, const char *name, uint64_t,
	    const char *label, ...);
void	metrics_double(struct metrics *, const char *name, double,
	    const char *label, ...);
void	metrics_hist_observe(struct metrics_hist *, double);
void	metrics_hist_write(struct metrics *, const char *name,
	    const struct metrics_hist *);
/* the text so far (NUL-terminated), or NULL if anything failed */
const char *metrics_text(struct metrics *, size_t *len);
/* is this a valid metric or label name ([a-zA-Z_:][a-zA-Z0-9_:]*)? */
int	metrics_valid_name(const char *);

#endif
