/* SPDX-License-Identifier: GPL-2.0-or-later */
/* `ksmtuned --check-config` and `ksmtuned --reload=PID`, and the reload state the daemon keeps for them. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/syscall.h>

#include "guests.h"
#include "log.h"
#include "reload.h"

/*
 * Why a client: under systemd 252's Type=notify, `systemctl reload` returns when ExecReload= exits, and
 * its exit status is the reload's result; `kill -HUP` exits at once, with 0. `ksmtuned --reload=$MAINPID`
 * checks the configuration first (exit 1, daemon untouched, when invalid), then sends SIGHUP and waits
 * until the daemon records, in its runtime directory, a reload that began after the signal was sent: the
 * daemon takes that time (CLOCK_MONOTONIC) when it dequeues the signal, before it reads the files, and
 * writes the record once the new configuration is applied and the adjustment that follows is done. A
 * reload that began after our signal read the files after our check, so its result is the one to report;
 * two SIGHUPs that the kernel merged into one still yield such a reload. The same comparison is how
 * systemd's Type=notify-reload tells a reload it asked for from an older one (MONOTONIC_USEC=).
 */

void reload_state_done(ReloadState *s) {
        free(s->config_path);
        free(s->dropin_dir);
        *s = (ReloadState) {};
}

/**
 * reload_state_parse() - read "KEY=VALUE" lines: CONFIG=, DROPINS= (may be empty), STARTED_USEC=, RESULT=.
 *
 * Return: 0; -EBADMSG when CONFIG= is missing or a number is malformed; -ENOMEM.
 */
int reload_state_parse(const char *text, ReloadState *ret) {
        ReloadState s = {};
        const char *line = text;
        int r = 0;

        while (*line && r >= 0) {
                const char *eol = strchrnul(line, '\n');
                _cleanup_free_ char *l = strndup(line, (size_t) (eol - line));
                char *eq;

                line = *eol ? eol + 1 : eol;
                if (!l) {
                        r = -ENOMEM;
                        break;
                }
                eq = strchr(l, '=');
                if (!eq)
                        continue;
                *eq++ = '\0';
                if (streq(l, "CONFIG")) {
                        free(s.config_path);
                        s.config_path = strdup(eq);
                        if (!s.config_path)
                                r = -ENOMEM;
                } else if (streq(l, "DROPINS")) {
                        free(s.dropin_dir);
                        s.dropin_dir = *eq ? strdup(eq) : NULL;
                        if (*eq && !s.dropin_dir)
                                r = -ENOMEM;
                } else if (streq(l, "STARTED_USEC")) {
                        if (safe_atou64(eq, &s.started_usec) < 0)
                                r = -EBADMSG;
                } else if (streq(l, "RESULT")) {
                        if (safe_atoi64(eq, &s.result) < 0)
                                r = -EBADMSG;
                }
        }
        if (r >= 0 && !s.config_path)
                r = -EBADMSG;
        if (r < 0) {
                reload_state_done(&s);
                return r;
        }
        *ret = s;
        return 0;
}

/**
 * reload_state_write() - replace @dir/reload with @s, atomically (a temporary file renamed over it).
 *
 * Return: 0; -EINVAL for a path with a newline; -errno of open(2), write(2) or rename(2).
 */
int reload_state_write(const char *dir, const ReloadState *s) {
        _cleanup_close_ int dfd = -1;
        _cleanup_fclose_ FILE *f = NULL;
        int fd, r;

        if (strchr(s->config_path, '\n') || (s->dropin_dir && strchr(s->dropin_dir, '\n')))
                return -EINVAL;
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        fd = openat(dfd, RELOAD_STATE_FILE ".new", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        f = fdopen(fd, "w");
        if (!f) {
                r = negative_errno();
                close(fd);
                return r;
        }
        fprintf(f,
                "# ksmtuned's configuration and its last reload, for ksmtuned --reload\n"
                "CONFIG=%s\nDROPINS=%s\nSTARTED_USEC=%" PRIu64 "\nRESULT=%" PRIi64 "\n",
                s->config_path, s->dropin_dir ?: "", s->started_usec, s->result);
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        if (renameat(dfd, RELOAD_STATE_FILE ".new", dfd, RELOAD_STATE_FILE) < 0)
                return negative_errno();
        return 0;
}

/**
 * reload_state_read() - read and parse @dir/reload; errors as open(2), read(2) and reload_state_parse().
 */
int reload_state_read(const char *dir, ReloadState *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        if (asprintf(&path, "%s/" RELOAD_STATE_FILE, dir) < 0)
                return -ENOMEM;
        r = read_full_file_at(AT_FDCWD, path, 64 * 1024, &text, NULL);
        if (r < 0)
                return r;
        return reload_state_parse(text, ret);
}

/* How the daemon reports configuration problems: the same words wherever the check runs. */
void config_report_log(void *userdata, ConfigSeverity severity, const char *file, unsigned line, const char *message) {
        int level = severity == CONFIG_ERROR ? LOG_ERR : LOG_WARNING;

        if (line > 0)
                log_full_errno(level, 0, "%s:%u: %s", file, line, message);
        else
                log_full_errno(level, 0, "%s: %s", file, message);
}

/**
 * config_load_checked() - everything the daemon checks before it takes a configuration: the file and its
 * drop-ins (config_load()) and the guest match expressions, compiled. The daemon's start and reload and
 * `ksmtuned --check-config` all go through here, so the check says what the daemon would.
 * @ret: the settings, as config_load() leaves them; untouched on failure
 * @ret_matcher: the compiled expressions; empty on failure. The caller frees both.
 *
 * Problems go to @report, an invalid expression as an error of @config_path. Touches no KSM, no /proc.
 * Return: 0 when valid; -EINVAL when not; -ENOMEM.
 */
int config_load_checked(const char *config_path, const char *dropin_dir, ConfigReport report, void *userdata,
                        Settings *ret, GuestMatcher *ret_matcher) {
        Settings s;
        char err[256], message[300];
        int r;

        r = config_load(config_path, dropin_dir, &s, report, userdata);
        if (r < 0)
                return r;
        r = guest_matcher_init(ret_matcher, s.guest_comm, s.guest_cmdline, err, sizeof(err));
        if (r < 0) {
                snprintf(message, sizeof(message), "Invalid guest match expression: %s", err);
                if (report)
                        report(userdata, CONFIG_ERROR, config_path, 0, message);
                settings_done(&s);
                return r == -ENOMEM ? r : -EINVAL;
        }
        *ret = s;
        return 0;
}

/**
 * config_check() - config_load_checked() that keeps nothing.
 */
int config_check(const char *config_path, const char *dropin_dir, ConfigReport report, void *userdata) {
        GuestMatcher matcher;
        Settings s;
        int r;

        r = config_load_checked(config_path, dropin_dir, report, userdata, &s, &matcher);
        if (r < 0)
                return r;
        guest_matcher_done(&matcher);
        settings_done(&s);
        return 0;
}

/**
 * run_check_config() - `ksmtuned --check-config`: exit status 0 when valid, 1 when not.
 */
int run_check_config(const char *config_path, const char *dropin_dir) {
        int r = config_check(config_path, dropin_dir, config_report_log, NULL);

        if (r == -ENOMEM)
                log_error("Out of memory");
        else if (r < 0)
                log_error("Invalid configuration in %s", config_path);
        return r < 0 ? 1 : 0;
}

static int pidfd_open_(pid_t pid) {
#ifdef SYS_pidfd_open
        return (int) syscall(SYS_pidfd_open, pid, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

static int pidfd_send_signal_(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
        return (int) syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0);
#else
        errno = ENOSYS;
        return -1;
#endif
}

/**
 * run_reload() - `ksmtuned --reload=PID`: check, signal, and wait until daemon @pid has applied the reload.
 * @runtime_dir: where the daemon keeps its reload state
 * @timeout_usec: how long to wait for the daemon
 *
 * Exit status: 0 when the reload is in force; 1 when the configuration is invalid (the daemon is not
 * signalled), when the daemon kept its running configuration, exited, or did not answer in time.
 */
int run_reload(pid_t pid, const char *runtime_dir, uint64_t timeout_usec) {
        _cleanup_(reload_state_done) ReloadState st = {};
        _cleanup_close_ int pidfd = -1, ino = -1;
        uint64_t t0, deadline;
        int r;

        if (pid <= 1) {
                log_error("No daemon to reload: PID %d (is ksmtuned running? $MAINPID is empty when it is not)",
                          (int) pid);
                return 1;
        }
        if (!runtime_dir) {
                log_error("No runtime directory: pass --runtime-dir=DIR, or run this as the unit's ExecReload= "
                          "(RuntimeDirectory=ksmtuned sets $RUNTIME_DIRECTORY)");
                return 1;
        }
        r = reload_state_read(runtime_dir, &st);
        if (r < 0) {
                log_error_errno(r,
                                "Failed to read %s/" RELOAD_STATE_FILE ": %s; ksmtuned (PID %d) keeps no reload "
                                "state there (it predates this version or runs without that runtime directory: "
                                "restart it)",
                                runtime_dir, r == -EBADMSG ? "malformed" : strerror(-r), (int) pid);
                return 1;
        }

        /* The files the daemon reads, checked as it will check them. */
        r = config_check(st.config_path, st.dropin_dir, config_report_log, NULL);
        if (r < 0) {
                log_error("Invalid configuration in %s: not reloading; ksmtuned (PID %d) keeps the running "
                          "configuration",
                          st.config_path, (int) pid);
                return 1;
        }

        ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino < 0 || inotify_add_watch(ino, runtime_dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
                log_error_errno(negative_errno(), "Failed to watch %s: %m", runtime_dir);
                return 1;
        }
        /* A pidfd signals the process we looked at even if the PID is reused, and tells when it exits. */
        pidfd = pidfd_open_(pid);
        t0 = now_usec(CLOCK_MONOTONIC);
        if (pidfd >= 0)
                r = pidfd_send_signal_(pidfd, SIGHUP);
        else
                r = kill(pid, SIGHUP);
        if (r < 0) {
                log_error_errno(negative_errno(), "Failed to send SIGHUP to ksmtuned (PID %d): %m", (int) pid);
                return 1;
        }

        deadline = t0 + timeout_usec;
        for (;;) {
                _cleanup_(reload_state_done) ReloadState now = {};
                struct pollfd p[2] = { { .fd = ino, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                char buf[4096];
                uint64_t t;
                int ms;

                /* Read after every event and once before the first: the record may be there already. */
                if (reload_state_read(runtime_dir, &now) >= 0 && now.started_usec >= t0) {
                        if (now.result < 0) {
                                log_error("ksmtuned (PID %d) could not apply %s: %s; it keeps the running "
                                          "configuration (its log says why)",
                                          (int) pid, st.config_path, strerror((int) -now.result));
                                return 1;
                        }
                        log_debug("ksmtuned (PID %d) reloaded %s", (int) pid, st.config_path);
                        return 0;
                }
                if (pidfd < 0 && kill(pid, 0) < 0 && errno == ESRCH) {
                        log_error("ksmtuned (PID %d) exited during the reload", (int) pid);
                        return 1;
                }
                t = now_usec(CLOCK_MONOTONIC);
                if (t >= deadline) {
                        log_error("ksmtuned (PID %d) did not confirm the reload within %" PRIu64 " s", (int) pid,
                                  timeout_usec / 1000000);
                        return 1;
                }
                ms = (int) ((deadline - t + 999) / 1000);
                if (pidfd < 0 && ms > 1000)
                        ms = 1000; /* without a pidfd, look whether the daemon is still there every second */
                r = poll(p, pidfd >= 0 ? 2 : 1, ms);
                if (r < 0 && errno != EINTR) {
                        log_error_errno(negative_errno(), "Failed to wait for ksmtuned (PID %d): %m", (int) pid);
                        return 1;
                }
                if (r > 0 && (p[1].revents & POLLIN)) {
                        /* It may have written the record and then exited: one last look. */
                        reload_state_done(&now);
                        if (reload_state_read(runtime_dir, &now) >= 0 && now.started_usec >= t0 && now.result == 0)
                                return 0;
                        log_error("ksmtuned (PID %d) exited during the reload", (int) pid);
                        return 1;
                }
                while (read(ino, buf, sizeof(buf)) > 0)
                        ;
        }
}

/**
 * reload_record() - the daemon's side: record in @runtime_dir the files it reads and, once a reload is in
 * force or refused, when that reload began (@started_usec, CLOCK_MONOTONIC; 0 at start-up) and its @result.
 *
 * Without a runtime directory (not under systemd, no --runtime-dir) there is nothing to record.
 */
void reload_record(const char *runtime_dir, const char *config_path, const char *dropin_dir, uint64_t started_usec,
                   int result) {
        ReloadState s = {
                .config_path = (char *) config_path,
                .dropin_dir = (char *) dropin_dir,
                .started_usec = started_usec,
                .result = result < 0 ? result : 0,
        };
        int r;

        if (!runtime_dir)
                return;
        r = reload_state_write(runtime_dir, &s);
        if (r < 0)
                log_warning_errno(r,
                                  "Failed to write %s/" RELOAD_STATE_FILE ": %m; ksmtuned --reload cannot confirm "
                                  "reloads",
                                  runtime_dir);
}
