/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one path by which ksmtuned writes KSM's knobs: those a decision sets at every adjustment, and those
 * the configuration sets at start and reload (the advisor, smart_scan, and the rest). KSM started or
 * stopped, and the configuration's knobs, are logged at info; each step of pages_to_scan or
 * sleep_millisecs at debug. A failed write is logged when it first happens and when it ends; a knob that
 * holds a value ksmtuned did not write, once per such value.
 */
#include <inttypes.h>
#include <stddef.h>
#include <sys/stat.h>

#include "apply.h"
#include "ksm-sysfs.h"
#include "log.h"
#include "report.h"

/* Write through @ksm_fd, @ksm_dir opened (apply_check_dir() may replace it; the caller closes it). */
void apply_init(Applier *a, int ksm_fd, const char *ksm_dir) {
        *a = (Applier) { .ksm_fd = ksm_fd, .ksm_dir = ksm_dir };
}

/**
 * apply_check_dir() - the directory was opened at start. When another one now stands at its path (sysfs
 * remounted, or in tests a directory replaced), reopen it; a path that is simply gone leaves the old fd,
 * whose writes then fail and are reported, knob by knob, once. Returns whether it was reopened.
 */
bool apply_check_dir(Applier *a) {
        struct stat now, held;
        int fd;

        if (stat(a->ksm_dir, &now) < 0 || fstat(a->ksm_fd, &held) < 0)
                return false;
        if (now.st_dev == held.st_dev && now.st_ino == held.st_ino)
                return false;
        if (ksm_open_dir(a->ksm_dir, &fd) < 0)
                return false;
        log_info("%s was replaced by another directory: writing the new one", a->ksm_dir);
        closep(&a->ksm_fd);
        a->ksm_fd = fd;
        for (int k = 0; k < _KNOB_ADJUSTED; k++)
                a->have_written[k] = false;
        return true;
}

/*
 * An adjusted knob holds @cur, not what ksmtuned wrote last, and is about to be overwritten with @value:
 * someone else changed it (an admin's echo, libvirt's node-memory-tune). Warned once per outside value.
 */
static void check_outside(Applier *a, const Settings *s, Knob knob, bool known, uint64_t cur, uint64_t value) {
        if (knob >= _KNOB_ADJUSTED || !known || !a->have_written[knob] || cur == a->written[knob] || cur == value)
                return;
        if (a->outside_reported[knob] && a->outside[knob] == cur)
                return;
        a->outside_reported[knob] = true;
        a->outside[knob] = cur;
        log_warning("%s/%s holds %" PRIu64 ", which ksmtuned did not write (it wrote %" PRIu64 "): writing %" PRIu64
                    " as its configuration says; to make a change last, set %s in ksmtuned.conf",
                    a->ksm_dir, knob_names[knob], cur, a->written[knob], value,
                    report_knob_keys(knob, s->policy == POLICY_ADAPTIVE));
}

/* Remember that @knob holds @value by ksmtuned's doing (or by its consent), or that this is unknown. */
static void remember(Applier *a, Knob knob, bool have, uint64_t value) {
        if (knob >= _KNOB_ADJUSTED)
                return;
        a->have_written[knob] = have;
        a->written[knob] = value;
}

/*
 * Write one knob unless it is known to hold @value already. Returns 1 when written, 0 when left alone, a
 * negative errno when the write failed: logged when it first happens (or its errno changes), its end too.
 */
static int write_knob(Applier *a, const Settings *s, Knob knob, bool known, uint64_t cur, uint64_t value) {
        const char *name = knob_names[knob];
        int r;

        if (known && cur == value) {
                remember(a, knob, true, value);
                if (latch_ok(&a->knob[knob]))
                        log_info("Writing %s/%s works again", a->ksm_dir, name);
                return 0;
        }
        check_outside(a, s, knob, known, cur, value);
        r = ksm_write_u64(a->ksm_fd, name, value);
        if (r < 0) {
                remember(a, knob, false, 0);
                if (latch_fail(&a->knob[knob], r))
                        log_warning_errno(r, "Failed to write %" PRIu64 " to %s/%s: %m; retrying at every adjustment",
                                          value, a->ksm_dir, name);
                return r;
        }
        remember(a, knob, true, value);
        if (latch_ok(&a->knob[knob]))
                log_info("Writing %s/%s works again", a->ksm_dir, name);
        return 1;
}

/* The decision says stop: write run=0, or run=2 to unmerge too. */
static void apply_stop(Applier *a, const Settings *s, const Decision *d, const Snapshot *snap, ApplyResult *ret) {
        bool known = snap->knob_known[KNOB_RUN];
        uint64_t cur = snap->knob[KNOB_RUN];
        char line[512];
        int r;

        if (d->unmerge_refused && !a->unmerge_refusal_reported) {
                report_unmerge_refused(line, sizeof(line), d, snap);
                log_info("%s", line);
                a->unmerge_refusal_reported = true;
        } else if (!d->unmerge_refused)
                a->unmerge_refusal_reported = false;

        if (d->unmerge && !(known && cur == KSM_RUN_UNMERGE)) {
                /* The kernel unmerges within this write: it takes a moment for gigabytes. */
                check_outside(a, s, KNOB_RUN, known, cur, KSM_RUN_UNMERGE);
                r = write_knob(a, s, KNOB_RUN, false, 0, KSM_RUN_UNMERGE);
                ret->changed = r > 0;
                ret->failed = r < 0;
                ret->run = r > 0 ? KSM_RUN_UNMERGE : cur;
                if (r < 0)
                        return;
                report_change(line, sizeof(line), d, snap, true);
                log_info("%s", line);
                a->told_state = true;
                return;
        }
        if (known && (cur == KSM_RUN_STOP || cur == KSM_RUN_UNMERGE)) {
                remember(a, KNOB_RUN, true, cur); /* stopped already, as the decision wants */
                return;
        }
        r = write_knob(a, s, KNOB_RUN, known, cur, KSM_RUN_STOP);
        ret->failed = r < 0;
        if (r < 0)
                return;
        ret->changed = r > 0;
        ret->run = KSM_RUN_STOP;
        report_change(line, sizeof(line), d, snap, true);
        log_info("%s", line);
        a->told_state = true;
}

/**
 * apply_decision() - write what @d asks for, in the original's order (pages_to_scan, sleep_millisecs,
 * run), where @snap says the knob holds something else. KSM started or stopped is logged at info (and
 * the first change after start), a step of pages_to_scan or sleep_millisecs at debug.
 * @s: the policy, for the keys named when a knob held someone else's value.
 * @snap: the knobs as read before the decision, and whether the kernel's advisor sets pages_to_scan
 *        (then it is left alone).
 * @ret: what run holds afterwards, whether anything changed or failed.
 */
void apply_decision(Applier *a, const Settings *s, const Decision *d, const Snapshot *snap, ApplyResult *ret) {
        const bool *known = snap->knob_known;
        const uint64_t *cur = snap->knob;
        bool owns = snap->advisor_owns, was_on = known[KNOB_RUN] && cur[KNOB_RUN] == KSM_RUN_MERGE;
        char line[512];
        int r[_KNOB_ADJUSTED] = {};

        *ret = (ApplyResult) { .run = known[KNOB_RUN] ? cur[KNOB_RUN] : (d->run ? KSM_RUN_MERGE : KSM_RUN_STOP) };
        if (!d->run) {
                apply_stop(a, s, d, snap, ret);
                return;
        }
        if (owns != a->advisor_owns)
                log_info(owns ? "The kernel's advisor (scan-time) now sets pages_to_scan; ksmtuned leaves it alone"
                              : "The kernel's advisor no longer sets pages_to_scan; ksmtuned sets it again");
        a->advisor_owns = owns;
        if (!owns)
                r[KNOB_PAGES_TO_SCAN] = write_knob(a, s, KNOB_PAGES_TO_SCAN, known[KNOB_PAGES_TO_SCAN],
                                                   cur[KNOB_PAGES_TO_SCAN], (uint64_t) d->npages);
        else
                remember(a, KNOB_PAGES_TO_SCAN, false, 0); /* the advisor's to change */
        r[KNOB_SLEEP_MILLISECS] = write_knob(a, s, KNOB_SLEEP_MILLISECS, known[KNOB_SLEEP_MILLISECS],
                                             cur[KNOB_SLEEP_MILLISECS], d->sleep_ms);
        r[KNOB_RUN] = write_knob(a, s, KNOB_RUN, known[KNOB_RUN], cur[KNOB_RUN], KSM_RUN_MERGE);
        if (r[KNOB_RUN] > 0)
                ret->run = KSM_RUN_MERGE;

        if (was_on && (owns || (known[KNOB_PAGES_TO_SCAN] && cur[KNOB_PAGES_TO_SCAN] == (uint64_t) d->npages)) &&
            known[KNOB_SLEEP_MILLISECS] && cur[KNOB_SLEEP_MILLISECS] == d->sleep_ms)
                return;
        ret->changed = true;
        /* A refused write has its own warning; claiming the change here would be false. */
        ret->failed = r[KNOB_RUN] < 0 || r[KNOB_SLEEP_MILLISECS] < 0 || r[KNOB_PAGES_TO_SCAN] < 0;
        if (ret->failed)
                return;
        report_change(line, sizeof(line), d, snap, was_on);
        log_full_errno(was_on && a->told_state ? LOG_DEBUG : LOG_INFO, 0, "%s", line);
        a->told_state = true;
}

static const struct {
        Knob knob;
        const char *key;
        size_t offset;
} config_knobs[] = {
        { KNOB_ADVISOR_MAX_CPU, "KSM_ADVISOR_MAX_CPU", offsetof(Settings, advisor_max_cpu) },
        { KNOB_ADVISOR_MIN_PAGES, "KSM_ADVISOR_MIN_PAGES_TO_SCAN", offsetof(Settings, advisor_min_pages) },
        { KNOB_ADVISOR_MAX_PAGES, "KSM_ADVISOR_MAX_PAGES_TO_SCAN", offsetof(Settings, advisor_max_pages) },
        { KNOB_ADVISOR_TARGET_SCAN_TIME, "KSM_ADVISOR_TARGET_SCAN_TIME", offsetof(Settings, advisor_target_scan_time) },
        { KNOB_SMART_SCAN, "KSM_SMART_SCAN", offsetof(Settings, smart_scan) },
        { KNOB_USE_ZERO_PAGES, "KSM_USE_ZERO_PAGES", offsetof(Settings, use_zero_pages) },
        /* These two the kernel changes only while nothing is merged. */
        { KNOB_MAX_PAGE_SHARING, "KSM_MAX_PAGE_SHARING", offsetof(Settings, max_page_sharing) },
        { KNOB_MERGE_ACROSS_NODES, "KSM_MERGE_ACROSS_NODES", offsetof(Settings, merge_across_nodes) },
};

/* A configured knob this kernel lacks: said once, as a warning, until a reload. */
static bool knob_present(Applier *a, Knob knob, const char *key) {
        if (ksm_has(a->ksm_fd, knob_names[knob]))
                return true;
        if (latch_fail(&a->knob[knob], -ENOENT))
                log_warning("%s is set, but this kernel has no %s/%s: ignoring it", key, a->ksm_dir, knob_names[knob]);
        return false;
}

/*
 * max_page_sharing and merge_across_nodes change only while no page is merged (EBUSY otherwise). Unmerge
 * first, when memory can take the merged pages back; the adjustment that follows starts KSM again.
 */
static bool unmerge_for(Applier *a, const Snapshot *snap, bool *unmerged, const char *key, int64_t value,
                        uint64_t cur) {
        if (*unmerged || snap->counters.pages_shared == 0)
                return true;
        if (!snap->has_mem_available) {
                /* No MemAvailable (meminfo unreadable, or a kernel before 3.14): no figure to print. */
                log_error("Cannot set %s=%" PRIi64 ": the kernel allows it only with nothing merged, and whether "
                          "unmerging %" PRIu64 " MiB fits needs MemAvailable, which meminfo does not give; keeping "
                          "%" PRIu64,
                          key, value, snap->merged / 1024, cur);
                return false;
        }
        if (snap->mem_available < snap->merged) {
                log_error("Cannot set %s=%" PRIi64 ": the kernel allows it only with nothing merged, and unmerging "
                          "%" PRIu64 " MiB would need more than MemAvailable (%" PRIu64 " MiB); keeping %" PRIu64,
                          key, value, snap->merged / 1024, snap->mem_available / 1024, cur);
                return false;
        }
        log_info("Unmerging %" PRIu64 " MiB so that %s=%" PRIi64 " can take effect", snap->merged / 1024, key, value);
        if (ksm_write_u64(a->ksm_fd, "run", KSM_RUN_UNMERGE) < 0) {
                log_error_errno(negative_errno(), "Failed to unmerge for %s: %m; keeping %" PRIu64, key, cur);
                return false;
        }
        *unmerged = true;
        return true;
}

static void set_advisor_mode(Applier *a, int64_t mode) {
        _cleanup_free_ char *text = NULL, *cur = NULL;
        const char *want = advisor_mode_names[mode];
        int r;

        if (!knob_present(a, KNOB_ADVISOR_MODE, "KSM_ADVISOR"))
                return;
        if (ksm_read_string(a->ksm_fd, "advisor_mode", &text) >= 0 && ksm_parse_choice(text, &cur) >= 0 &&
            streq(cur, want))
                return;
        r = ksm_write_string(a->ksm_fd, "advisor_mode", want);
        if (r < 0) {
                log_error_errno(r, "Failed to set %s/advisor_mode to %s: %m", a->ksm_dir, want);
                return;
        }
        log_info("Set the kernel's advisor to %s (was %s)%s", want, cur ? cur : "?",
                 streq(want, "scan-time") ? ": it now sets pages_to_scan, ksmtuned only starts and stops KSM" : "");
}

/**
 * apply_config() - set the knobs the configuration names, where they differ and the kernel has them.
 * Keys left empty leave the kernel's values alone.
 * @snap: KSM's counters and MemAvailable, for the knobs that need everything unmerged first.
 */
void apply_config(Applier *a, const Settings *s, const Snapshot *snap) {
        bool unmerged = false;

        if (s->advisor_mode >= 0)
                set_advisor_mode(a, s->advisor_mode);

        for (size_t i = 0; i < ELEMENTSOF(config_knobs); i++) {
                Knob knob = config_knobs[i].knob;
                int64_t value = *(const int64_t *) ((const char *) s + config_knobs[i].offset);
                uint64_t cur;
                int r;

                if (value < 0 || !knob_present(a, knob, config_knobs[i].key))
                        continue;
                if (ksm_read_u64(a->ksm_fd, knob_names[knob], &cur) >= 0 && cur == (uint64_t) value) {
                        (void) latch_ok(&a->knob[knob]);
                        continue;
                }
                if ((knob == KNOB_MAX_PAGE_SHARING || knob == KNOB_MERGE_ACROSS_NODES) &&
                    !unmerge_for(a, snap, &unmerged, config_knobs[i].key, value, cur))
                        continue;
                r = ksm_write_u64(a->ksm_fd, knob_names[knob], (uint64_t) value);
                if (r < 0) {
                        log_error_errno(r, "Failed to set %s/%s to %" PRIi64 " (%s): %m", a->ksm_dir, knob_names[knob],
                                        value, config_knobs[i].key);
                        a->knob[knob].error = r;
                        continue;
                }
                (void) latch_ok(&a->knob[knob]);
                log_info("Set %s to %" PRIi64 " (was %" PRIu64 ")", knob_names[knob], value, cur);
        }
}

/* After a reload: what the configuration's knobs reported is forgotten, so it is said again if it holds. */
void apply_forget_config_errors(Applier *a) {
        for (int k = KNOB_ADVISOR_MODE; k < _KNOB_MAX; k++)
                a->knob[k] = (Latch) {};
}
