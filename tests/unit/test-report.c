/* SPDX-License-Identifier: GPL-2.0-or-later */
/* report.c and metrics.c's formatter: the text of an adjustment, from struct literals. */
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
        ck_assert_str_eq(status,
                         "KSM on: pages_to_scan 1550, sleep 10 ms; free 1.5 MiB < threshold 400.0 MiB; "
                         "guests commit 3.0 GiB; ksmd 12.5% CPU; advisor owns pages_to_scan; libvirt connected; "
                         "configuration reload failed, previous one in force");
        report_status(status, sizeof(status), &off, &(Snapshot) {}, &(StatusExtra) {});
        ck_assert_str_eq(status, "KSM off: free 1.7 GiB > threshold 400.0 MiB, guests commit 0 kB of 2.0 GiB");
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
        MetricsExtra x = { .run = 1, .libvirt_connected = 1, .timestamp = 1700000000.5 };
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
        tcase_add_test(tc, test_fields);
        tcase_add_test(tc, test_metrics);
        tcase_add_test(tc, test_trigger_labels);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(report_suite());
}
