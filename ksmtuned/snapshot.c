/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One read of everything an adjustment decides on; nothing here logs or writes. */
#include <time.h>

#include "ksm-sysfs.h"
#include "ksmd.h"
#include "meminfo.h"
#include "snapshot.h"
#include "util.h"

/* Whether the kernel's advisor is in scan-time mode, where it sets pages_to_scan and refuses ours. */
static bool advisor_owns_pages_to_scan(int ksm_fd) {
        _cleanup_free_ char *text = NULL, *mode = NULL;

        if (ksm_read_string(ksm_fd, "advisor_mode", &text) < 0 || ksm_parse_choice(text, &mode) < 0)
                return false;
        return streq(mode, "scan-time");
}

/**
 * snapshot_read_ksm() - KSM's side of @snap: its counters (absent files, on older kernels, read as 0),
 * general_profit, the knobs an adjustment writes and whether the advisor owns pages_to_scan. @snap's
 * mem_* and guest fields are left as they are; merged is set from the counters.
 */
void snapshot_read_ksm(int ksm_fd, Snapshot *snap) {
        _cleanup_free_ char *profit = NULL;
        KsmCounters *c = &snap->counters;
        bool basic;

        *c = (KsmCounters) {};
        basic = ksm_read_u64(ksm_fd, "full_scans", &c->full_scans) >= 0;
        basic = ksm_read_u64(ksm_fd, "pages_shared", &c->pages_shared) >= 0 && basic;
        basic = ksm_read_u64(ksm_fd, "pages_sharing", &c->pages_sharing) >= 0 && basic;
        (void) ksm_read_u64(ksm_fd, "pages_unshared", &c->pages_unshared);
        (void) ksm_read_u64(ksm_fd, "pages_volatile", &c->pages_volatile);
        (void) ksm_read_u64(ksm_fd, "ksm_zero_pages", &c->zero_pages);
        c->has_pages_scanned = ksm_read_u64(ksm_fd, "pages_scanned", &c->pages_scanned) >= 0;
        (void) ksm_read_u64(ksm_fd, "pages_skipped", &c->pages_skipped);
        snap->has_counters = basic;
        snap->merged = (c->pages_sharing + c->zero_pages) * ((uint64_t) sysconf(_SC_PAGESIZE) / 1024);
        snap->has_general_profit = ksm_read_string(ksm_fd, "general_profit", &profit) >= 0 &&
                                   safe_atoi64(profit, &snap->general_profit) >= 0;
        for (int k = 0; k < _KNOB_ADJUSTED; k++)
                snap->knob_known[k] = ksm_read_u64(ksm_fd, knob_names[k], &snap->knob[k]) >= 0;
        snap->advisor_owns = advisor_owns_pages_to_scan(ksm_fd);
}

/* What free memory is made of, from meminfo: the fields policy_decide() counts as free. */
static void snapshot_set_free(Snapshot *snap, const MemInfo *mi) {
        snap->mem_free = mi->mem_free;
        snap->buffers = mi->buffers;
        snap->cached = mi->cached;
        snap->mem_available = mi->mem_available;
        snap->has_mem_available = mi->has_mem_available;
}

/**
 * snapshot_read_growth() - what the adaptive policy's checks watch after a guest event: the guests' resident
 * memory (statm only, whatever KSM_COMMITTED counts) and PROC/meminfo's free memory, into @snap, with
 * has_guests_resident set. Its other fields are left as they are.
 *
 * Return: 0; a negative errno from meminfo or the guest scan (@snap then unchanged). Never logs.
 */
int snapshot_read_growth(const SnapshotSource *src, Snapshot *snap) {
        GuestTotals g;
        MemInfo mi;
        int r;

        r = meminfo_read(src->proc_dir, &mi);
        if (r < 0)
                return r;
        r = guests_scan(src->proc_dir, src->matcher, COMMITTED_RSS, &g);
        if (r < 0)
                return r;
        snapshot_set_free(snap, &mi);
        snap->guests_resident = g.resident_kb;
        snap->has_guests_resident = true;
        return 0;
}

/**
 * snapshot_sample_ksmd() - ksmd's CPU use since the previous sample, in ‰ of one CPU (at most 1000000).
 * @proc_dir: the /proc to look in.
 * @ks: the previous sample; updated. A ksmd not found stays not found (pid -1) until reset to 0.
 *
 * Return: true with @ret_permille set; false at the first sample or without ksmd.
 */
bool snapshot_sample_ksmd(const char *proc_dir, KsmdSampler *ks, unsigned *ret_permille) {
        uint64_t ns, now = now_usec(CLOCK_MONOTONIC);
        bool have = false, precise;
        int r;

        if (ks->pid == 0 && ksmd_find(proc_dir, &ks->pid) < 0)
                ks->pid = -1;
        if (ks->pid <= 0)
                return false;
        r = ksmd_cpu_ns(proc_dir, ks->pid, &ns, &precise);
        if (r < 0) {
                if (r != -ESRCH) { /* not gone: its stat did not read or parse */
                        ks->error = r;
                        ks->error_pid = ks->pid;
                }
                ks->pid = 0; /* look again next time */
                ks->have_sample = false;
                return false;
        }
        ks->error = 0;
        /* Two samples from different sources (schedstat came or went) are not compared. */
        if (ks->have_sample && precise == ks->precise && now > ks->usec && ns >= ks->ns) {
                /* ns of CPU per µs of time is ‰ of one CPU; rounded. */
                uint64_t span = now - ks->usec, permille = (ns - ks->ns + span / 2) / span;

                *ret_permille = permille > 1000000 ? 1000000 : (unsigned) permille;
                have = true;
        }
        ks->ns = ns;
        ks->precise = precise;
        ks->usec = now;
        ks->have_sample = true;
        return have;
}

/**
 * snapshot_read() - everything an adjustment needs, in one struct: PROC/meminfo, the guests' committed
 * memory, KSM's counters and knobs (snapshot_read_ksm()), and ksmd's CPU since the previous sample.
 * @ret_guests: NULL, or each guest's figures for the per-guest metrics (guest_list_scan()), read in the
 *              same pass over PROC as the committed memory; free with guest_list_done()
 *
 * Return: 0; a negative errno from meminfo (-ENODATA, -EBADMSG: its MemTotal; see meminfo_strerror()) or the
 * guest scan, with @ret_failed saying which. Never logs: fields of meminfo counted as 0 are flagged in
 * Snapshot.meminfo_missing and Snapshot.meminfo_malformed for the caller to say so.
 */
int snapshot_read(const SnapshotSource *src, KsmdSampler *ks, Snapshot *ret, GuestList *ret_guests,
                  SnapshotPart *ret_failed) {
        Snapshot snap = {};
        GuestTotals g;
        MemInfo mi;
        int r;

        r = meminfo_read(src->proc_dir, &mi);
        if (r < 0) {
                *ret_failed = SNAPSHOT_MEMINFO;
                return r;
        }
        if (ret_guests)
                r = guest_list_scan(src->proc_dir, src->matcher, src->committed_source, 0, &g, ret_guests);
        else
                r = guests_scan(src->proc_dir, src->matcher, src->committed_source, &g);
        if (r < 0) {
                *ret_failed = SNAPSHOT_GUESTS;
                return r;
        }
        snap = (Snapshot) {
                .mem_total = mi.mem_total,
                .committed = g.rss_kb,
                .guests = g.count,
                .guest_fallbacks = g.fallbacks,
                .has_guests_resident = true,
                .guests_resident = g.resident_kb,
                .taken = now_usec(CLOCK_MONOTONIC),
                .meminfo_missing = mi.missing,
                .meminfo_malformed = mi.malformed,
        };
        snapshot_set_free(&snap, &mi);
        snapshot_read_ksm(src->ksm_fd, &snap);
        snap.has_ksmd_cpu = snapshot_sample_ksmd(src->proc_dir, ks, &snap.ksmd_cpu_permille);
        *ret = snap;
        return 0;
}
