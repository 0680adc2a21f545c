/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Formatting the per-guest series in Prometheus' text format; guests of one name share one series. */
#include <inttypes.h>

#include "guest-metrics.h"
#include "util.h"

/* The figures of a guest name, each a family of its own, in the order the file lists them. */
enum {
        FIGURE_PROCESSES,
        FIGURE_RESIDENT,
        FIGURE_MERGED,
        FIGURE_ZERO,
        FIGURE_PROFIT,
        _FIGURE_MAX,
};

static const struct {
        const char *name, *help;
} figures[_FIGURE_MAX] = {
        [FIGURE_PROCESSES] = { "ksmtuned_guest_processes",
                               "Guest processes of this name (libvirt's domain name, else the process name)." },
        [FIGURE_RESIDENT] = { "ksmtuned_guest_resident_bytes", "Resident memory of the guest's processes (RSS)." },
        [FIGURE_MERGED] = { "ksmtuned_guest_merged_bytes", "The guest's memory merged by KSM (ksm_merging_pages)." },
        [FIGURE_ZERO] = { "ksmtuned_guest_zero_page_bytes",
                          "The guest's empty pages merged with the zero page (ksm_zero_pages)." },
        [FIGURE_PROFIT] = { "ksmtuned_guest_profit_bytes",
                            "KSM's profit for the guest (ksm_process_profit); may be negative." },
};

/*
 * One guest name: the figures of its processes added up; a figure no process of it has stays unknown.
 * Signed, for the profit; bytes of memory stay far below INT64_MAX.
 */
typedef struct Group {
        const char *name;
        bool has[_FIGURE_MAX];
        int64_t figure[_FIGURE_MAX];
        int mergeable; /* -1 unknown; 0 when any of its processes is not mergeable */
        KsmUnmergeable reason;
} Group;

/* Add @v to @g's figure @k, and note that some guest has that figure. */
static void add(Group *g, bool *any, int k, int64_t v) {
        g->has[k] = any[k] = true;
        g->figure[k] += v;
}

/* A label value: backslash, " and newline escaped as the format wants; guest_list() made it valid UTF-8. */
static void put_label(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fprintf(f, "\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

static void family(FILE *f, const char *name, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

static void sample_start(FILE *f, const char *name, const Group *g) {
        fprintf(f, "%s{guest=\"", name);
        put_label(f, g->name);
        fputc('"', f);
}

/**
 * guest_metrics_format() - the per-guest families of the metrics file.
 * @l: the guests, sorted by guest_list_sort(): when there are more than GUEST_METRICS_MAX names, those
 *     that save least are left out
 * @page_size: bytes per page
 * @ret: the text, to free(); every family is a gauge with a "guest" label, the name; a family no guest
 *       has a figure for is left out, ksmtuned_guests_unlisted is always there
 *
 * Return: 0 or -ENOMEM.
 */
int guest_metrics_format(const GuestList *l, uint64_t page_size, char **ret) {
        _cleanup_free_ Group *groups = NULL;
        _cleanup_free_ char *text = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0, unlisted = 0, size = 0;
        bool any[_FIGURE_MAX] = {}, any_mergeable = false;

        groups = calloc(l->n ? l->n : 1, sizeof(Group));
        if (!groups)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++) {
                const GuestInfo *gi = &l->guests[i];
                Group *g = NULL;

                for (size_t j = 0; j < n; j++)
                        if (streq(groups[j].name, gi->name)) {
                                g = &groups[j];
                                break;
                        }
                if (!g) {
                        if (n >= GUEST_METRICS_MAX) {
                                unlisted++;
                                continue;
                        }
                        g = &groups[n++];
                        *g = (Group) { .name = gi->name, .mergeable = -1 };
                }
                add(g, any, FIGURE_PROCESSES, 1);
                add(g, any, FIGURE_RESIDENT, (int64_t) gi->rss_bytes);
                if (gi->ksm.has_merging_pages)
                        add(g, any, FIGURE_MERGED, (int64_t) (gi->ksm.merging_pages * page_size));
                if (gi->ksm.has_zero_pages)
                        add(g, any, FIGURE_ZERO, (int64_t) (gi->ksm.zero_pages * page_size));
                if (gi->ksm.has_profit)
                        add(g, any, FIGURE_PROFIT, gi->ksm.profit);
                if (gi->mergeable >= 0) {
                        any_mergeable = true;
                        if (g->mergeable != 0) {
                                g->mergeable = gi->mergeable;
                                g->reason = gi->reason;
                        }
                }
        }

        f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;
        /* Processes and resident memory are there for every listed guest, so always as families. */
        for (int k = 0; k < _FIGURE_MAX; k++) {
                if (!any[k] && k != FIGURE_PROCESSES && k != FIGURE_RESIDENT)
                        continue;
                family(f, figures[k].name, figures[k].help);
                for (size_t j = 0; j < n; j++)
                        if (groups[j].has[k]) {
                                sample_start(f, figures[k].name, &groups[j]);
                                fprintf(f, "} %" PRIi64 "\n", groups[j].figure[k]);
                        }
        }
        if (any_mergeable) {
                family(f, "ksmtuned_guest_mergeable",
                       "1 when the guest's memory is marked mergeable, 0 when not, with the likely reason.");
                for (size_t j = 0; j < n; j++) {
                        if (groups[j].mergeable < 0)
                                continue;
                        sample_start(f, "ksmtuned_guest_mergeable", &groups[j]);
                        if (groups[j].mergeable == 0)
                                fprintf(f, ",reason=\"%s\"", ksm_unmergeable_label(groups[j].reason));
                        fprintf(f, "} %d\n", groups[j].mergeable);
                }
        }
        family(f, "ksmtuned_guests_unlisted",
               "Guest processes left out of the per-guest series (more than 256 names).");
        fprintf(f, "ksmtuned_guests_unlisted %zu\n", unlisted);
        if (fflush(f) != 0 || ferror(f))
                return -ENOMEM;
        fclose(TAKE_PTR(f));
        *ret = TAKE_PTR(text);
        return 0;
}

/**
 * guest_metrics_append() - append the per-guest series of @l (see guest_metrics_format()) to *@text,
 * replaced by a longer string. Leaves *@text as it was on failure.
 *
 * Return: 0 or -ENOMEM.
 */
int guest_metrics_append(const GuestList *l, uint64_t page_size, char **text) {
        _cleanup_free_ char *guests = NULL;
        char *joined;
        int r;

        r = guest_metrics_format(l, page_size, &guests);
        if (r < 0)
                return r;
        if (asprintf(&joined, "%s%s", *text, guests) < 0)
                return -ENOMEM;
        free(*text);
        *text = joined;
        return 0;
}
