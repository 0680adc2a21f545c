/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The manager's adjustment, end to end on a fake tree: the trigger reaches the metrics, failures latch. */
#include "fake-tree.h"
#include "manager.h"

#define GiB_KB (UINT64_C(1024) * 1024)

static FakeTree t;
static char conf[128], metrics[128];
static ManagerOptions opts;

static void setup(void) {
        fake_tree_new(&t, "manager");
        fake_ksm(&t);
        fake_meminfo(&t, 16 * GiB_KB, 1 * GiB_KB, 0, 0, 1 * GiB_KB);
        fake_process(&t, 100, "qemu-kvm", 1000);
        snprintf(metrics, sizeof(metrics), "%s/ksmtuned.prom", t.root);
        fake_put(&t, "ksmtuned.conf", "KSM_METRICS_FILE=%s\nKSM_KVM_EVENTS=0\nKSM_LIBVIRT_URI=\n", metrics);
        snprintf(conf, sizeof(conf), "%s/ksmtuned.conf", t.root);
        opts = (ManagerOptions) { .config_path = conf, .ksm_dir = t.ksm, .proc_dir = t.proc, .once = true };
}

static void teardown(void) {
        fake_tree_free(&t);
}

/* Whether the metrics file holds @line. */
static bool metrics_has(const char *line) {
        _cleanup_free_ char *text = NULL;

        ck_assert_int_eq(read_full_file_at(AT_FDCWD, metrics, 1 << 20, &text, NULL), 0);
        return strstr(text, line);
}

START_TEST(test_adjust) {
        _cleanup_(manager_freep) Manager *m = NULL;
        char path[PATH_MAX];

        ck_assert_int_eq(manager_new(&opts, &m), 0);

        /* Short of memory: boost from the original's npages 0, clamped, KSM on. */
        ck_assert_int_eq(manager_adjust(m, TRIGGER_GUEST_EVENT, "KVM VM of PID 100 created"), 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 1);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 300);
        ck_assert(metrics_has("ksmtuned_adjustments_total{reason=\"guest-event\"} 1\n"));
        ck_assert(metrics_has("ksmtuned_ksm_run 1\n"));
        ck_assert(metrics_has("\nksmtuned_guests 1\n"));

        /* The trigger, not the text, labels the adjustment. */
        ck_assert_int_eq(manager_adjust(m, TRIGGER_SIGNAL, "libvirt reconnected"), 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 600);
        ck_assert(metrics_has("ksmtuned_adjustments_total{reason=\"signal\"} 1\n"));
        ck_assert(metrics_has("ksmtuned_adjustments_total{reason=\"libvirt-reconnect\"} 0\n"));

        /* meminfo unreadable: the adjustment is skipped, the failure latched, then its end. */
        snprintf(path, sizeof(path), "%s/meminfo", t.proc);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(manager_adjust(m, TRIGGER_INTERVAL, "interval"), -ENOENT);
        ck_assert_int_eq(m->read_error[SNAPSHOT_MEMINFO].error, -ENOENT);
        ck_assert_uint_eq(m->adjustments, 2);

        /* Plenty of memory again: KSM stops. */
        fake_meminfo(&t, 16 * GiB_KB, 15 * GiB_KB, 0, 0, 15 * GiB_KB);
        ck_assert_int_eq(manager_adjust(m, TRIGGER_INTERVAL, "interval"), 0);
        ck_assert_int_eq(m->read_error[SNAPSHOT_MEMINFO].error, 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 0);
        ck_assert(metrics_has("ksmtuned_adjustments_total{reason=\"interval\"} 1\n"));
        ck_assert(metrics_has("ksmtuned_decision_run 0\n"));
}
END_TEST

START_TEST(test_dry_run_writes_nothing) {
        _cleanup_(manager_freep) Manager *m = NULL;

        opts.dry_run = true;
        ck_assert_int_eq(manager_new(&opts, &m), 0);
        ck_assert_int_eq(manager_adjust(m, TRIGGER_START_UP, "once"), 0);
        ck_assert(m->have_decision && m->last.run);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/run"), 0);
        ck_assert_uint_eq(fake_get_u64(&t, "ksm/pages_to_scan"), 100);
        ck_assert_int_eq(access(metrics, F_OK), -1);
}
END_TEST

int main(void) {
        Suite *s = suite_create("manager");
        TCase *tc = tcase_create("manager");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_adjust);
        tcase_add_test(tc, test_dry_run_writes_nothing);
        suite_add_tcase(s, tc);
        return unit_run(s);
}
