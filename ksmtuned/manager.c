/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ksmtuned's manager: one sd-event loop that samples memory, asks the policy and applies its decision. */
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "ksm-sysfs.h"
#include "log.h"
#include "manager.h"
#include "ksmd.h"
#include "meminfo.h"
#include "meminfo-report.h"
#include "reload.h"

const char *const knob_names[_KNOB_MAX] = {
        [KNOB_PAGES_TO_SCAN] = "pages_to_scan",
        [KNOB_SLEEP_MILLISECS] = "sleep_millisecs",
        [KNOB_RUN] = "run",
        [KNOB_ADVISOR_MODE] = "advisor_mode",
        [KNOB_ADVISOR_MAX_CPU] = "advisor_max_cpu",
        [KNOB_ADVISOR_MIN_PAGES] = "advisor_min_pages_to_scan",
        [KNOB_ADVISOR_MAX_PAGES] = "advisor_max_pages_to_scan",
        [KNOB_ADVISOR_TARGET_SCAN_TIME] = "advisor_target_scan_time",
        [KNOB_SMART_SCAN] = "smart_scan",
        [KNOB_USE_ZERO_PAGES] = "use_zero_pages",
        [KNOB_MAX_PAGE_SHARING] = "max_page_sharing",
        [KNOB_MERGE_ACROSS_NODES] = "merge_across_nodes",
};

static void config_report(void *userdata, ConfigSeverity severity, const char *file, unsigned line,
                          const char *message) {
        int level = severity == CONFIG_ERROR ? LOG_ERR : LOG_WARNING;

        if (line > 0)
                log_full_errno(level, 0, "%s:%u: %s", file, line, message);
        else
                log_full_errno(level, 0, "%s: %s", file, message);
}

/* Human-readable kB figure for STATUS= and the log. */
static const char *format_kb(char *buf, size_t size, uint64_t kb) {
        if (kb >= 1024 * 1024)
                snprintf(buf, size, "%.1f GiB", (double) kb / (1024.0 * 1024.0));
        else if (kb >= 1024)
                snprintf(buf, size, "%.1f MiB", (double) kb / 1024.0);
        else
                snprintf(buf, size, "%" PRIu64 " kB", kb);
        return buf;
}

static void apply_log_level(Manager *m) {
        log_set_max_level(m->opts.debug || m->settings.debug ? LOG_DEBUG : LOG_INFO);
}

/* Open LOGFILE for decision lines when DEBUG and LOGFILE are both set; reopened on every reload. */
static void apply_logfile(Manager *m) {
        int r;

        if (!m->settings.debug || !m->settings.logfile) {
                log_close_file();
                return;
        }
        r = log_set_file(m->settings.logfile);
        if (r < 0)
                log_warning_errno(r, "Failed to open LOGFILE %s: %m, ignoring", m->settings.logfile);
}

/* Take new settings: the guest matcher, the derived threshold and sleep, logging. Fails without change. */
static int manager_apply_settings(Manager *m, Settings *s) {
        GuestMatcher matcher;
        PolicyParams params;
        MemInfo mi;
        const char *field = NULL;
        char err[256];
        int r;

        r = guest_matcher_init(&matcher, s->guest_comm, s->guest_cmdline, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "Invalid guest match expression: %s", err);

        r = meminfo_read_full(m->opts.proc_dir, &field, &mi);
        if (r < 0) {
                guest_matcher_done(&matcher);
                return log_error_errno(r, "Failed to read %s/meminfo: %s", m->opts.proc_dir,
                                       meminfo_strerror(r, field, err, sizeof(err)));
        }
        policy_params(s, mi.mem_total, &params);

        guest_matcher_done(&m->matcher);
        m->matcher = matcher;
        settings_done(&m->settings);
        m->settings = *s;
        *s = (Settings) {};
        m->params = params;
        apply_log_level(m);
        apply_logfile(m);
        log_debug("total %" PRIu64 " kB, sleep %" PRIu64 " ms, thres %" PRIu64 " kB", params.total,
                  params.sleep_ms, params.thres);
        return 0;
}

static void manager_publish_status(Manager *m) {
        char a[32], b[32], c[32], t[32], extra[256] = "";
        const Decision *d = &m->last;
        const Snapshot *snap = &m->last_snapshot;

        if (!m->have_decision)
                return;
        if (snap->has_ksmd_cpu)
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "; ksmd %.1f%% CPU",
                         snap->ksmd_cpu_permille / 10.0);
        if (m->advisor_owns)
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "; advisor owns pages_to_scan");
        if (m->libvirt)
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), "; %s",
                         libvirt_state_to_string(libvirt_watch_state(m->libvirt)));
        if (m->reload_failed)
                snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
                         "; configuration reload failed, previous one in force");
        if (d->run)
                sd_notifyf(0,
                           "STATUS=KSM on: pages_to_scan %" PRIi64 ", sleep %" PRIu64 " ms; free %s %s threshold %s; "
                           "guests commit %s%s",
                           d->npages, d->sleep_ms, format_kb(a, sizeof(a), d->free), d->boost ? "<" : ">=",
                           format_kb(b, sizeof(b), d->thres), format_kb(c, sizeof(c), d->committed), extra);
        else
                sd_notifyf(0, "STATUS=KSM off: free %s > threshold %s, guests commit %s of %s%s",
                           format_kb(a, sizeof(a), d->free), format_kb(b, sizeof(b), d->thres),
                           format_kb(c, sizeof(c), d->committed), format_kb(t, sizeof(t), d->total), extra);
}

/*
 * Write one knob unless it already holds @value. A failure is logged when it first happens (or its errno
 * changes), its end is logged too, and every adjustment tries again.
 */
void manager_write_knob(Manager *m, int knob, bool known, uint64_t cur, uint64_t value) {
        const char *name = knob_names[knob];
        int r = 0;

        if (!known || cur != value)
                r = ksm_write_u64(m->ksm_fd, name, value);
        if (r < 0) {
                if (m->knob_error[knob] != r)
                        log_warning_errno(r, "Failed to write %" PRIu64 " to %s/%s: %m; retrying at every adjustment",
                                          value, m->opts.ksm_dir, name);
                m->knob_error[knob] = r;
                return;
        }
        if (m->knob_error[knob] != 0)
                log_info("Writing %s/%s works again", m->opts.ksm_dir, name);
        m->knob_error[knob] = 0;
}

/*
 * The directory was opened at start. When another one now stands at its path (sysfs remounted, or in
 * tests a directory replaced), reopen it; a path that is simply gone leaves the old fd, whose writes then
 * fail and are reported, knob by knob, once.
 */
static void manager_check_ksm_dir(Manager *m) {
        struct stat now, held;
        int fd;

        if (stat(m->opts.ksm_dir, &now) < 0 || fstat(m->ksm_fd, &held) < 0)
                return;
        if (now.st_dev == held.st_dev && now.st_ino == held.st_ino)
                return;
        if (ksm_open_dir(m->opts.ksm_dir, &fd) < 0)
                return;
        log_info("%s was replaced by another directory: writing the new one", m->opts.ksm_dir);
        closep(&m->ksm_fd);
        m->ksm_fd = fd;
}

/* "; adaptive: WHY" for the info line of a change the adaptive policy made. */
static const char *adaptive_suffix(Manager *m) {
        static char buf[96];

        snprintf(buf, sizeof(buf), "; adaptive: %s", adaptive_why_string(m->adaptive_step.why));
        return buf;
}

/* Whether the kernel's advisor is in scan-time mode, where it sets pages_to_scan and refuses ours. */
static bool advisor_owns_pages_to_scan(Manager *m) {
        _cleanup_free_ char *text = NULL, *mode = NULL;

        if (ksm_read_string(m->ksm_fd, "advisor_mode", &text) < 0 || ksm_parse_choice(text, &mode) < 0)
                return false;
        return streq(mode, "scan-time");
}

/**
 * manager_read_counters() - KSM's counters, read once for all that an adjustment needs them for.
 *
 * Absent files (older kernels) read as 0. Returns whether the basic three (full_scans, pages_shared,
 * pages_sharing) were there.
 */
bool manager_read_counters(Manager *m, KsmCounters *c) {
        bool basic;

        *c = (KsmCounters) {};
        basic = ksm_read_u64(m->ksm_fd, "full_scans", &c->full_scans) >= 0;
        basic = ksm_read_u64(m->ksm_fd, "pages_shared", &c->pages_shared) >= 0 && basic;
        basic = ksm_read_u64(m->ksm_fd, "pages_sharing", &c->pages_sharing) >= 0 && basic;
        (void) ksm_read_u64(m->ksm_fd, "pages_unshared", &c->pages_unshared);
        (void) ksm_read_u64(m->ksm_fd, "pages_volatile", &c->pages_volatile);
        (void) ksm_read_u64(m->ksm_fd, "ksm_zero_pages", &c->zero_pages);
        return basic;
}

/* Write what the decision asks for, in the original's order, and log every change at info. */
static void manager_apply(Manager *m, const Decision *d) {
        uint64_t cur[KNOB_RUN + 1] = {};
        bool known[KNOB_RUN + 1];
        char a[32], b[32], c[32], t[32];
        bool owns;

        manager_check_ksm_dir(m);
        for (int k = 0; k <= KNOB_RUN; k++)
                known[k] = ksm_read_u64(m->ksm_fd, knob_names[k], &cur[k]) >= 0;

        if (!d->run) {
                bool stopped = known[KNOB_RUN] && (cur[KNOB_RUN] == KSM_RUN_STOP || cur[KNOB_RUN] == KSM_RUN_UNMERGE);

                if (d->unmerge_refused && !m->unmerge_refusal_reported) {
                        log_info("Not unmerging %s of merged pages: memory could not take them back and stay above "
                                 "the threshold; keeping them merged",
                                 format_kb(a, sizeof(a), m->last_snapshot.merged));
                        m->unmerge_refusal_reported = true;
                } else if (!d->unmerge_refused)
                        m->unmerge_refusal_reported = false;

                if (d->unmerge && !(known[KNOB_RUN] && cur[KNOB_RUN] == KSM_RUN_UNMERGE)) {
                        /* The kernel unmerges within this write: it takes a moment for gigabytes. */
                        manager_write_knob(m, KNOB_RUN, false, 0, KSM_RUN_UNMERGE);
                        log_info("Stopped KSM and unmerged %s: free %s > threshold %s and guests commit %s, below "
                                 "%s less the threshold",
                                 format_kb(t, sizeof(t), m->last_snapshot.merged), format_kb(a, sizeof(a), d->free),
                                 format_kb(b, sizeof(b), d->thres), format_kb(c, sizeof(c), d->committed),
                                 format_kb(t, sizeof(t), d->total));
                        return;
                }
                if (stopped)
                        return;
                manager_write_knob(m, KNOB_RUN, known[KNOB_RUN], cur[KNOB_RUN], KSM_RUN_STOP);
                if (m->knob_error[KNOB_RUN] < 0)
                        return;
                log_info("Stopped KSM: free %s > threshold %s and guests commit %s, below %s less the threshold",
                         format_kb(a, sizeof(a), d->free), format_kb(b, sizeof(b), d->thres),
                         format_kb(c, sizeof(c), d->committed), format_kb(t, sizeof(t), d->total));
                return;
        }

        owns = advisor_owns_pages_to_scan(m);
        if (owns != m->advisor_owns)
                log_info(owns ? "The kernel's advisor (scan-time) now sets pages_to_scan; ksmtuned leaves it alone"
                              : "The kernel's advisor no longer sets pages_to_scan; ksmtuned sets it again");
        m->advisor_owns = owns;
        if (!owns)
                manager_write_knob(m, KNOB_PAGES_TO_SCAN, known[KNOB_PAGES_TO_SCAN], cur[KNOB_PAGES_TO_SCAN],
                                   (uint64_t) d->npages);
        manager_write_knob(m, KNOB_SLEEP_MILLISECS, known[KNOB_SLEEP_MILLISECS], cur[KNOB_SLEEP_MILLISECS],
                           d->sleep_ms);
        manager_write_knob(m, KNOB_RUN, known[KNOB_RUN], cur[KNOB_RUN], KSM_RUN_MERGE);

        if (known[KNOB_RUN] && cur[KNOB_RUN] == KSM_RUN_MERGE &&
            (owns || (known[KNOB_PAGES_TO_SCAN] && cur[KNOB_PAGES_TO_SCAN] == (uint64_t) d->npages)) &&
            known[KNOB_SLEEP_MILLISECS] && cur[KNOB_SLEEP_MILLISECS] == d->sleep_ms)
                return;
        /* A refused write has its own warning; claiming the change here would be false. */
        if (m->knob_error[KNOB_RUN] < 0 || m->knob_error[KNOB_SLEEP_MILLISECS] < 0 ||
            (!owns && m->knob_error[KNOB_PAGES_TO_SCAN] < 0))
                return;
        if (owns)
                log_info("%s KSM: pages_to_scan set by the kernel's advisor, sleep_millisecs %" PRIu64
                         " (free %s %s threshold %s, guests commit %s)",
                         known[KNOB_RUN] && cur[KNOB_RUN] == KSM_RUN_MERGE ? "Tuned" : "Started", d->sleep_ms,
                         format_kb(a, sizeof(a), d->free), d->boost ? "<" : ">=", format_kb(b, sizeof(b), d->thres),
                         format_kb(c, sizeof(c), d->committed));
        else
                log_info("%s KSM: pages_to_scan %" PRIi64 ", sleep_millisecs %" PRIu64
                         " (free %s %s threshold %s, guests commit %s%s%s)",
                         known[KNOB_RUN] && cur[KNOB_RUN] == KSM_RUN_MERGE ? "Tuned" : "Started", d->npages,
                         d->sleep_ms, format_kb(a, sizeof(a), d->free), d->boost ? "<" : ">=",
                         format_kb(b, sizeof(b), d->thres), format_kb(c, sizeof(c), d->committed),
                         d->cpu_capped ? "; ksmd over its CPU budget" : "",
                         m->settings.policy == POLICY_ADAPTIVE ? adaptive_suffix(m) : "");
}

/* ksmd's CPU use since the previous adjustment, in ‰ of one CPU; false at the first sample. */
static bool manager_sample_ksmd(Manager *m, unsigned *ret_permille) {
        uint64_t ticks, now = now_usec(CLOCK_MONOTONIC);
        bool have = false;
        int r;

        if (m->ksmd_pid == 0 && ksmd_find(m->opts.proc_dir, &m->ksmd_pid) < 0) {
                m->ksmd_pid = -1;
                log_debug("ksmd is not in %s: its CPU use is not measured", m->opts.proc_dir);
        }
        if (m->ksmd_pid <= 0)
                return false;
        r = ksmd_cpu_ticks(m->opts.proc_dir, m->ksmd_pid, &ticks);
        if (r < 0) {
                m->ksmd_pid = 0; /* look again next time */
                m->have_ksmd_sample = false;
                return false;
        }
        if (m->have_ksmd_sample && now > m->ksmd_usec && ticks >= m->ksmd_ticks) {
                double secs = (double) (ticks - m->ksmd_ticks) / (double) sysconf(_SC_CLK_TCK);
                double permille = secs * 1e9 / (double) (now - m->ksmd_usec);

                *ret_permille = permille > 1000000 ? 1000000 : (unsigned) (permille + 0.5);
                have = true;
        }
        m->ksmd_ticks = ticks;
        m->ksmd_usec = now;
        m->have_ksmd_sample = true;
        return have;
}

/* Atomically replace KSM_METRICS_FILE; a failure is logged once while it lasts. */
static void manager_write_metrics(Manager *m, const Decision *d, const GuestTotals *g, const KsmCounters *c,
                                  bool have_counters, const char *reason) {
        Metrics *mt = &m->metrics;
        _cleanup_free_ char *text = NULL, *profit = NULL;
        int r;

        mt->adjustments[metrics_reason(reason)]++;
        if (!m->settings.metrics_file)
                return;

        mt->decision = *d;
        mt->guests = g->count;
        mt->page_size = (uint64_t) sysconf(_SC_PAGESIZE);
        mt->timestamp = (double) now_usec(CLOCK_REALTIME) / 1e6;
        if (ksm_read_u64(m->ksm_fd, "run", &mt->run) < 0)
                mt->run = d->run;
        mt->has_counters = have_counters;
        mt->pages_shared = c->pages_shared;
        mt->pages_sharing = c->pages_sharing;
        mt->full_scans = c->full_scans;
        mt->has_general_profit = ksm_read_string(m->ksm_fd, "general_profit", &profit) >= 0 &&
                                 safe_atoi64(profit, &mt->general_profit) >= 0;
        mt->has_ksmd = m->have_ksmd_sample;
        mt->ksmd_cpu_seconds = (double) m->ksmd_ticks / (double) sysconf(_SC_CLK_TCK);
        mt->has_ksmd_ratio = m->last_snapshot.has_ksmd_cpu;
        mt->ksmd_cpu_ratio = m->last_snapshot.ksmd_cpu_permille / 1000.0;
        mt->libvirt_connected = m->libvirt ? libvirt_watch_state(m->libvirt) == LIBVIRT_CONNECTED : -1;

        r = metrics_format(mt, &text);
        if (r >= 0)
                r = metrics_write(m->settings.metrics_file, text);
        if (r < 0) {
                if (m->metrics_error != r)
                        log_warning_errno(r, "Failed to write the metrics to %s: %m; retrying at every adjustment",
                                          m->settings.metrics_file);
                m->metrics_error = r;
                return;
        }
        if (m->metrics_error != 0)
                log_info("Writing the metrics to %s works again", m->settings.metrics_file);
        m->metrics_error = 0;
}

static void adaptive_settings(const Settings *s, AdaptiveSettings *ret) {
        *ret = (AdaptiveSettings) {
                .max_rate = (uint64_t) s->adaptive_max_rate,
                .min_rate = (uint64_t) s->adaptive_min_rate,
                .max_cpu = (unsigned) s->adaptive_max_cpu * 10,
                .max_check = (uint64_t) s->monitor_interval * UINT64_C(1000000),
        };
}

/* One step of the adaptive controller; arms its next check. */
static void manager_adaptive_step(Manager *m, const KsmCounters *c, int cpu_permille, bool event) {
        AdaptiveSettings as;

        adaptive_settings(&m->settings, &as);
        adaptive_step(&as, &m->adaptive, c, cpu_permille, event, &m->adaptive_step);
        if (m->adaptive_timer && (sd_event_source_set_time_relative(m->adaptive_timer, m->adaptive_step.next_check) < 0 ||
                                  sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_ONESHOT) < 0))
                log_warning("Cannot schedule the adaptive policy's next check");
}

static void manager_adaptive_stop(Manager *m) {
        m->adaptive = (AdaptiveState) {};
        if (m->adaptive_timer)
                (void) sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_OFF);
}

/* Between adjustments: ask the controller again, at the time it chose, and apply what it says. */
static int on_adaptive_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        unsigned permille = 0;
        KsmCounters c;
        bool have_cpu;

        if (!m->have_decision || !m->last.run || m->settings.policy != POLICY_ADAPTIVE)
                return 0;
        have_cpu = manager_sample_ksmd(m, &permille);
        m->last_snapshot.has_ksmd_cpu = have_cpu;
        m->last_snapshot.ksmd_cpu_permille = permille;
        (void) manager_read_counters(m, &c);
        manager_adaptive_step(m, &c, have_cpu ? (int) permille : -1, false);

        /* The last decision stands (KSM on); only the rate changes. */
        m->last.npages = (int64_t) m->adaptive_step.pages_to_scan;
        m->last.sleep_ms = m->adaptive_step.sleep_ms;
        log_debug("adaptive check: %" PRIu64 " pages/s (%s) -> pages_to_scan %" PRIu64 " sleep_millisecs %" PRIu64
                  "; next check in %.1f s",
                  m->adaptive.rate, adaptive_why_string(m->adaptive_step.why), m->adaptive_step.pages_to_scan,
                  m->adaptive_step.sleep_ms, m->adaptive_step.next_check / 1e6);
        if (!m->opts.dry_run)
                manager_apply(m, &m->last);
        manager_publish_status(m);
        return 0;
}

/**
 * manager_adjust() - one adjustment: sample, decide, apply, report.
 *
 * A failure to sample memory skips this adjustment (logged once while it lasts); the next one retries.
 */
int manager_adjust(Manager *m, const char *reason) {
        Snapshot snap = {};
        GuestTotals g;
        MemInfo mi;
        const char *field = NULL;
        char meminfo_why[96];
        Decision d;
        KsmCounters counters;
        bool have_counters;
        long page_kb = sysconf(_SC_PAGESIZE) / 1024;
        char line[640], extra[160] = "", adaptive[160] = "";
        int64_t classic_npages;
        int r;

        r = meminfo_read_full(m->opts.proc_dir, &field, &mi);
        if (r < 0) {
                /* Once per outage: a file caught half-written may fail another way in the meantime. */
                if (m->meminfo_error == 0)
                        log_warning_errno(r, "Failed to read %s/meminfo: %s; skipping adjustments until it reads again",
                                          m->opts.proc_dir,
                                          meminfo_strerror(r, field, meminfo_why, sizeof(meminfo_why)));
                m->meminfo_error = r;
                return r;
        }
        if (m->meminfo_error != 0)
                log_info("%s/meminfo reads again", m->opts.proc_dir);
        m->meminfo_error = 0;
        meminfo_report_fields(m->opts.proc_dir, &mi, &m->meminfo_fields_reported);

        r = guests_scan(m->opts.proc_dir, &m->matcher, (int) m->settings.committed_source, &g);
        if (r < 0) {
                if (m->proc_error != r)
                        log_warning_errno(r, "Failed to scan %s for guests: %m; skipping adjustments until it works again",
                                          m->opts.proc_dir);
                m->proc_error = r;
                return r;
        }
        if (m->proc_error != 0)
                log_info("Scanning %s for guests works again", m->opts.proc_dir);
        m->proc_error = 0;
        if (g.fallbacks > 0 && !m->fallback_reported) {
                log_warning("Cannot read %s of %u guest(s), counting their RSS instead (another user's process "
                            "needs CAP_SYS_PTRACE for smaps_rollup, CAP_DAC_READ_SEARCH for ksm_merging_pages)",
                            m->settings.committed_source == COMMITTED_PSS ? "the PSS" : "the merged pages",
                            g.fallbacks);
                m->fallback_reported = true;
        }

        have_counters = manager_read_counters(m, &counters);
        snap = (Snapshot) {
                .mem_total = mi.mem_total,
                .mem_free = mi.mem_free,
                .buffers = mi.buffers,
                .cached = mi.cached,
                .committed = g.rss_kb,
                .guests = g.count,
                .mem_available = mi.mem_available,
                .has_mem_available = mi.has_mem_available,
                .merged = (counters.pages_sharing + counters.zero_pages) * (uint64_t) page_kb,
        };
        snap.has_ksmd_cpu = manager_sample_ksmd(m, &snap.ksmd_cpu_permille);
        policy_decide(&m->settings, &m->params, &snap, m->npages, &d);
        classic_npages = d.npages;
        if (m->settings.policy == POLICY_ADAPTIVE) {
                if (d.run) {
                        MetricsReason why = metrics_reason(reason);
                        /* New guests, or memory pressure rising since the last adjustment: new pages to merge. */
                        bool event = why == REASON_GUEST_EVENT || why == REASON_RECONNECT || why == REASON_RELOAD ||
                                     (m->have_decision && d.free + d.total / 20 < m->last.free);

                        manager_adaptive_step(m, &counters, snap.has_ksmd_cpu ? (int) snap.ksmd_cpu_permille : -1,
                                              event);
                        d.npages = (int64_t) m->adaptive_step.pages_to_scan;
                        d.sleep_ms = m->adaptive_step.sleep_ms;
                        snprintf(adaptive, sizeof(adaptive), "adaptive: %" PRIu64 " pages/s, %s; ", m->adaptive.rate,
                                 adaptive_why_string(m->adaptive_step.why));
                } else
                        manager_adaptive_stop(m);
        }
        m->adjustments++;
        m->last_snapshot = snap;

        if (snap.has_ksmd_cpu)
                snprintf(extra, sizeof(extra), " ksmd %.1f%%", snap.ksmd_cpu_permille / 10.0);
        if (d.run)
                snprintf(line, sizeof(line),
                         "adjustment #%u (%s): total %" PRIu64 " free %" PRIu64 " thres %" PRIu64 " committed %" PRIu64
                         " (%u guests)%s -> start pages_to_scan %" PRIi64 " sleep_millisecs %" PRIu64 " (%s%s)",
                         m->adjustments, reason, d.total, d.free, d.thres, d.committed, g.count, extra, d.npages,
                         d.sleep_ms, adaptive,
                         d.boost ? "boost" : d.cpu_capped ? "decay: ksmd over its CPU budget" : "decay");
        else
                snprintf(line, sizeof(line),
                         "adjustment #%u (%s): total %" PRIu64 " free %" PRIu64 " thres %" PRIu64 " committed %" PRIu64
                         " (%u guests)%s -> stop%s",
                         m->adjustments, reason, d.total, d.free, d.thres, d.committed, g.count, extra,
                         d.unmerge ? " and unmerge" : d.unmerge_refused ? " (unmerge refused: memory too short)" : "");

        if (!m->opts.dry_run)
                manager_apply(m, &d);
        else
                log_info("dry run, not written: %s", line);

        {
                char f[9][48];
                const char *fields[10];

                snprintf(f[0], sizeof(f[0]), "KSM_REASON=%s", reason);
                snprintf(f[1], sizeof(f[1]), "KSM_RUN=%d", d.run ? 1 : 0);
                snprintf(f[2], sizeof(f[2]), "KSM_PAGES_TO_SCAN=%" PRIi64, d.npages);
                snprintf(f[3], sizeof(f[3]), "KSM_SLEEP_MILLISECS=%" PRIu64, d.sleep_ms);
                snprintf(f[4], sizeof(f[4]), "KSM_FREE_KB=%" PRIu64, d.free);
                snprintf(f[5], sizeof(f[5]), "KSM_THRES_KB=%" PRIu64, d.thres);
                snprintf(f[6], sizeof(f[6]), "KSM_COMMITTED_KB=%" PRIu64, d.committed);
                snprintf(f[7], sizeof(f[7]), "KSM_GUESTS=%u", g.count);
                snprintf(f[8], sizeof(f[8]), "KSMD_CPU_PERMILLE=%d", snap.has_ksmd_cpu ? (int) snap.ksmd_cpu_permille : -1);
                for (int i = 0; i < 9; i++)
                        fields[i] = f[i];
                fields[9] = NULL;
                log_internal(LOG_DEBUG, 0, fields, "%s", line);
        }
        if (m->settings.debug)
                log_to_file("%s", line);

        m->npages = classic_npages; /* the original's npages carries on, whatever the policy */
        m->last = d;
        m->have_decision = true;
        if (!m->opts.dry_run)
                manager_write_metrics(m, &d, &g, &counters, have_counters, reason);
        manager_publish_status(m);
        /* Hand the pass's freed heap back: a daemon that idles between adjustments should not keep it. */
        malloc_trim(0);
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

static void manager_adjust_and_rearm(Manager *m, const char *reason) {
        int r;

        (void) manager_adjust(m, reason);
        /* Like the original, the interval runs from the last adjustment, whatever caused it. */
        r = manager_arm_timer(m);
        if (r < 0)
                log_error_errno(r, "Failed to arm the interval timer: %m");
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_adjust_and_rearm(userdata, "interval");
        return 0;
}

static int on_retune(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        const char *reason = m->retune_reason ? m->retune_reason : "request";

        m->retune_reason = NULL;
        manager_adjust_and_rearm(m, reason);
        return 0;
}

/* Ask for an adjustment soon; requests that arrive before it runs share it. */
static void manager_request_retune(Manager *m, const char *reason) {
        if (!m->retune_reason)
                m->retune_reason = reason;
        (void) sd_event_source_set_enabled(m->retune, SD_EVENT_ONESHOT);
}

static int on_settle(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        char reason[160];

        pending_reason(&m->pending, reason, sizeof(reason));
        pending_clear(&m->pending);
        manager_adjust_and_rearm(m, reason);
        return 0;
}

/* A guest may have started or stopped: adjust once things settle; later events join that adjustment. */
static void on_guest_event(void *userdata, const char *reason) {
        Manager *m = userdata;
        uint64_t now;

        if (!reason) {
                manager_publish_status(m);
                return;
        }
        log_debug("Guest event: %s", reason);
        if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0)
                return;
        if (!pending_add(&m->pending, now, (uint64_t) m->settings.event_settle_msec * 1000, reason))
                return;
        if (sd_event_source_set_time(m->settle, m->pending.due) < 0 ||
            sd_event_source_set_enabled(m->settle, SD_EVENT_ONESHOT) < 0) {
                pending_clear(&m->pending);
                manager_request_retune(m, "guest event");
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
                r = libvirt_watch_new(m->event, m->settings.libvirt_uri, NULL, on_guest_event, m, &m->libvirt);
                if (r < 0)
                        log_warning_errno(r, "Cannot watch libvirt at %s: %m", m->settings.libvirt_uri);
        }
}

static int manager_reload(Manager *m) {
        uint64_t started = now_usec(CLOCK_MONOTONIC); /* before the files are read: see reload.c */
        Settings s;
        int r;

        sd_notifyf(0, "RELOADING=1\nSTATUS=Reloading %s\nMONOTONIC_USEC=%" PRIu64, m->opts.config_path, started);
        log_info("Reloading configuration from %s", m->opts.config_path);
        settings_init(&s);
        r = config_load(m->opts.config_path, m->opts.dropin_dir, &s, config_report, m);
        if (r >= 0) {
                Settings old;

                if (settings_copy(&m->settings, &old) < 0)
                        r = log_error_errno(-ENOMEM, "Out of memory");
                else {
                        r = manager_apply_settings(m, &s);
                        if (r >= 0) {
                                manager_apply_events(m, &old);
                                for (int k = KNOB_ADVISOR_MODE; k < _KNOB_MAX; k++)
                                        m->knob_error[k] = 0;
                                m->fallback_reported = false;
                                m->ksmd_pid = 0;
                                manager_apply_knobs(m);
                        }
                        settings_done(&old);
                }
        }
        settings_done(&s);
        if (r < 0) {
                log_error("Configuration not reloaded: keeping the running configuration");
                m->reload_failed = true;
        } else
                m->reload_failed = false;

        manager_adjust_and_rearm(m, "reload");
        sd_notify(0, "READY=1");
        reload_record(m->opts.runtime_dir, m->opts.config_path, m->opts.dropin_dir, started, r);
        return r;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        switch (si->ssi_signo) {
        case SIGUSR1:
                manager_request_retune(m, "SIGUSR1");
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
        Settings s;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return log_error_errno(-ENOMEM, "Out of memory");
        m->opts = *opts;
        m->ksm_fd = -1;
        settings_init(&m->settings);
        log_set_max_level(opts->debug ? LOG_DEBUG : LOG_INFO);

        settings_init(&s);
        r = config_load(opts->config_path, opts->dropin_dir, &s, config_report, m);
        if (r < 0) {
                settings_done(&s);
                return log_error_errno(r, "Invalid configuration in %s, not starting", opts->config_path);
        }
        r = manager_apply_settings(m, &s);
        settings_done(&s);
        if (r < 0)
                return r;

        r = ksm_open_dir(opts->ksm_dir, &m->ksm_fd);
        if (r == -ENOENT)
                return log_error_errno(r, "%s does not exist: this kernel has no KSM (CONFIG_KSM), nothing to tune",
                                       opts->ksm_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to open %s: %m", opts->ksm_dir);
        if (!opts->dry_run && faccessat(m->ksm_fd, "run", W_OK, AT_EACCESS) < 0) {
                r = negative_errno();
                if (r == -EACCES || r == -EPERM || r == -EROFS)
                        return log_error_errno(r, "Cannot write %s/run: %m (ksmtuned must run as root; "
                                                  "use --dry-run to only watch)", opts->ksm_dir);
                return log_error_errno(r, "Cannot write %s/run: %m", opts->ksm_dir);
        }

        manager_apply_knobs(m);

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

        r = sd_event_add_time(m->event, &m->adaptive_timer, CLOCK_MONOTONIC, 0, 50 * 1000, on_adaptive_check, m);
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
        closep(&m->ksm_fd);
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
        manager_adjust_and_rearm(m, "start-up");
        sd_notify(0, "READY=1");

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
