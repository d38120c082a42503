/*
 * ctl_dkim.h -- "smtpctl dkim ...": the DKIM commands that need no
 * running daemon (key generation).  Apart from smtpctl.c so that the
 * command is one file beside the codec it uses (common/dkim.h).
 */
#ifndef POSTHASTE_CTL_DKIM_H
#define POSTHASTE_CTL_DKIM_H

/* argv[0] is "dkim"; returns smtpctl's exit status */
int	ctl_dkim(int argc, char **argv);

#endif
