/*
 * ctl_spf.h -- "smtpctl check spf IP HELO SENDER": the lookup process's
 * SPF evaluator (lookup/spf.c) run in-process, for administrators (what
 * spfquery is used for) and for the RFC 7208 test suite.
 */
#ifndef POSTHASTE_CTL_SPF_H
#define POSTHASTE_CTL_SPF_H

/*
 * argv: the words after "check spf" (options, then IP HELO SENDER);
 * cfg: smtpd.conf, for its "resolver" (and "hostname", %{r}).  Prints
 * the result and returns the exit status (0, or 64 for a usage error,
 * 1 when the resolver cannot be set up).
 */
int	ctl_check_spf(const char *cfg, int argc, char **argv);

#endif
