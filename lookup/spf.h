/*
 * spf.h -- Sender Policy Framework (RFC 7208) for the lookup process:
 * is the client at this address allowed to send mail for the MAIL FROM
 * domain (or, alone, the HELO name)?
 *
 * The evaluator (spf.c) runs on the calling process's libevent loop
 * (ev_base) over dns_query(): it never blocks, asks one question at a
 * time, and always answers through its callback, later and exactly
 * once, unless the caller cancels it first.  Callers: the lookup process
 * (for an smtp worker's session, on an imsg the lead's wiring adds), and
 * `smtpctl check spf' in-process on its own loop.  Both must have called
 * dns_init() or dns_init_with() first.
 *
 * DNS trouble (SERVFAIL, a timeout, the 20 s ceiling of one check) is a
 * temperror, never a permerror: the client is asked to come back.
 * The record parser and the macro expander are exposed for the unit
 * tests and the fuzz harness (regress/unit/test_spf.c, fuzz_spf.c).
 */
#ifndef POSTHASTE_SPF_H
#define POSTHASTE_SPF_H

#include <sys/socket.h>
#include <stddef.h>
#include <time.h>

/* results, RFC 7208 2.6 */
#define SPF_NONE	0
#define SPF_NEUTRAL	1
#define SPF_PASS	2
#define SPF_FAIL	3
#define SPF_SOFTFAIL	4
#define SPF_TEMPERROR	5
#define SPF_PERMERROR	6

#define SPF_DOMAIN_MAX	256	/* a domain name, NUL included */
#define SPF_SENDER_MAX	512	/* local@domain (RFC 5321: 64 + 1 + 255) */
#define SPF_TERM_MAX	256	/* the mechanism reported (cut to fit) */
#define SPF_EXP_MAX	512	/* an explanation (cut to fit) */

/* RFC 7208 4.6.4: ten DNS terms, two void lookups, ten MX / PTR names */
#define SPF_MAX_DNS_TERMS	10
#define SPF_MAX_VOID		2
#define SPF_MAX_NAMES		10
#define SPF_TIMEOUT_TOTAL	20	/* seconds for one whole check */
#define SPF_TIMEOUT_QUERY	10	/* seconds for each DNS question */

struct spf_req {
	struct sockaddr_storage	addr;	/* the client; v4-mapped is IPv4 */
	char	helo[SPF_DOMAIN_MAX];	/* HELO/EHLO argument as given */
	/*
	 * MAIL FROM as local@domain, without <>; "" for the null sender,
	 * which is checked as postmaster@helo (RFC 7208 2.4)
	 */
	char	sender[SPF_SENDER_MAX];
	char	receiver[SPF_DOMAIN_MAX];	/* our host name, %{r} */
};

struct spf_result {
	int	result;				/* SPF_* */
	char	domain[SPF_DOMAIN_MAX];		/* the identity's domain */
	/* the term that decided, e.g. "-all", "include:_spf.example.com" */
	char	mechanism[SPF_TERM_MAX];
	/*
	 * fail: the domain's exp= text, macro-expanded (RFC 7208 6.2), else
	 * a default one naming the domain; other results: a default line
	 */
	char	explanation[SPF_EXP_MAX];
	/*
	 * for a log line or an SMTP reply's text: what happened, e.g.
	 * "too many DNS lookups (RFC 7208 4.6.4)" for a permerror.  Printable
	 * ASCII only, like explanation.
	 */
	char	smtp_comment[SPF_EXP_MAX];
};

typedef void	(*spf_cb)(void *arg, const struct spf_result *);

struct spf_check;

/*
 * Check MAIL FROM (req->sender; the null sender means postmaster@helo).
 * The callback runs later from the event loop, never from inside this
 * call, exactly once; the handle is valid until then and is freed by the
 * evaluator right after the callback returns.  Never fails: trouble
 * is reported as a temperror or permerror through the callback.
 */
struct spf_check	*spf_check(const struct spf_req *, spf_cb, void *arg);
/* Check the HELO identity alone (RFC 7208 2.3); req->sender is ignored. */
struct spf_check	*spf_check_helo(const struct spf_req *, spf_cb,
			    void *arg);
/*
 * The session went away: the callback will not run.  Only for a handle
 * whose callback has not run yet; queries in flight are left to finish
 * and then dropped.
 */
void			 spf_cancel(struct spf_check *);

/* "pass", "fail" ... as in Received-SPF and Authentication-Results */
const char		*spf_result_name(int);

/* per-query and whole-check timeouts in seconds (tests); 0: default */
void			 spf_set_timeouts(int query, int total);

/*
 * The record parser: one "v=spf1 ..." record (len bytes, no NUL needed)
 * into its terms.  Returns the number of terms (>= 0) into *terms, a
 * calloc'ed array the caller frees, or -1 on a syntax error with a
 * reason in err.  Term text points into rec, which must outlive it.
 */
#define SPF_T_ALL	1
#define SPF_T_INCLUDE	2
#define SPF_T_A		3
#define SPF_T_MX	4
#define SPF_T_PTR	5
#define SPF_T_IP4	6
#define SPF_T_IP6	7
#define SPF_T_EXISTS	8
#define SPF_T_REDIRECT	9	/* modifiers */
#define SPF_T_EXP	10
#define SPF_T_UNKNOWN	11	/* an unknown modifier: ignored */

struct spf_term {
	int		 type;		/* SPF_T_* */
	int		 result;	/* the qualifier's SPF_PASS, ... */
	const char	*text;		/* the whole term, for reports */
	size_t		 textlen;
	const char	*spec;		/* domain-spec (or NULL), unexpanded */
	size_t		 speclen;
	int		 cidr4, cidr6;	/* prefix lengths (32/128 default) */
	unsigned char	 ip[16];	/* ip4 (4 bytes) / ip6 network */
};

int	spf_record_is_spf1(const char *rec, size_t len);
int	spf_record_parse(const char *rec, size_t len, struct spf_term **terms,
	    char *err, size_t errlen);

/*
 * Macro expansion (RFC 7208 7).  The context holds the values of the
 * macro letters; in is a macro-string of inlen bytes.  Flags: SPF_MACRO_EXP
 * allows c, r and t (explanation strings only); SPF_MACRO_DOMAIN marks a
 * domain-spec, whose expansion is cut from the left to 253 characters
 * (7.3).  Returns 0 with NUL-terminated out, -1 on a syntax error (or a
 * result longer than outlen).  spf_macro_check() only checks the syntax;
 * spf_macro_uses() says whether letter (lower case) appears.
 */
#define SPF_MACRO_EXP		0x01
#define SPF_MACRO_DOMAIN	0x02

struct spf_macro_ctx {
	const char	*sender;	/* s: local@domain */
	const char	*local;		/* l */
	const char	*sender_domain;	/* o */
	const char	*domain;	/* d: the current domain */
	const char	*ip;		/* i: dotted IPv4, or IPv6 nibbles */
	const char	*client;	/* c: IPv4 or IPv6 text form */
	const char	*ptr;		/* p: validated name, "unknown" */
	const char	*ipver;		/* v: "in-addr" or "ip6" */
	const char	*helo;		/* h */
	const char	*receiver;	/* r */
	time_t		 now;		/* t */
};

int	spf_macro_expand(const struct spf_macro_ctx *, const char *in,
	    size_t inlen, int flags, char *out, size_t outlen);
int	spf_macro_check(const char *in, size_t inlen, int flags);
/*
 * The client's address for %{i} (dotted IPv4, or 32 dot-separated
 * nibbles of IPv6 in lower case, as RFC 7208 7.4's example) and %{c}
 * (inet_ntop's form); ss must be AF_INET or AF_INET6.
 */
void	spf_macro_ip(const struct sockaddr_storage *ss, char *dots,
	    size_t dlen, char *text, size_t tlen);
int	spf_macro_uses(const char *in, size_t inlen, int letter);

#endif
