/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned's manager: one sd-event loop that reads a snapshot, asks the policy, applies and reports. */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "ksm-sysfs.h"
#include "log.h"
#include "manager.h"
#include "meminfo.h"
#include "reload.h"

static void apply_log_level(Manager *m) {
        log_set_max_level(m->opts.debug || m->settings.debug ? LOG_DEBUG : LOG_INFO);
}

/*
 * Open LOGFILE for decision lines when DEBUG and LOGFILE are both set; reopened on every reload. One that
 * names a directory (the original's LOGFILE=/var/log/ksmtuned, now the unit's LogsDirectory=) gets its
 * LOG_FILE_IN_DIR, said once.
 */
static void apply_logfile(Manager *m) {
        bool in_dir;
        int r;

        if (!m->settings.debug || !m->settings.logfile) {
                log_close_file();
                return;
        }
        r = log_set_file(m->settings.logfile, &in_dir);
        if (r < 0)
                log_warning_errno(r, "Failed to open LOGFILE %s%s: %m, ignoring", m->settings.logfile,
                                  in_dir ? "/" LOG_FILE_IN_DIR : "");
        else if (in_dir && !m->logfile_in_dir_said)
                log_info("LOGFILE %s is a directory: appending the debug lines to %s/" LOG_FILE_IN_DIR,
                         m->settings.logfile, m->settings.logfile);
        m->logfile_in_dir_said = r >= 0 && in_dir;
}

/*
 * Take new settings and their compiled guest matcher (both from config_load_checked(), and taken over
 * here): the derived threshold and sleep, logging. Fails without change, handing both back to the caller.
 */
static int manager_apply_settings(Manager *m, Settings *s, GuestMatcher *matcher) {
        PolicyParams params;
        MemInfo mi;
        const char *field = NULL;
        char why[96];
        int r;

        r = meminfo_read_full(m->opts.proc_dir, &field, &mi);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s/meminfo: %s", m->opts.proc_dir,
                                       meminfo_strerror(r, field, why, sizeof(why)));
        policy_params(s, mi.mem_total, &params);

        guest_matcher_done(&m->matcher);
        m->matcher = *matcher;
        *matcher = (GuestMatcher) {};
        settings_done(&m->settings);
        m->settings = *s;
        *s = (Settings) {};
        m->params = params;
        apply_log_level(m);
        apply_logfile(m);
        log_debug("total %" PRIu64 " kB, sleep %" PRIu64 " ms, thres %" PRIu64 " kB", params.total, params.sleep_ms,
                  params.thres);
        return 0;
}

static int manager_arm_timer(Manager *m) {
        uint64_t usec = (uint64_t) m->settings.monitor_interval * UINT64_C(1000000);
        int r;

        r = sd_event_source_set_time_relative(m->timer, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(m->timer, SD_EVENT_ONESHOT);
}

static void manager_adjust_and_rearm(Manager *m, Trigger trigger, const char *reason) {
        int r;

        (void) manager_adjust(m, trigger, reason);
        /* Like the original, the interval runs from the last adjustment, whatever caused it. */
        r = manager_arm_timer(m);
        if (r < 0)
                log_error_errno(r, "Failed to arm the interval timer: %m");
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_adjust_and_rearm(userdata, TRIGGER_INTERVAL, "interval");
        return 0;
}

static int on_retune(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        const char *reason = m->retune_reason ? m->retune_reason : "request";
        Trigger trigger = m->retune_trigger != TRIGGER_NONE ? m->retune_trigger : TRIGGER_OTHER;

        m->retune_reason = NULL;
        m->retune_trigger = TRIGGER_NONE;
        manager_adjust_and_rearm(m, trigger, reason);
        return 0;
}

/* Ask for an adjustment soon; requests that arrive before it runs share it. */
static void manager_request_retune(Manager *m, Trigger trigger, const char *reason) {
        if (!m->retune_reason) {
                m->retune_reason = reason;
                m->retune_trigger = trigger;
        }
        (void) sd_event_source_set_enabled(m->retune, SD_EVENT_ONESHOT);
}

static int on_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char reason[160];

        Trigger trigger = m->pending.trigger;

        pending_reason(&m->pending, reason, sizeof(reason));
        pending_clear(&m->pending);
        manager_adjust_and_rearm(m, trigger, reason);
        return 0;
}

/* A guest may have started or stopped: adjust once things settle; later events join that adjustment. */
static void on_guest_event(void *userdata, Trigger trigger, const char *reason) {
        Manager *m = userdata;
        uint64_t now;

        if (trigger == TRIGGER_NONE) {
                manager_publish_status(m);
                return;
        }
        log_debug("Guest event: %s", reason);
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        /* KSM_POLICY=adaptive: the guests' memory is looked at closely from now on, not from the settled
         * adjustment: a new guest's arrives after its VM is announced, and scanning pays once it is there. */
        if (trigger == TRIGGER_GUEST_EVENT && m->have_decision && m->last.run && m->last.adaptive &&
            m->adaptive_timer) {
                adaptive_announce(&m->policy.adaptive, now);
                m->policy.step.watch_guests = true;
                if (sd_event_source_set_time(m->adaptive_timer, now) >= 0)
                        (void) sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_ONESHOT);
        }
        if (!pending_add(&m->pending, now, (uint64_t) m->settings.event_settle_msec * 1000, trigger, reason))
                return;
        if (sd_event_source_set_time(m->settle, m->pending.due) < 0 ||
            sd_event_source_set_enabled(m->settle, SD_EVENT_ONESHOT) < 0) {
                pending_clear(&m->pending);
                manager_request_retune(m, trigger, "guest event");
        }
}

/* What the libvirt watch has to tell, in the log. */
static void on_libvirt_note(void *userdata, const LibvirtNote *n) {
        switch (n->kind) {
        case LIBVIRT_NOTE_CONNECTED:
                log_info("Connected to libvirt at %s: guests starting and stopping now trigger adjustments", n->uri);
                break;
        case LIBVIRT_NOTE_UNAVAILABLE:
                log_info("libvirt at %s is not available (%s); retrying with back-off up to %llu s", n->uri, n->what,
                         (unsigned long long) (n->max_usec / 1000000));
                break;
        case LIBVIRT_NOTE_RETRY_FAILED:
                log_debug("libvirt at %s: %s; next attempt in %llu ms", n->uri, n->what,
                          (unsigned long long) (n->next_usec / 1000));
                break;
        case LIBVIRT_NOTE_LOST:
                log_info("Lost the connection to libvirt at %s (%s); reconnecting", n->uri, n->what);
                break;
        case LIBVIRT_NOTE_IGNORED:
                log_debug("%s (detail %d): no change to guest memory, no adjustment", n->what, n->detail);
                break;
        }
}

/* Start, stop or restart the event sources so they match the settings in force. */
static void manager_apply_events(Manager *m, const Settings *old) {
        int r;

        if (!m->event)
                return;
        if (m->settings.kvm_events && !m->kvm) {
                r = kvm_watch_new(m->event, on_guest_event, m, &m->kvm);
                if (r < 0)
                        log_warning_errno(r, "Cannot listen to the kernel's KVM uevents: %m; VMs started outside "
                                             "libvirt wait for the next interval");
        } else if (!m->settings.kvm_events)
                m->kvm = kvm_watch_free(m->kvm);

        if (old && m->libvirt && old->libvirt_uri && m->settings.libvirt_uri &&
            streq(old->libvirt_uri, m->settings.libvirt_uri))
                return;
        m->libvirt = libvirt_watch_free(m->libvirt);
        if (m->settings.libvirt_uri && *m->settings.libvirt_uri) {
                r = libvirt_watch_new(m->event, m->settings.libvirt_uri, NULL, on_guest_event, on_libvirt_note, m,
                                      &m->libvirt);
                if (r < 0)
                        log_warning_errno(r, "Cannot watch libvirt at %s: %m", m->settings.libvirt_uri);
        }
}

static int manager_reload(Manager *m) {
        uint64_t started = now_usec(CLOCK_MONOTONIC); /* before the files are read: see reload.c */
        GuestMatcher matcher = {};
        Settings s;
        int r;

        sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading %s\nMONOTONIC_USEC=%" PRIu64, m->opts.config_path, started);
        log_info("Reloading configuration from %s", m->opts.config_path);
        r = config_load_checked(m->opts.config_path, m->opts.dropin_dir, config_report_log, m, &s, &matcher);
        if (r >= 0) {
                Settings old;

                if (settings_copy(&m->settings, &old) < 0)
                        r = log_error_errno(-ENOMEM, "Out of memory");
                else {
                        r = manager_apply_settings(m, &s, &matcher);
                        if (r >= 0) {
                                manager_apply_events(m, &old);
                                apply_forget_config_errors(&m->apply);
                                m->fallback_reported = false;
                                m->ksmd.pid = 0;
                                manager_apply_config(m);
                        }
                        settings_done(&old);
                }
                guest_matcher_done(&matcher);
                settings_done(&s);
        }
        if (r < 0) {
                log_error("Configuration not reloaded: keeping the running configuration");
                m->reload_failed = true;
        } else
                m->reload_failed = false;

        manager_adjust_and_rearm(m, TRIGGER_RELOAD, "reload");
        sd_notify(0, "READY=1");
        reload_record(m->opts.runtime_dir, m->opts.config_path, m->opts.dropin_dir, started, r);
        return r;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        switch (si->ssi_signo) {
        case SIGUSR1:
                manager_request_retune(m, TRIGGER_SIGNAL, "SIGUSR1");
                break;
        case SIGHUP:
                (void) manager_reload(m);
                break;
        case SIGTERM:
        case SIGINT:
                sd_notify(0, "STOPPING=1\nSTATUS=Stopping; KSM left as it is");
                log_info("Received %s, exiting; KSM is left as it is", si->ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
                sd_event_exit(sd_event_source_get_event(s), 0);
                break;
        }
        return 0;
}

int manager_new(const ManagerOptions *opts, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;
        GuestMatcher matcher = {};
        Settings s;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(-ENOMEM, "Out of memory");
        m->opts = *opts;
        m->retune_trigger = TRIGGER_NONE;
        apply_init(&m->apply, -1, opts->ksm_dir);
        settings_init(&m->settings);
        log_set_max_level(opts->debug ? LOG_DEBUG : LOG_INFO);

        r = config_load_checked(opts->config_path, opts->dropin_dir, config_report_log, m, &s, &matcher);
        if (r < 0)
                return log_error_errno(r, "Invalid configuration in %s, not starting", opts->config_path);
        r = manager_apply_settings(m, &s, &matcher);
        guest_matcher_done(&matcher);
        settings_done(&s);
        if (r < 0)
                return r;

        r = ksm_open_dir(opts->ksm_dir, &m->apply.ksm_fd);
        if (r == -ENOENT)
                return log_error_errno(r, "%s does not exist: this kernel has no KSM (CONFIG_KSM), nothing to tune",
                                       opts->ksm_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to open %s: %m", opts->ksm_dir);
        if (!opts->dry_run && faccessat(m->apply.ksm_fd, "run", W_OK, AT_EACCESS) < 0) {
                r = negative_errno();
                if (r == -EACCES || r == -EPERM || r == -EROFS)
                        return log_error_errno(r,
                                               "Cannot write %s/run: %m (ksmtuned must run as root; "
                                               "use --dry-run to only watch)",
                                               opts->ksm_dir);
                return log_error_errno(r, "Cannot write %s/run: %m", opts->ksm_dir);
        }

        manager_apply_config(m);

        if (opts->once) {
                *ret = TAKE_PTR(m);
                return 0;
        }

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");

        {
                static const int sigs[] = { SIGUSR1, SIGHUP, SIGTERM, SIGINT };
                sigset_t mask;

                sigemptyset(&mask);
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                        sigaddset(&mask, sigs[i]);
                if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                        return log_error_errno(negative_errno(), "Failed to block signals: %m");
                for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                        r = sd_event_add_signal(m->event, &m->signals[i], sigs[i], on_signal, m);
                        if (r < 0)
                                return log_error_errno(r, "Failed to watch signal %d: %m", sigs[i]);
                }
        }

        /* Armed for real by the first adjustment; the interval runs from each adjustment. */
        r = sd_event_add_time_relative(m->event, &m->timer, CLOCK_MONOTONIC,
                                       (uint64_t) m->settings.monitor_interval * UINT64_C(1000000), 100 * 1000,
                                       on_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the interval timer: %m");

        r = sd_event_add_defer(m->event, &m->retune, on_retune, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the retune source: %m");
        /* Idle priority: pending signals are all taken first, so a burst of them yields one adjustment. */
        (void) sd_event_source_set_priority(m->retune, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(m->retune, SD_EVENT_OFF);

        r = sd_event_add_time(m->event, &m->adaptive_timer, CLOCK_MONOTONIC, 0, 10 * 1000, manager_on_adaptive_check,
                              m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the adaptive policy's timer: %m");
        (void) sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_OFF);

        r = sd_event_add_time(m->event, &m->settle, CLOCK_MONOTONIC, 0, 10 * 1000, on_settle, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the settle timer: %m");
        (void) sd_event_source_set_enabled(m->settle, SD_EVENT_OFF);
        manager_apply_events(m, NULL);

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                log_warning_errno(r, "Failed to enable the watchdog: %m, ignoring");

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(m->signals); i++)
                sd_event_source_unref(m->signals[i]);
        sd_event_source_unref(m->timer);
        sd_event_source_unref(m->retune);
        sd_event_source_unref(m->settle);
        sd_event_source_unref(m->adaptive_timer);
        kvm_watch_free(m->kvm);
        libvirt_watch_free(m->libvirt);
        libvirt_shutdown();
        sd_event_unref(m->event);
        closep(&m->apply.ksm_fd);
        guest_matcher_done(&m->matcher);
        settings_done(&m->settings);
        log_close_file();
        free(m);
        return NULL;
}

/**
 * manager_run() - adjust once at start-up, tell systemd we are ready, then loop until SIGTERM/SIGINT.
 */
int manager_run(Manager *m) {
        int r;

        log_info("ksmtuned " PACKAGE_VERSION " started: interval %" PRIi64 " s, threshold %" PRIu64 " kB of %" PRIu64
                 " kB, sleep %" PRIu64 " ms%s",
                 m->settings.monitor_interval, m->params.thres, m->params.total, m->params.sleep_ms,
                 m->opts.dry_run ? ", dry run (nothing is written)" : "");
        manager_adjust_and_rearm(m, TRIGGER_START_UP, "start-up");
        sd_notify(0, "READY=1");

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
