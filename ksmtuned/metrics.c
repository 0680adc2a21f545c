/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Formatting the metrics in Prometheus' text format, and replacing the file atomically. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "metrics.h"
#include "util.h"

static const char *const trigger_labels[_TRIGGER_MAX] = {
        [TRIGGER_START_UP] = "start-up",
        [TRIGGER_INTERVAL] = "interval",
        [TRIGGER_SIGNAL] = "signal",
        [TRIGGER_RELOAD] = "reload",
        [TRIGGER_GUEST_EVENT] = "guest-event",
        [TRIGGER_RECONNECT] = "libvirt-reconnect",
        [TRIGGER_OTHER] = "other",
};

const char *trigger_label(Trigger t) {
        return t >= 0 && t < _TRIGGER_MAX ? trigger_labels[t] : "other";
}

typedef struct Buf {
        char *data;
        size_t len, alloc;
        bool oom;
} Buf;

_printf_(2, 3) static void put(Buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        if (b->oom)
                return;
        for (;;) {
                va_start(ap, fmt);
                n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->alloc - b->len : 0, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->oom = true;
                        return;
                }
                if (b->data && b->len + (size_t) n < b->alloc) {
                        b->len += (size_t) n;
                        return;
                }
                size_t na = b->alloc ? b->alloc * 2 : 4096;
                while (na < b->len + (size_t) n + 1)
                        na *= 2;
                char *nd = realloc(b->data, na);
                if (!nd) {
                        b->oom = true;
                        return;
                }
                b->data = nd;
                b->alloc = na;
        }
}

static void family(Buf *b, const char *name, const char *type, const char *help) {
        put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge_u(Buf *b, const char *name, const char *help, uint64_t v) {
        family(b, name, "gauge", help);
        put(b, "%s %" PRIu64 "\n", name, v);
}

/**
 * metrics_format() - the text of the metrics file.
 *
 * Names follow Prometheus' conventions: a ksmtuned_ prefix, base units (bytes, seconds) in the name,
 * _total on counters. Families whose source this kernel or host lacks are left out, not zero.
 */
int metrics_format(const Metrics *m, char **ret) {
        const Decision *d = &m->decision;
        Buf b = {};

        gauge_u(&b, "ksmtuned_memory_total_bytes", "MemTotal as ksmtuned last read it.", d->total * 1024);
        gauge_u(&b, "ksmtuned_memory_free_bytes",
                d->free_is_available ? "Free memory as the policy counts it: MemAvailable."
                                     : "Free memory as the policy counts it: MemFree + Buffers + Cached.",
                d->free * 1024);
        gauge_u(&b, "ksmtuned_memory_threshold_bytes",
                "Free memory below which KSM scans harder (KSM_THRES_COEF, KSM_THRES_CONST).", d->thres * 1024);
        gauge_u(&b, "ksmtuned_guest_committed_bytes", "Memory of the guest processes, as KSM_COMMITTED counts it.",
                d->committed * 1024);
        gauge_u(&b, "ksmtuned_guests", "Guest processes counted at the last adjustment.", m->guests);

        gauge_u(&b, "ksmtuned_decision_run", "The last decision: 1 to run KSM, 0 to stop it.", d->run ? 1 : 0);
        gauge_u(&b, "ksmtuned_ksm_run", "KSM's run knob after the last adjustment: 0 stopped, 1 merging, 2 unmerged.",
                m->run);
        gauge_u(&b, "ksmtuned_ksm_pages_to_scan", "Pages ksmd scans per wake-up, as decided (npages).",
                (uint64_t) (d->npages > 0 ? d->npages : 0));
        family(&b, "ksmtuned_ksm_sleep_seconds", "gauge", "How long ksmd sleeps between scans, as decided.");
        put(&b, "ksmtuned_ksm_sleep_seconds %.3f\n", (double) d->sleep_ms / 1000.0);

        if (m->has_counters) {
                gauge_u(&b, "ksmtuned_ksm_pages_shared", "KSM pages in use (pages_shared).", m->pages_shared);
                gauge_u(&b, "ksmtuned_ksm_pages_sharing", "Pages sharing a KSM page, i.e. saved (pages_sharing).",
                        m->pages_sharing);
                gauge_u(&b, "ksmtuned_ksm_saved_bytes", "Memory saved by KSM: pages_sharing times the page size.",
                        m->pages_sharing * m->page_size);
                family(&b, "ksmtuned_ksm_full_scans_total", "counter", "Full scans ksmd completed (full_scans).");
                put(&b, "ksmtuned_ksm_full_scans_total %" PRIu64 "\n", m->full_scans);
        }
        if (m->has_general_profit) {
                family(&b, "ksmtuned_ksm_general_profit_bytes", "gauge",
                       "KSM's profit after its own metadata (general_profit); may be negative.");
                put(&b, "ksmtuned_ksm_general_profit_bytes %" PRIi64 "\n", m->general_profit);
        }
        if (m->has_ksmd) {
                family(&b, "ksmtuned_ksmd_cpu_seconds_total", "counter", "CPU time ksmd has used since boot.");
                put(&b, "ksmtuned_ksmd_cpu_seconds_total %.2f\n", m->ksmd_cpu_seconds);
        }
        if (m->has_ksmd_ratio) {
                family(&b, "ksmtuned_ksmd_cpu_ratio", "gauge",
                       "Share of one CPU ksmd used between the last two adjustments.");
                put(&b, "ksmtuned_ksmd_cpu_ratio %.4f\n", m->ksmd_cpu_ratio);
        }

        family(&b, "ksmtuned_adjustments_total", "counter", "Adjustments made, by what caused them.");
        for (Trigger t = 0; t < _TRIGGER_MAX; t++)
                put(&b, "ksmtuned_adjustments_total{reason=\"%s\"} %" PRIu64 "\n", trigger_labels[t],
                    m->adjustments[t]);
        if (m->libvirt_connected >= 0)
                gauge_u(&b, "ksmtuned_libvirt_connected", "1 while connected to libvirt's events, else 0.",
                        (uint64_t) m->libvirt_connected);
        gauge_u(&b, "ksmtuned_config_last_reload_successful",
                "0 when the last configuration reload failed and the configuration before it is in force, else 1.",
                m->reload_failed ? 0 : 1);
        gauge_u(&b, "ksmtuned_monitor_interval_seconds", "KSM_MONITOR_INTERVAL: the most time between adjustments.",
                m->monitor_interval);
        family(&b, "ksmtuned_last_adjustment_timestamp_seconds", "gauge", "When the last adjustment ran.");
        put(&b, "ksmtuned_last_adjustment_timestamp_seconds %.3f\n", m->timestamp);

        if (b.oom) {
                free(b.data);
                return -ENOMEM;
        }
        *ret = b.data;
        return 0;
}

/**
 * metrics_write() - replace @path with @text atomically: readers see the old file or the new, whole.
 *
 * The text goes to a temporary file in the same directory (named so that the textfile collector,
 * which reads *.prom, ignores it), which is then renamed over @path.
 */
int metrics_write(const char *path, const char *text) {
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        size_t len = strlen(text), done = 0;
        int r;

        if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        while (done < len) {
                ssize_t n = write(fd, text + done, len - done);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                done += (size_t) n;
        }
        /* Readable by node_exporter's user; mkostemp made it 0600. */
        if (fchmod(fd, 0644) < 0 || close(TAKE_FD(fd)) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        return 0;
fail:
        (void) unlink(tmp);
        return r;
}
