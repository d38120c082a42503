/*
 * pidfile.h -- the parent's locked pid file (pidfile.c).
 */
#ifndef POSTHASTE_PIDFILE_H
#define POSTHASTE_PIDFILE_H

#ifndef SMTPD_PIDFILE
#define SMTPD_PIDFILE	"/run/smtpd.pid"
#endif

/* open and lock; -1 (said on stderr) when another daemon holds it */
int	pid_file_lock(const char *path);
/* write our pid, once the sockets are bound and we are the daemon */
void	pid_file_write(void);
/* at a clean exit */
void	pid_file_remove(void);

#endif
