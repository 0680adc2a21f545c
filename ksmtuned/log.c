/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging to the journal (native, with fields) or stderr, and the DEBUG/LOGFILE decision log. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include <systemd/sd-journal.h>

#include "log.h"

static int max_level = LOG_INFO;
static bool use_journal;   /* native messages, with fields */
static bool stderr_stream; /* stderr is the journal stream: each line carries its priority as "<N>" */
static FILE *logfile;

/**
 * log_open() - log to the journal when our stderr is systemd's journal stream.
 * @native: send messages natively (sd_journal_sendv(), with fields) rather than down the stream
 *
 * systemd sets JOURNAL_STREAM to the device and inode of the stream it connected; comparing them with
 * our own stderr tells a service from a shell that merely inherited the variable.
 *
 * Only the daemon logs natively. journald tells which unit a native message came from by reading the
 * sender's /proc/PID/cgroup when the message arrives; a command that exits at once (ExecReload=, a check)
 * is often gone by then, and its messages are not the unit's ("journalctl -u" misses them). The stream
 * was attributed when systemd connected it, so those commands write their lines there, each with the
 * "<N>" priority prefix that journald reads (sd-daemon(3)).
 */
void log_open(bool native) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        use_journal = stderr_stream = false;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return;
        if (fstat(STDERR_FILENO, &st) < 0)
                return;
        stderr_stream = st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
        use_journal = native && stderr_stream;
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

/**
 * log_set_file() - (re)open the LOGFILE that decision lines are appended to; NULL closes it.
 * @ret_in_dir: set to whether @path is a directory, so that LOG_FILE_IN_DIR in it was opened instead
 *
 * Reopening on every reload lets logrotate move the file away. A @path that names an existing directory
 * gets @path/LOG_FILE_IN_DIR (same flags, mode 0640): the original documented LOGFILE=/var/log/ksmtuned,
 * a file, and the shipped unit's LogsDirectory= makes that path a directory.
 * Return: 0; -errno of open(2) or fdopen(3), the old file left open then.
 */
int log_set_file(const char *path, bool *ret_in_dir) {
        const int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY;
        FILE *f = NULL;

        *ret_in_dir = false;
        if (path) {
                int fd = open(path, flags, 0640);

                if (fd < 0 && errno == EISDIR) {
                        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

                        if (dfd < 0)
                                return negative_errno();
                        *ret_in_dir = true;
                        fd = openat(dfd, LOG_FILE_IN_DIR, flags, 0640);
                }
                if (fd < 0)
                        return negative_errno();
                f = fdopen(fd, "ae");
                if (!f) {
                        int r = negative_errno();

                        close(fd);
                        return r;
                }
                setvbuf(f, NULL, _IOLBF, 0);
        }
        log_close_file();
        logfile = f;
        return 0;
}

void log_close_file(void) {
        if (logfile)
                fclose(logfile);
        logfile = NULL;
}

/**
 * log_to_file() - append a line to LOGFILE, stamped like the original's `date` output.
 */
void log_to_file(const char *format, ...) {
        char stamp[64];
        time_t now = time(NULL);
        struct tm tm;
        va_list ap;

        if (!logfile)
                return;
        strftime(stamp, sizeof(stamp), "%a %b %e %H:%M:%S %Z %Y", localtime_r(&now, &tm));
        fprintf(logfile, "%s: ", stamp);
        va_start(ap, format);
        vfprintf(logfile, format, ap);
        va_end(ap);
        fputc('\n', logfile);
}

/**
 * log_internal() - log one message at @level; with @error (a -errno), %m in @format names it.
 *
 * @fields: NULL or a NULL-terminated list of "KEY=value" strings sent to the journal with the message.
 * Returns @error, so callers can write `return log_error_errno(r, ...)`.
 */
int log_internal(int level, int error, const char *const *fields, const char *format, ...) {
        char msg[2048];
        va_list ap;
        int saved_errno = errno;

        if (level > max_level)
                return error;

        errno = error < 0 ? -error : error;
        va_start(ap, format);
        vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);

        if (use_journal) {
                struct iovec iov[32];
                char prio[16], mbuf[sizeof(msg) + 8], ebuf[32];
                size_t n = 0;

                snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
                snprintf(mbuf, sizeof(mbuf), "MESSAGE=%s", msg);
                iov[n++] = (struct iovec) { prio, strlen(prio) };
                iov[n++] = (struct iovec) { mbuf, strlen(mbuf) };
                iov[n++] = (struct iovec) { (char *) "SYSLOG_IDENTIFIER=ksmtuned", 26 };
                if (error != 0) {
                        snprintf(ebuf, sizeof(ebuf), "ERRNO=%d", error < 0 ? -error : error);
                        iov[n++] = (struct iovec) { ebuf, strlen(ebuf) };
                }
                for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                        iov[n++] = (struct iovec) { (char *) fields[i], strlen(fields[i]) };
                if (sd_journal_sendv(iov, (int) n) >= 0) {
                        errno = saved_errno;
                        return error;
                }
        }

        if (stderr_stream)
                fprintf(stderr, "<%d>%s\n", level, msg);
        else
                fprintf(stderr, "%s%s\n", level <= LOG_ERR ? "error: " : level == LOG_WARNING ? "warning: " : "", msg);
        errno = saved_errno;
        return error;
}
