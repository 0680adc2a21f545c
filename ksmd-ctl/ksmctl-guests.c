/* SPDX-License-Identifier: GPL-2.0-or-later */
/* "ksmctl guests": printing the guest list as a table for people or as one JSON object for programs. */
#include <inttypes.h>

#include "ksmctl-guests.h"
#include "util.h"

/**
 * ksmctl_guest_sums() - the guests' figures added up. A figure is summed over the guests that report it;
 * its has_ flag is false when none does.
 */
void ksmctl_guest_sums(const GuestList *l, uint64_t page_size, GuestSums *ret) {
        GuestSums t = { .guests = (unsigned) l->n };

        for (size_t i = 0; i < l->n; i++) {
                const GuestInfo *g = &l->guests[i];
                uint64_t saved;

                t.rss_bytes += g->rss_bytes;
                if (g->ksm.has_merging_pages) {
                        t.has_merged = true;
                        t.merged_bytes += g->ksm.merging_pages * page_size;
                }
                if (g->ksm.has_zero_pages) {
                        t.has_zero = true;
                        t.zero_bytes += g->ksm.zero_pages * page_size;
                }
                if (g->ksm.has_profit) {
                        t.has_profit = true;
                        t.profit_bytes += g->ksm.profit;
                }
                if (guest_saved_bytes(g, page_size, &saved)) {
                        t.has_saved = true;
                        t.saved_bytes += saved;
                }
        }
        *ret = t;
}

/**
 * ksmctl_format_bytes() - @bytes in binary units for people: "512 B", "1.5 KiB", "32.0 MiB", up to TiB,
 * with a minus sign when negative. Return: what snprintf() returns.
 */
int ksmctl_format_bytes(char *buf, size_t size, int64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        uint64_t a = bytes < 0 ? (uint64_t) 0 - (uint64_t) bytes : (uint64_t) bytes;
        const char *sign = bytes < 0 ? "-" : "";
        double v = (double) a;
        size_t u = 0;

        if (a < 1024)
                return snprintf(buf, size, "%s%" PRIu64 " B", sign, a);
        v /= 1024.0;
        while (v >= 1024.0 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                u++;
        }
        return snprintf(buf, size, "%s%.1f %s", sign, v, units[u]);
}

static void cell_u(char *buf, size_t size, bool has, uint64_t v) {
        if (has)
                ksmctl_format_bytes(buf, size, v > INT64_MAX ? INT64_MAX : (int64_t) v);
        else
                snprintf(buf, size, "-");
}

static void cell_i(char *buf, size_t size, bool has, int64_t v) {
        if (has)
                ksmctl_format_bytes(buf, size, v);
        else
                snprintf(buf, size, "-");
}

static int finish(FILE *f) {
        if (fflush(f) != 0 || ferror(f))
                return errno > 0 ? -errno : -EIO;
        return 0;
}

/* KSM's own figures, the same ksmctl status shows, for the line under the totals. */
static void print_ksm(const KsmStatus *ksm, uint64_t page_size, FILE *f) {
        char merged[32], saved[32], profit[32];

        ksmctl_format_bytes(merged, sizeof(merged), (int64_t) ((ksm->pages_shared + ksm->pages_sharing) * page_size));
        ksmctl_format_bytes(saved, sizeof(saved), (int64_t) ksmctl_saved_bytes(ksm, page_size));
        fprintf(f, "KSM, all processes (as ksmctl status): %s merged (pages_shared + pages_sharing), %s saved", merged,
                saved);
        if (ksmctl_status_has(ksm, KSMCTL_KNOB_GENERAL_PROFIT)) {
                ksmctl_format_bytes(profit, sizeof(profit), ksm->general_profit);
                fprintf(f, ", general_profit %s", profit);
        }
        fputc('\n', f);
}

/**
 * ksmctl_guests_print() - the table of "ksmctl guests": one row per guest in @l's order, a totals row,
 * and KSM's figures for all processes from @ksm (NULL: left out). Sizes in binary units; a figure the
 * kernel does not report is "-".
 *
 * Return: 0, or -errno when @f could not be written.
 */
int ksmctl_guests_print(const GuestList *l, const KsmStatus *ksm, uint64_t page_size, FILE *f) {
        int width = 10; /* "99 guests" fits */
        GuestSums t;
        char rss[32], merged[32], zero[32], profit[32], label[32];

        for (size_t i = 0; i < l->n; i++) {
                int n = (int) strlen(l->guests[i].name);

                if (n > width)
                        width = n > 40 ? 40 : n;
        }
        fprintf(f, "%7s  %-*s %10s %10s %10s %10s  %s\n", "PID", width, "GUEST", "RESIDENT", "MERGED", "ZERO", "PROFIT",
                "MERGEABLE");
        for (size_t i = 0; i < l->n; i++) {
                const GuestInfo *g = &l->guests[i];

                cell_u(rss, sizeof(rss), true, g->rss_bytes);
                cell_u(merged, sizeof(merged), g->ksm.has_merging_pages, g->ksm.merging_pages * page_size);
                cell_u(zero, sizeof(zero), g->ksm.has_zero_pages, g->ksm.zero_pages * page_size);
                cell_i(profit, sizeof(profit), g->ksm.has_profit, g->ksm.profit);
                fprintf(f, "%7d  %-*s %10s %10s %10s %10s  ", g->pid, width, g->name, rss, merged, zero, profit);
                if (g->mergeable > 0)
                        fputs("yes\n", f);
                else if (g->mergeable == 0)
                        fprintf(f, "no: %s\n", ksm_unmergeable_to_string(g->reason));
                else if (g->ksm_error < 0 && g->ksm_error != -ENOENT)
                        fprintf(f, "- (cannot read /proc/%d/ksm_stat: %s)\n", g->pid, strerror(-g->ksm_error));
                else
                        fputs("-\n", f);
        }
        ksmctl_guest_sums(l, page_size, &t);
        cell_u(rss, sizeof(rss), true, t.rss_bytes);
        cell_u(merged, sizeof(merged), t.has_merged, t.merged_bytes);
        cell_u(zero, sizeof(zero), t.has_zero, t.zero_bytes);
        cell_i(profit, sizeof(profit), t.has_profit, t.profit_bytes);
        snprintf(label, sizeof(label), "%u guest%s", t.guests, t.guests == 1 ? "" : "s");
        fprintf(f, "%7s  %-*s %10s %10s %10s %10s\n", "total", width, label, rss, merged, zero, profit);
        if (ksm)
                print_ksm(ksm, page_size, f);
        return finish(f);
}

static void json_u(FILE *f, const char *key, bool has, uint64_t v) {
        if (has)
                fprintf(f, ",\"%s\":%" PRIu64, key, v);
}

/**
 * ksmctl_guests_print_json() - "ksmctl guests --json": one object on one line, its keys documented in
 * ksmctl(8): "page_size", "guests" (an array in @l's order), "totals", and "ksm" from @ksm (NULL: left
 * out). Sizes in bytes; a figure the kernel does not report is absent, never 0.
 *
 * Return: 0, or -errno when @f could not be written.
 */
int ksmctl_guests_print_json(const GuestList *l, const KsmStatus *ksm, uint64_t page_size, FILE *f) {
        GuestSums t;

        fprintf(f, "{\"page_size\":%" PRIu64 ",\"guests\":[", page_size);
        for (size_t i = 0; i < l->n; i++) {
                const GuestInfo *g = &l->guests[i];
                uint64_t saved;

                fprintf(f, "%s{\"pid\":%d,\"name\":", i ? "," : "", g->pid);
                ksmctl_json_string(f, g->name);
                fprintf(f, ",\"name_source\":\"%s\",\"resident_bytes\":%" PRIu64, g->named ? "cmdline" : "comm",
                        g->rss_bytes);
                json_u(f, "merged_bytes", g->ksm.has_merging_pages, g->ksm.merging_pages * page_size);
                json_u(f, "zero_page_bytes", g->ksm.has_zero_pages, g->ksm.zero_pages * page_size);
                if (g->ksm.has_profit)
                        fprintf(f, ",\"profit_bytes\":%" PRIi64, g->ksm.profit);
                if (guest_saved_bytes(g, page_size, &saved))
                        fprintf(f, ",\"saved_bytes\":%" PRIu64, saved);
                json_u(f, "rmap_items", g->ksm.has_rmap_items, g->ksm.rmap_items);
                if (g->ksm.has_merge_any)
                        fprintf(f, ",\"merge_any\":%s", g->ksm.merge_any ? "true" : "false");
                if (g->mergeable >= 0)
                        fprintf(f, ",\"mergeable\":%s", g->mergeable ? "true" : "false");
                if (g->mergeable == 0) {
                        fprintf(f, ",\"reason\":\"%s\",\"reason_text\":", ksm_unmergeable_label(g->reason));
                        ksmctl_json_string(f, ksm_unmergeable_to_string(g->reason));
                }
                if (g->ksm_error < 0 && g->ksm_error != -ENOENT) {
                        fputs(",\"ksm_stat_error\":", f);
                        ksmctl_json_string(f, strerror(-g->ksm_error));
                }
                fputc('}', f);
        }
        ksmctl_guest_sums(l, page_size, &t);
        fprintf(f, "],\"totals\":{\"guests\":%u,\"resident_bytes\":%" PRIu64, t.guests, t.rss_bytes);
        json_u(f, "merged_bytes", t.has_merged, t.merged_bytes);
        json_u(f, "zero_page_bytes", t.has_zero, t.zero_bytes);
        if (t.has_profit)
                fprintf(f, ",\"profit_bytes\":%" PRIi64, t.profit_bytes);
        json_u(f, "saved_bytes", t.has_saved, t.saved_bytes);
        fputc('}', f);
        if (ksm) {
                fprintf(f,
                        ",\"ksm\":{\"pages_shared\":%" PRIu64 ",\"pages_sharing\":%" PRIu64 ",\"merged_bytes\":%" PRIu64
                        ",\"saved_bytes\":%" PRIu64,
                        ksm->pages_shared, ksm->pages_sharing, (ksm->pages_shared + ksm->pages_sharing) * page_size,
                        ksmctl_saved_bytes(ksm, page_size));
                json_u(f, "ksm_zero_pages", ksmctl_status_has(ksm, KSMCTL_KNOB_KSM_ZERO_PAGES), ksm->ksm_zero_pages);
                if (ksmctl_status_has(ksm, KSMCTL_KNOB_GENERAL_PROFIT))
                        fprintf(f, ",\"general_profit\":%" PRIi64, ksm->general_profit);
                fputc('}', f);
        }
        fputs("}\n", f);
        return finish(f);
}
