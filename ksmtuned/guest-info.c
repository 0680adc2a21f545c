/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Listing the guest processes with their KSM figures, found as guests_scan() finds them. */
#include <limits.h>

#include "config.h"
#include "guest-info.h"
#include "util.h"

/* As guests.c reads it: guests' command lines are long but not this long. */
#define CMDLINE_MAX (128 * 1024)

typedef struct ListState {
        unsigned flags;
        int source;          /* with @totals: COMMITTED_* */
        GuestTotals *totals; /* NULL, or guests_scan()'s totals, added up in the same pass */
        GuestList list;
        size_t alloc;
} ListState;

static int list_one(int procfd, const char *pid, uint64_t rss_kb, void *userdata) {
        ListState *s = userdata;
        _cleanup_free_ char *cmdline = NULL, *name = NULL;
        char path[NAME_MAX + 16];
        GuestInfo g = { .mergeable = -1 };
        size_t size = 0;
        uint64_t v;

        if (s->totals)
                guests_count(procfd, pid, rss_kb, s->source, s->totals);
        if (safe_atou64(pid, &v) < 0 || v > INT_MAX)
                return 0;
        g.pid = (int) v;
        g.rss_bytes = rss_kb * 1024;

        snprintf(path, sizeof(path), "%s/cmdline", pid);
        if (read_full_file_at(procfd, path, CMDLINE_MAX, &cmdline, &size) < 0)
                size = 0;
        if (size > 0 && ksm_proc_cmdline_name(cmdline, size, &name) >= 0)
                g.named = true;
        else {
                char comm[GUEST_COMM_MAX];

                if (guest_read_comm(procfd, pid, comm) < 0)
                        return 0; /* gone since */
                name = strdup(comm);
                if (!name)
                        return -ENOMEM;
        }

        g.ksm_error = ksm_proc_stat_read(procfd, pid, &g.ksm);
        if (g.ksm_error < 0)
                g.ksm = (KsmProcStat) {};
        if (g.ksm.has_mergeable)
                g.mergeable = g.ksm.mergeable || (g.ksm.has_merge_any && g.ksm.merge_any);
        else if (g.ksm.has_merge_any && g.ksm.merge_any)
                g.mergeable = 1;
        if (g.mergeable < 0 && (s->flags & GUEST_LIST_SMAPS)) {
                bool b;

                if (ksm_proc_smaps_read(procfd, pid, &b) >= 0)
                        g.mergeable = b;
        }
        /* Merged pages prove the memory mergeable, whatever else is known. */
        if (g.mergeable < 0 &&
            ((g.ksm.has_merging_pages && g.ksm.merging_pages > 0) || (g.ksm.has_zero_pages && g.ksm.zero_pages > 0)))
                g.mergeable = 1;
        if (g.mergeable == 0)
                g.reason = ksm_proc_cmdline_unmergeable(cmdline ? cmdline : "", size);

        if (s->list.n == s->alloc) {
                size_t na = s->alloc ? s->alloc * 2 : 16;
                GuestInfo *nl = reallocarray(s->list.guests, na, sizeof(GuestInfo));

                if (!nl)
                        return -ENOMEM;
                s->list.guests = nl;
                s->alloc = na;
        }
        ksm_proc_name_sanitize(name);
        g.name = TAKE_PTR(name);
        s->list.guests[s->list.n++] = g;
        return 0;
}

/**
 * guest_list_scan() - the guest processes in @proc_dir, matched by @m exactly as guests_scan() matches
 * them, each with its name, resident memory and the kernel's KSM figures for it; in the same pass over
 * @proc_dir, guests_scan()'s totals.
 * @source: COMMITTED_* for @ret_totals
 * @flags: GUEST_LIST_SMAPS to read smaps where ksm_stat does not say whether memory is mergeable
 * @ret_totals: NULL, or guests_scan()'s figures for @source
 * @ret: the list, in /proc's order; free with guest_list_done()
 *
 * A guest whose KSM files cannot be read keeps its row, with the error in @ksm_error.
 *
 * Return: 0; -errno when @proc_dir cannot be opened; -ENOMEM. Nothing is set on failure.
 */
int guest_list_scan(const char *proc_dir, const GuestMatcher *m, int source, unsigned flags, GuestTotals *ret_totals,
                    GuestList *ret) {
        GuestTotals totals = {};
        ListState s = { .flags = flags, .source = source, .totals = ret_totals ? &totals : NULL };
        int r;

        r = guests_foreach(proc_dir, m, list_one, &s);
        if (r < 0) {
                guest_list_done(&s.list);
                return r;
        }
        if (ret_totals)
                *ret_totals = totals;
        *ret = s.list;
        return 0;
}

/* guest_list_scan() without the totals. */
int guest_list(const char *proc_dir, const GuestMatcher *m, unsigned flags, GuestList *ret) {
        return guest_list_scan(proc_dir, m, COMMITTED_RSS, flags, NULL, ret);
}

void guest_list_done(GuestList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->guests[i].name);
        free(l->guests);
        *l = (GuestList) {};
}

/**
 * guest_saved_bytes() - the memory KSM saves this guest: its merged pages plus its pages merged with
 * the zero page, times @page_size, as the kernel's ksm_process_profit counts them before the cost of
 * its rmap items. False when the kernel reports neither.
 */
bool guest_saved_bytes(const GuestInfo *g, uint64_t page_size, uint64_t *ret) {
        if (!g->ksm.has_merging_pages && !g->ksm.has_zero_pages)
                return false;
        *ret = (g->ksm.merging_pages + g->ksm.zero_pages) * page_size;
        return true;
}

static int compare_saved(const void *a, const void *b, void *userdata) {
        const GuestInfo *x = a, *y = b;
        uint64_t page_size = *(const uint64_t *) userdata, sx = 0, sy = 0;

        (void) guest_saved_bytes(x, page_size, &sx);
        (void) guest_saved_bytes(y, page_size, &sy);
        if (sx != sy)
                return sx > sy ? -1 : 1;
        if (x->rss_bytes != y->rss_bytes)
                return x->rss_bytes > y->rss_bytes ? -1 : 1;
        return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Most memory saved first; then most resident memory, then lowest PID, so the order is stable. */
void guest_list_sort(GuestList *l, uint64_t page_size) {
        if (l->n > 1)
                qsort_r(l->guests, l->n, sizeof(GuestInfo), compare_saved, &page_size);
}
