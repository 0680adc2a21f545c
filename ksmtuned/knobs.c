/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kernel knobs the configuration sets at start and reload: the advisor, smart_scan, and the rest. */
#include <inttypes.h>
#include <stddef.h>

#include "ksm-sysfs.h"
#include "log.h"
#include "manager.h"
#include "meminfo.h"

static const struct {
        int knob;
        const char *key;
        size_t offset;
} int_knobs[] = {
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
static bool knob_present(Manager *m, int knob, const char *key) {
        if (ksm_has(m->ksm_fd, knob_names[knob]))
                return true;
        if (m->knob_error[knob] != -ENOENT)
                log_warning("%s is set, but this kernel has no %s/%s: ignoring it", key, m->opts.ksm_dir,
                            knob_names[knob]);
        m->knob_error[knob] = -ENOENT;
        return false;
}

/*
 * max_page_sharing and merge_across_nodes change only while no page is merged (EBUSY otherwise). Unmerge
 * first, when memory can take the merged pages back; the adjustment that follows starts KSM again.
 */
static bool unmerge_for(Manager *m, const char *key, int64_t value, uint64_t cur) {
        uint64_t merged;
        KsmCounters c;
        char a[32], b[32];
        MemInfo mi;

        (void) manager_read_counters(m, &c);
        if (c.pages_shared == 0)
                return true;
        merged = (c.pages_sharing + c.zero_pages) * (uint64_t) sysconf(_SC_PAGESIZE) / 1024;
        if (meminfo_read(m->opts.proc_dir, &mi) < 0 || !mi.has_mem_available || mi.mem_available < merged) {
                snprintf(a, sizeof(a), "%" PRIu64 " MiB", merged / 1024);
                snprintf(b, sizeof(b), "%" PRIu64 " MiB", mi.mem_available / 1024);
                log_error("Cannot set %s=%" PRIi64 ": the kernel allows it only with nothing merged, and unmerging "
                          "%s would need more than MemAvailable (%s); keeping %" PRIu64,
                          key, value, a, b, cur);
                return false;
        }
        log_info("Unmerging %" PRIu64 " MiB so that %s=%" PRIi64 " can take effect", merged / 1024, key, value);
        if (ksm_write_u64(m->ksm_fd, "run", KSM_RUN_UNMERGE) < 0) {
                log_error_errno(negative_errno(), "Failed to unmerge for %s: %m; keeping %" PRIu64, key, cur);
                return false;
        }
        return true;
}

static void set_advisor_mode(Manager *m) {
        _cleanup_free_ char *text = NULL, *cur = NULL;
        const char *want = advisor_mode_names[m->settings.advisor_mode];
        int r;

        if (!knob_present(m, KNOB_ADVISOR_MODE, "KSM_ADVISOR"))
                return;
        if (ksm_read_string(m->ksm_fd, "advisor_mode", &text) >= 0 && ksm_parse_choice(text, &cur) >= 0 &&
            streq(cur, want))
                return;
        r = ksm_write_string(m->ksm_fd, "advisor_mode", want);
        if (r < 0) {
                log_error_errno(r, "Failed to set %s/advisor_mode to %s: %m", m->opts.ksm_dir, want);
                return;
        }
        log_info("Set the kernel's advisor to %s (was %s)%s", want, cur ? cur : "?",
                 streq(want, "scan-time") ? ": it now sets pages_to_scan, ksmtuned only starts and stops KSM" : "");
}

/**
 * manager_apply_knobs() - set the knobs the configuration names, where they differ and the kernel has
 * them. Keys left empty leave the kernel's values alone. Nothing is written in a dry run.
 */
void manager_apply_knobs(Manager *m) {
        if (m->opts.dry_run)
                return;
        if (m->settings.advisor_mode >= 0)
                set_advisor_mode(m);

        for (size_t i = 0; i < ELEMENTSOF(int_knobs); i++) {
                int knob = int_knobs[i].knob;
                int64_t value = *(const int64_t *) ((const char *) &m->settings + int_knobs[i].offset);
                uint64_t cur;
                int r;

                if (value < 0 || !knob_present(m, knob, int_knobs[i].key))
                        continue;
                if (ksm_read_u64(m->ksm_fd, knob_names[knob], &cur) >= 0 && cur == (uint64_t) value) {
                        m->knob_error[knob] = 0;
                        continue;
                }
                if ((knob == KNOB_MAX_PAGE_SHARING || knob == KNOB_MERGE_ACROSS_NODES) &&
                    !unmerge_for(m, int_knobs[i].key, value, cur))
                        continue;
                r = ksm_write_u64(m->ksm_fd, knob_names[knob], (uint64_t) value);
                if (r < 0) {
                        log_error_errno(r, "Failed to set %s/%s to %" PRIi64 " (%s): %m", m->opts.ksm_dir,
                                        knob_names[knob], value, int_knobs[i].key);
                        m->knob_error[knob] = r;
                        continue;
                }
                m->knob_error[knob] = 0;
                log_info("Set %s to %" PRIi64 " (was %" PRIu64 ")", knob_names[knob], value, cur);
        }
}
