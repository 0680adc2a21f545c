/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One adjustment: the pipeline's steps in order (snapshot, policy, apply, report) and its own reports. */
#include <inttypes.h>
#include <malloc.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "guest-metrics.h"
#include "log.h"
#include "manager.h"
#include "meminfo.h"
#include "report.h"

/* STATUS= for the last decision, after an adjustment or when an event source's state changed. */
void manager_publish_status(Manager *m) {
        StatusExtra x = {
                .advisor_owns = m->apply.advisor_owns,
                .libvirt = m->libvirt ? libvirt_state_to_string(libvirt_watch_state(m->libvirt)) : NULL,
                .reload_failed = m->reload_failed,
        };
        char status[512];

        if (!m->have_decision)
                return;
        report_status(status, sizeof(status), &m->last, &m->last_snapshot, &x);
        sd_notifyf(0, "STATUS=%s", status);
}

/* Set the configuration's knobs, at start and reload; nothing is written in a dry run. */
void manager_apply_config(Manager *m) {
        Snapshot snap = {};
        MemInfo mi;

        if (m->opts.dry_run)
                return;
        if (meminfo_read(m->opts.proc_dir, &mi) >= 0) {
                snap.mem_available = mi.mem_available;
                snap.has_mem_available = mi.has_mem_available;
        }
        snapshot_read_ksm(m->apply.ksm_fd, &snap);
        apply_config(&m->apply, &m->settings, &snap);
}

/* Whether an adjustment writes the metrics, and so lists each guest in its snapshot. */
static bool manager_wants_metrics(const Manager *m) {
        return m->settings.metrics_file && !m->opts.dry_run;
}

/*
 * Atomically replace KSM_METRICS_FILE, with the per-guest series of @guests (sorted here); a failure is
 * logged once while it lasts.
 */
static void manager_write_metrics(Manager *m, const ApplyResult *res, GuestList *guests) {
        _cleanup_free_ char *text = NULL;
        MetricsExtra x = {
                .run = res->run,
                .has_ksmd = m->ksmd.have_sample,
                .ksmd_cpu_seconds = (double) m->ksmd.ns / 1e9,
                .libvirt_connected = m->libvirt ? libvirt_watch_state(m->libvirt) == LIBVIRT_CONNECTED : -1,
                .timestamp = (double) now_usec(CLOCK_REALTIME) / 1e6,
                .reload_failed = m->reload_failed,
                .monitor_interval = (uint64_t) m->settings.monitor_interval,
        };
        int r;

        report_metrics(&m->metrics, &m->last, &m->last_snapshot, &x);
        guest_list_sort(guests, m->metrics.page_size);
        r = metrics_format(&m->metrics, &text);
        if (r >= 0)
                r = guest_metrics_append(guests, m->metrics.page_size, &text);
        if (r >= 0)
                r = metrics_write(m->settings.metrics_file, text);
        if (r < 0) {
                if (latch_fail(&m->metrics_error, r))
                        log_warning_errno(r, "Failed to write the metrics to %s: %m; retrying at every adjustment",
                                          m->settings.metrics_file);
                return;
        }
        if (latch_ok(&m->metrics_error))
                log_info("Writing the metrics to %s works again", m->settings.metrics_file);
}

/* Arm the adaptive policy's next check when its controller ran, stop the checks when KSM went off. */
static void manager_arm_adaptive(Manager *m, const Decision *d) {
        if (!m->adaptive_timer || m->settings.policy != POLICY_ADAPTIVE)
                return;
        if (!d->run) {
                (void) sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_OFF);
                return;
        }
        if (sd_event_source_set_time_relative(m->adaptive_timer, m->policy.step.next_check) < 0 ||
            sd_event_source_set_enabled(m->adaptive_timer, SD_EVENT_ONESHOT) < 0)
                log_warning("Cannot schedule the adaptive policy's next check");
}

/* Where a snapshot is read from, for this daemon. */
static SnapshotSource manager_snapshot_source(const Manager *m) {
        return (SnapshotSource) {
                .proc_dir = m->opts.proc_dir,
                .ksm_fd = m->apply.ksm_fd,
                .matcher = &m->matcher,
                .committed_source = (int) m->settings.committed_source,
        };
}

/* Between adjustments: ask the controller again, at the time it chose, and apply what it says. */
int manager_on_adaptive_check(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        Snapshot *snap = &m->last_snapshot;
        SnapshotSource src = manager_snapshot_source(m);
        ApplyResult res;
        Snapshot check;

        if (!m->have_decision || !m->last.run || m->settings.policy != POLICY_ADAPTIVE)
                return 0;
        if (!m->opts.dry_run)
                (void) apply_check_dir(&m->apply);
        snap->has_ksmd_cpu = snapshot_sample_ksmd(m->opts.proc_dir, &m->ksmd, &snap->ksmd_cpu_permille);
        snapshot_read_ksm(m->apply.ksm_fd, snap);
        snap->taken = now_usec(CLOCK_MONOTONIC);
        /* Watching the guests' memory (after an event): their RSS and free memory, read into a copy, so that
         * the last adjustment's figures stay those STATUS= and the metrics give. A failed read is the next
         * adjustment's to report. */
        check = *snap;
        check.has_guests_resident = false;
        if (m->policy.step.watch_guests)
                (void) snapshot_read_growth(&src, &check);
        policy_adaptive_check(&m->settings, &check, &m->policy, &m->last);
        manager_arm_adaptive(m, &m->last);
        log_debug("adaptive check: %" PRIu64 " pages/s (%s) -> pages_to_scan %" PRIi64 " sleep_millisecs %" PRIu64
                  "; next check in %.1f s; since the last: %" PRIu64 " pages scanned (%" PRIu64 " skipped), %" PRIu64
                  " merged, %" PRIu64 " new or unshared; %" PRIu64 " tracked, %" PRIu64 " volatile",
                  m->last.adaptive_rate, adaptive_why_string(m->last.adaptive_why), m->last.npages, m->last.sleep_ms,
                  m->policy.step.next_check / 1e6, m->policy.step.scanned, m->policy.step.skipped,
                  m->policy.step.gained, m->policy.step.seen, m->policy.step.tracked, m->policy.step.volatile_pages);
        if (!m->opts.dry_run)
                apply_decision(&m->apply, &m->settings, &m->last, snap, &res);
        manager_publish_status(m);
        return 0;
}

/* How a failed read of the snapshot is reported, and its end: "Failed to VERB PROCWHAT", "RECOVERING PROCWHAT UNTIL".
 */
static const struct {
        const char *verb, *what, *recovering, *until;
} read_words[_SNAPSHOT_PART_MAX] = {
        [SNAPSHOT_MEMINFO] = { "read", "/meminfo", "", "reads again" },
        [SNAPSHOT_GUESTS] = { "scan", " for guests", "Scanning ", "works again" },
};

/*
 * Warn once about each field of meminfo that counted as 0 (a container's /proc, or a kernel, that leaves
 * lines out: the original's awk counted them as 0 too), again if it comes back and goes again. A missing
 * MemAvailable is not news (kernels before 3.14); the policy falls back without it.
 */
static void manager_report_meminfo_fields(Manager *m, const Snapshot *snap) {
        for (unsigned f = 0; f < _MEMINFO_FIELD_MAX; f++) {
                const char *name = meminfo_field_name(f);
                unsigned bit = 1u << f;

                if (snap->meminfo_malformed & bit) {
                        if (latch_fail(&m->meminfo_field[f], -EBADMSG))
                                log_warning("%s/meminfo: %s is not a number of kB; counting %s as 0", m->opts.proc_dir,
                                            name, name);
                } else if (snap->meminfo_missing & bit & ~(1u << MEMINFO_MEM_AVAILABLE)) {
                        if (latch_fail(&m->meminfo_field[f], -ENODATA))
                                log_warning("%s/meminfo has no %s line; counting %s as 0", m->opts.proc_dir, name,
                                            name);
                } else if (latch_ok(&m->meminfo_field[f]))
                        log_debug("%s/meminfo has %s again", m->opts.proc_dir, name);
        }
}

/*
 * Read the snapshot; a failure is logged once while it lasts (meminfo's once per outage, however many ways
 * a file caught half-written fails in the meantime), its end too.
 */
static int manager_read_snapshot(Manager *m, Snapshot *ret, GuestList *ret_guests) {
        SnapshotSource src = manager_snapshot_source(m);
        pid_t ksmd_was = m->ksmd.pid;
        SnapshotPart failed = _SNAPSHOT_PART_MAX;
        char why[96];
        int r;

        r = snapshot_read(&src, &m->ksmd, ret, ret_guests, &failed);
        for (SnapshotPart p = 0; p < _SNAPSHOT_PART_MAX; p++) {
                if (r < 0 && failed == p) {
                        bool first = m->read_error[p].error == 0;

                        if (latch_fail(&m->read_error[p], r) && (first || p != SNAPSHOT_MEMINFO))
                                log_warning_errno(r, "Failed to %s %s%s: %s; skipping adjustments until it %s",
                                                  read_words[p].verb, m->opts.proc_dir, read_words[p].what,
                                                  p == SNAPSHOT_MEMINFO ? meminfo_strerror(r, NULL, why, sizeof(why))
                                                                        : strerror(-r),
                                                  read_words[p].until);
                        return r;
                }
                if (latch_ok(&m->read_error[p]))
                        log_info("%s%s%s %s", read_words[p].recovering, m->opts.proc_dir, read_words[p].what,
                                 read_words[p].until);
        }
        manager_report_meminfo_fields(m, ret);
        if (ret->guest_fallbacks > 0 && !m->fallback_reported) {
                log_warning("Cannot read %s of %u guest(s), counting their RSS instead (smaps_rollup of another "
                            "user's process, or of one holding capabilities ksmtuned lacks, needs CAP_SYS_PTRACE; "
                            "another user's ksm_merging_pages, CAP_DAC_READ_SEARCH)",
                            m->settings.committed_source == COMMITTED_PSS ? "the PSS" : "the merged pages",
                            ret->guest_fallbacks);
                m->fallback_reported = true;
        }
        if (ksmd_was == 0 && m->ksmd.pid == -1)
                log_debug("ksmd is not in %s: its CPU use is not measured", m->opts.proc_dir);
        /* Once: a ksmd whose stat does not parse is not looked for again until a reload (a pass over /proc). */
        if (m->ksmd.error < 0 && !m->ksmd_error_reported) {
                log_warning_errno(
                        m->ksmd.error,
                        "Cannot read utime and stime of ksmd from %s/%d/stat: %m; its CPU use is not measured",
                        m->opts.proc_dir, (int) m->ksmd.error_pid);
                m->ksmd_error_reported = true;
        }
        return 0;
}

/**
 * manager_adjust() - one adjustment: read a snapshot, decide, apply, report.
 * @trigger: what caused it: a policy input and the metrics' label.
 * @reason: the same, in words, for the log and the journal's KSM_REASON.
 *
 * A failure to read the snapshot skips this adjustment (logged once while it lasts); the next one retries.
 */
int manager_adjust(Manager *m, Trigger trigger, const char *reason) {
        _cleanup_(guest_list_done) GuestList guests = {};
        ApplyResult res = {};
        JournalFields jf;
        Snapshot snap;
        Decision d;
        char line[640];
        int r;

        if (!m->opts.dry_run)
                (void) apply_check_dir(&m->apply);
        r = manager_read_snapshot(m, &snap, manager_wants_metrics(m) ? &guests : NULL);
        if (r < 0)
                return r;
        policy_step(&m->settings, &m->params, &snap, trigger, &m->policy, &d);
        manager_arm_adaptive(m, &d);
        m->adjustments++;
        m->last_snapshot = snap;
        m->last = d;
        m->have_decision = true;

        report_line(line, sizeof(line), m->adjustments, reason, &d, &snap);
        if (!m->opts.dry_run)
                apply_decision(&m->apply, &m->settings, &d, &snap, &res);
        else
                log_info("dry run, not written: %s", line);
        report_fields(&jf, reason, &d, &snap);
        log_internal(LOG_DEBUG, 0, jf.fields, "%s", line);
        if (m->settings.debug)
                log_to_file("%s", line);

        m->metrics.adjustments[trigger >= 0 && trigger < _TRIGGER_MAX ? trigger : TRIGGER_OTHER]++;
        if (manager_wants_metrics(m))
                manager_write_metrics(m, &res, &guests);
        manager_publish_status(m);
        /* Hand the pass's freed heap back: a daemon that idles between adjustments should not keep it. */
        malloc_trim(0);
        return 0;
}
