/* SPDX-License-Identifier: GPL-2.0-or-later */
/* report.c and metrics.c's formatter: the text of an adjustment, from struct literals. */
#include <regex.h>

#include "report.h"
#include "unit.h"

static const Decision on = {
        .run = true,
        .boost = true,
        .npages = 1550,
        .sleep_ms = 10,
        .free = 1536,
        .thres = 409600,
        .committed = 3 * 1024 * 1024,
        .total = 2 * 1024 * 1024,
};
static const Decision off = {
        .run = false,
        .npages = 64,
        .sleep_ms = 10,
        .free = 1800000,
        .thres = 409600,
        .committed = 0,
        .total = 2 * 1024 * 1024,
        .unmerge_refused = true,
};
static const Snapshot snap = { .guests = 2, .has_ksmd_cpu = true, .ksmd_cpu_permille = 125 };

START_TEST(test_format_kb) {
        char buf[32];

        ck_assert_str_eq(format_kb(buf, sizeof(buf), 0), "0 kB");
        ck_assert_str_eq(format_kb(buf, sizeof(buf), 1023), "1023 kB");
        ck_assert_str_eq(format_kb(buf, sizeof(buf), 1536), "1.5 MiB");
        ck_assert_str_eq(format_kb(buf, sizeof(buf), 3 * 1024 * 1024), "3.0 GiB");
}
END_TEST

START_TEST(test_line) {
        Decision adaptive = on;
        char line[640];

        report_line(line, sizeof(line), 7, "interval", &on, &snap);
        ck_assert_str_eq(line, "adjustment #7 (interval): total 2097152 free 1536 thres 409600 committed 3145728 "
                               "(2 guests) ksmd 12.5% -> start pages_to_scan 1550 sleep_millisecs 10 (boost)");
        report_line(line, sizeof(line), 8, "SIGUSR1", &off, &(Snapshot) { .guests = 0 });
        ck_assert_str_eq(line, "adjustment #8 (SIGUSR1): total 2097152 free 1800000 thres 409600 committed 0 "
                               "(0 guests) -> stop (unmerge refused: memory too short)");
        adaptive.boost = false;
        adaptive.adaptive = true;
        adaptive.adaptive_rate = 20000;
        adaptive.adaptive_why = WHY_EVENT;
        report_line(line, sizeof(line), 9, "libvirt guest g started", &adaptive, &snap);
        ck_assert_ptr_nonnull(strstr(line, "(adaptive: 20000 pages/s, "));
        ck_assert_ptr_nonnull(strstr(line, adaptive_why_string(WHY_EVENT)));
        ck_assert_ptr_nonnull(strstr(line, "; decay)"));
}
END_TEST

START_TEST(test_status) {
        StatusExtra x = { .advisor_owns = true, .libvirt = "libvirt connected", .reload_failed = true };
        char status[512];

        report_status(status, sizeof(status), &on, &snap, &x);
        ck_assert_str_eq(status, "KSM on: pages_to_scan 1550, sleep 10 ms; free 1.5 MiB < threshold 400.0 MiB, "
                                 "guests commit 3.0 GiB > MemTotal less the threshold 1.6 GiB; boost; ksmd 12.5% CPU; "
                                 "advisor owns pages_to_scan; libvirt connected; "
                                 "configuration reload failed, previous one in force");
        report_status(status, sizeof(status), &off, &(Snapshot) {}, &(StatusExtra) {});
        ck_assert_str_eq(status, "KSM off: free 1.7 GiB > threshold 400.0 MiB, guests commit 0 kB < MemTotal less the "
                                 "threshold 1.6 GiB; unmerge refused");
}
END_TEST

/* A figure of the text in kB (or ‰ of a CPU for a percentage). */
static double figure(const char *num, const char *unit) {
        double v = strtod(num, NULL);

        return streq(unit, "GiB") ? v * 1024 * 1024 : streq(unit, "MiB") ? v * 1024 : streq(unit, "%") ? v * 10 : v;
}

/*
 * The comparisons in @text ("NAME 1.5 MiB < NAME 400.0 MiB", "ksmd 90.0% of a CPU > KSM_CPU_BUDGET 25%"):
 * how many there are, and in @ret_false how many state what their figures do not say.
 */
static unsigned relations(const char *text, unsigned *ret_false) {
        static const char *re = "([0-9.]+) ?(kB|MiB|GiB|%)( of a CPU)? ([<=>]) [A-Za-z_ ]+ ([0-9.]+) ?(kB|MiB|GiB|%)";
        regmatch_t m[7];
        unsigned n = 0;
        regex_t r;

        *ret_false = 0;
        ck_assert_int_eq(regcomp(&r, re, REG_EXTENDED), 0);
        for (const char *p = text; regexec(&r, p, 7, m, 0) == 0; p += m[0].rm_eo, n++) {
                char a[32], au[8], op, b[32], bu[8];
                double x, y;

                snprintf(a, sizeof(a), "%.*s", (int) (m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
                snprintf(au, sizeof(au), "%.*s", (int) (m[2].rm_eo - m[2].rm_so), p + m[2].rm_so);
                op = p[m[4].rm_so];
                snprintf(b, sizeof(b), "%.*s", (int) (m[5].rm_eo - m[5].rm_so), p + m[5].rm_so);
                snprintf(bu, sizeof(bu), "%.*s", (int) (m[6].rm_eo - m[6].rm_so), p + m[6].rm_so);
                x = figure(a, au);
                y = figure(b, bu);
                if (op != (x < y ? '<' : x > y ? '>' : '=')) {
                        fprintf(stderr, "false: '%.*s', in: %s\n", (int) (m[0].rm_eo - m[0].rm_so), p + m[0].rm_so,
                                text);
                        (*ret_false)++;
                }
        }
        regfree(&r);
        return n;
}

/* Every comparison in @text is true; returns how many there are. */
static unsigned check_relations(const char *text) {
        unsigned wrong, n = relations(text, &wrong);

        ck_assert_msg(wrong == 0, "a false comparison in: %s", text);
        return n;
}

#define GIB (UINT64_C(1024) * 1024)
#define MIB UINT64_C(1024)

/* A decision on a 16 GiB host with the default settings: sleep_millisecs 10, threshold 3355443 kB. */
#define HOST16(...)                                                                                                    \
        { .sleep_ms = 10, .thres = 3355443, .total = 16 * GIB, __VA_ARGS__ }

/* The report's inputs: KSM_CPU_BUDGET=25, free memory 200 MiB below the threshold of 819.2 MiB. */
#define CPU_CAPPED                                                                                                     \
        {                                                                                                              \
                .run = true, .cpu_capped = true, .cpu_budget = 25, .npages = 64, .sleep_ms = 10, .free = 200 * MIB,    \
                .thres = 838860, .committed = 3 * GIB, .total = 4 * GIB                                                \
        }

/*
 * Each branch of the decision, with inputs as the policy would see them, and phrases its text must hold
 * (NULL: none more) or must not.
 */
static const struct {
        const char *name;
        Decision d;
        Snapshot snap;
        const char *change[3]; /* report_change(), was_on false */
        const char *status;    /* in report_status() */
        const char *never;     /* in neither */
} branches[] = {
        { "boost",
          { .run = true,
            .boost = true,
            .npages = 1550,
            .sleep_ms = 10,
            .free = 1536,
            .thres = 409600,
            .committed = 3 * GIB,
            .total = 2 * GIB },
          {},
          { "Started KSM: pages_to_scan 1550, sleep_millisecs 10 (", "free 1.5 MiB < threshold 400.0 MiB", "; boost)" },
          "; boost",
          "decay" },
        { "decay, guests over the room",
          HOST16(.run = true, .npages = 1200, .free = 4 * GIB, .committed = 14 * GIB),
          {},
          { "free 4.0 GiB > threshold 3.2 GiB", "guests commit 14.0 GiB > MemTotal less the threshold 12.8 GiB",
            "; decay)" },
          "; decay",
          "boost" },
        /* The report: free memory below the threshold, yet the text said ">=". */
        { "CPU-capped",
          CPU_CAPPED,
          { .has_ksmd_cpu = true, .ksmd_cpu_permille = 900 },
          { "free 200.0 MiB < threshold 819.2 MiB", "ksmd 90.0% of a CPU > KSM_CPU_BUDGET 25%: decay, not boost",
            NULL },
          "free 200.0 MiB < threshold 819.2 MiB",
          ">=" },
        { "CPU-capped, unsampled",
          CPU_CAPPED,
          {},
          { "; ksmd over KSM_CPU_BUDGET 25%: decay, not boost)", NULL, NULL },
          "free 200.0 MiB < threshold 819.2 MiB",
          ">=" },
        { "hovering just above",
          HOST16(.run = true, .npages = 1200, .free = 3355443 + 1000, .committed = 14 * GIB),
          {},
          { "free 3356443 kB > threshold 3355443 kB", NULL, NULL },
          "free 3356443 kB > threshold 3355443 kB",
          "3.2 GiB > threshold" },
        { "hovering just below",
          HOST16(.run = true, .boost = true, .npages = 1250, .free = 3355443 - 1000, .committed = 14 * GIB),
          {},
          { "free 3354443 kB < threshold 3355443 kB", NULL, NULL },
          "free 3354443 kB < threshold 3355443 kB",
          "3.2 GiB < threshold" },
        { "at the threshold",
          HOST16(.run = true, .npages = 1200, .free = 3355443, .committed = 0),
          {},
          { "free 3.2 GiB = threshold 3.2 GiB", "guests commit 0 kB < MemTotal less", "; decay)" },
          "free 3.2 GiB = threshold 3.2 GiB",
          ">=" },
        { "MemAvailable",
          HOST16(.run = true, .boost = true, .npages = 300, .free = MIB, .committed = 0, .free_is_available = true),
          {},
          { "available 1.0 MiB < threshold 3.2 GiB", NULL, NULL },
          "available 1.0 MiB < threshold",
          "free 1.0 MiB" },
        { "stop",
          HOST16(.run = false, .npages = 64, .free = 10 * GIB, .committed = 2 * GIB),
          {},
          { "Stopped KSM: free 10.0 GiB > threshold 3.2 GiB",
            "guests commit 2.0 GiB < MemTotal less the threshold 12.8 GiB", NULL },
          "KSM off: free 10.0 GiB > threshold 3.2 GiB",
          "boost" },
        { "unmerge",
          HOST16(.run = false, .unmerge = true, .npages = 64, .free = 10 * GIB, .committed = 2 * GIB),
          { .merged = GIB, .has_mem_available = true, .mem_available = 10 * GIB },
          { "Stopped KSM and unmerged 1.0 GiB: free 10.0 GiB > threshold 3.2 GiB",
            "; free less the threshold 6.8 GiB > merged 1.0 GiB", NULL },
          "KSM off: ",
          "refused" },
        { "unmerge refused",
          HOST16(.run = false, .unmerge_refused = true, .npages = 64, .free = 4 * GIB, .committed = 2 * GIB),
          { .merged = 2 * GIB, .has_mem_available = true, .mem_available = 4 * GIB },
          { "Stopped KSM: free 4.0 GiB > threshold 3.2 GiB", NULL, NULL },
          "; unmerge refused",
          "unmerged" },
        { "advisor owns pages_to_scan",
          HOST16(.run = true, .boost = true, .npages = 300, .free = MIB, .committed = 0),
          { .advisor_owns = true },
          { "Started KSM: pages_to_scan set by the kernel's advisor, sleep_millisecs 10 (",
            "; the kernel's advisor sets pages_to_scan)", NULL },
          "KSM on: pages_to_scan 300, sleep 10 ms; free 1.0 MiB < threshold 3.2 GiB",
          "boost)" },
};

START_TEST(test_branch_wording) {
        const typeof(branches[0]) *b = &branches[_i];
        StatusExtra x = {};
        char text[640];

        report_change(text, sizeof(text), &b->d, &b->snap, false);
        for (size_t i = 0; i < ELEMENTSOF(b->change) && b->change[i]; i++)
                ck_assert_msg(strstr(text, b->change[i]), "%s: no '%s' in: %s", b->name, b->change[i], text);
        ck_assert_msg(!strstr(text, b->never), "%s: '%s' in: %s", b->name, b->never, text);
        ck_assert_uint_ge(check_relations(text), 2);

        report_status(text, sizeof(text), &b->d, &b->snap, &x);
        ck_assert_msg(strstr(text, b->status), "%s: no '%s' in STATUS=%s", b->name, b->status, text);
        ck_assert_msg(!strstr(text, b->never), "%s: '%s' in STATUS=%s", b->name, b->never, text);
        ck_assert_uint_ge(check_relations(text), 2);
}
END_TEST

/* KSM_POLICY=adaptive: each step names the controller's rate and reason, not boost or decay. */
START_TEST(test_adaptive_wording) {
        Decision d = { .run = true,
                       .adaptive = true,
                       .adaptive_rate = 20000,
                       .adaptive_why = (AdaptiveWhy) _i,
                       .npages = 200,
                       .sleep_ms = 10,
                       .free = MIB,
                       .thres = 3355443,
                       .total = 16 * GIB };
        char text[640], want[160];

        snprintf(want, sizeof(want), "; adaptive: 20000 pages/s, %s)", adaptive_why_string((AdaptiveWhy) _i));
        report_change(text, sizeof(text), &d, &(Snapshot) {}, true);
        ck_assert_msg(strstr(text, "Tuned KSM: pages_to_scan 200, sleep_millisecs 10 (free 1.0 MiB < threshold"), "%s",
                      text);
        ck_assert_msg(strstr(text, want), "no '%s' in: %s", want, text);
        ck_assert_msg(!strstr(text, "boost") && !strstr(text, "decay"), "%s", text);
        ck_assert_uint_eq(check_relations(text), 2);
}
END_TEST

START_TEST(test_unmerge_refused) {
        Decision d = branches[10].d;
        char text[256];

        ck_assert_str_eq(branches[10].name, "unmerge refused");
        /* Too little MemAvailable for the merged pages. */
        report_unmerge_refused(text, sizeof(text), &d,
                               &(Snapshot) { .merged = 2 * GIB, .has_mem_available = true, .mem_available = GIB });
        ck_assert_str_eq(text, "Not unmerging 2.0 GiB of merged pages: MemAvailable 1.0 GiB < merged 2.0 GiB; "
                               "keeping them merged");
        /* Enough of it, but free memory less the threshold (0.8 GiB) would not stay above them. */
        report_unmerge_refused(text, sizeof(text), &d,
                               &(Snapshot) { .merged = 2 * GIB, .has_mem_available = true, .mem_available = 4 * GIB });
        ck_assert_str_eq(text, "Not unmerging 2.0 GiB of merged pages: free less the threshold 819.2 MiB < merged "
                               "2.0 GiB; keeping them merged");
        /* Without MemAvailable (before 3.14), MemFree. */
        report_unmerge_refused(text, sizeof(text), &d, &(Snapshot) { .merged = 2 * GIB, .mem_free = 512 * MIB });
        ck_assert_str_eq(text, "Not unmerging 2.0 GiB of merged pages: MemFree 512.0 MiB < merged 2.0 GiB; "
                               "keeping them merged");
        ck_assert_uint_eq(check_relations(text), 1);
}
END_TEST

START_TEST(test_relation_and_keys) {
        char text[128];
        unsigned wrong;

        ck_assert_str_eq(report_relation(1, 2), "<");
        ck_assert_str_eq(report_relation(2, 2), "=");
        ck_assert_str_eq(report_relation(3, 2), ">");
        report_compare(text, sizeof(text), "free", 3 * GIB + 1, "threshold", 3 * GIB);
        ck_assert_str_eq(text, "free 3145729 kB > threshold 3145728 kB"); /* both "3.0 GiB": in kB */
        /* The check itself catches a false operator: the reported bug's text. */
        ck_assert_uint_eq(relations("free 200.0 MiB >= threshold 819.2 MiB", &wrong), 0); /* no such operator */
        ck_assert_uint_eq(relations("free 200.0 MiB > threshold 819.2 MiB, ksmd 90.0% of a CPU < X 25%", &wrong), 2);
        ck_assert_uint_eq(wrong, 2);
        ck_assert_str_eq(report_knob_keys(KNOB_PAGES_TO_SCAN, false),
                         "KSM_NPAGES_MIN and KSM_NPAGES_MAX (or KSM_ADVISOR=scan-time)");
        ck_assert_str_eq(report_knob_keys(KNOB_SLEEP_MILLISECS, false), "KSM_SLEEP_MSEC");
        ck_assert_str_eq(report_knob_keys(KNOB_SLEEP_MILLISECS, true),
                         "KSM_ADAPTIVE_MIN_RATE and KSM_ADAPTIVE_MAX_RATE");
        ck_assert_ptr_null(report_knob_keys(KNOB_SMART_SCAN, false));
}
END_TEST

START_TEST(test_fields) {
        JournalFields jf;

        report_fields(&jf, "KVM VM of PID 7 created", &on, &snap);
        ck_assert_str_eq(jf.fields[0], "KSM_REASON=KVM VM of PID 7 created");
        ck_assert_str_eq(jf.fields[1], "KSM_RUN=1");
        ck_assert_str_eq(jf.fields[2], "KSM_PAGES_TO_SCAN=1550");
        ck_assert_str_eq(jf.fields[7], "KSM_GUESTS=2");
        ck_assert_str_eq(jf.fields[8], "KSMD_CPU_PERMILLE=125");
        ck_assert_ptr_null(jf.fields[9]);
        report_fields(&jf, "interval", &off, &(Snapshot) {});
        ck_assert_str_eq(jf.fields[1], "KSM_RUN=0");
        ck_assert_str_eq(jf.fields[8], "KSMD_CPU_PERMILLE=-1");
}
END_TEST

START_TEST(test_metrics) {
        Snapshot with = snap;
        Metrics m = { .adjustments = { [TRIGGER_GUEST_EVENT] = 3, [TRIGGER_RECONNECT] = 1 } };
        MetricsExtra x = { .run = 1,
                           .libvirt_connected = 1,
                           .timestamp = 1700000000.5,
                           .reload_failed = true,
                           .monitor_interval = 45 };
        _cleanup_free_ char *text = NULL;

        with.has_counters = true;
        with.counters = (KsmCounters) { .full_scans = 4, .pages_shared = 10, .pages_sharing = 90 };
        with.has_general_profit = true;
        with.general_profit = -4096;
        report_metrics(&m, &on, &with, &x);
        ck_assert_uint_eq(m.adjustments[TRIGGER_GUEST_EVENT], 3); /* the caller's counts, untouched */
        ck_assert_int_eq(metrics_format(&m, &text), 0);
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_guests 2\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_ksm_pages_sharing 90\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_ksm_general_profit_bytes -4096\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_ksmd_cpu_ratio 0.1250\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_adjustments_total{reason=\"guest-event\"} 3\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_adjustments_total{reason=\"libvirt-reconnect\"} 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "ksmtuned_adjustments_total{reason=\"start-up\"} 0\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_libvirt_connected 1\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_config_last_reload_successful 0\n"));
        ck_assert_ptr_nonnull(strstr(text, "\nksmtuned_monitor_interval_seconds 45\n"));
        ck_assert_ptr_null(strstr(text, "ksmtuned_ksmd_cpu_seconds_total")); /* not sampled */
}
END_TEST

START_TEST(test_trigger_labels) {
        ck_assert_str_eq(trigger_label(TRIGGER_START_UP), "start-up");
        ck_assert_str_eq(trigger_label(TRIGGER_SIGNAL), "signal");
        ck_assert_str_eq(trigger_label(TRIGGER_GUEST_EVENT), "guest-event");
        ck_assert_str_eq(trigger_label(TRIGGER_RECONNECT), "libvirt-reconnect");
        ck_assert_str_eq(trigger_label(TRIGGER_NONE), "other");
        ck_assert_str_eq(trigger_label(_TRIGGER_MAX), "other");
}
END_TEST

static Suite *report_suite(void) {
        Suite *s = suite_create("report");
        TCase *tc = tcase_create("report");

        tcase_add_test(tc, test_format_kb);
        tcase_add_test(tc, test_line);
        tcase_add_test(tc, test_status);
        tcase_add_loop_test(tc, test_branch_wording, 0, ELEMENTSOF(branches));
        tcase_add_loop_test(tc, test_adaptive_wording, WHY_HOLD, WHY_CPU + 1);
        tcase_add_test(tc, test_unmerge_refused);
        tcase_add_test(tc, test_relation_and_keys);
        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_metrics);
        tcase_add_test(tc, test_trigger_labels);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(report_suite());
}
