/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of ksmtuned.conf loading: the syntax users write, every error with its line, drop-ins. */
#include <check.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "config.h"
#include "util.h"

#include "unit.h"

#define NAME "test.conf"

/* ---- helpers ---- */

typedef struct Report {
        ConfigSeverity severity;
        char *file;
        unsigned line;
        char *message;
} Report;

typedef struct Reports {
        Report items[64];
        size_t n;
} Reports;

static void collect(void *userdata, ConfigSeverity severity, const char *file, unsigned line, const char *message) {
        Reports *r = userdata;

        ck_assert_ptr_nonnull(file);
        ck_assert_ptr_nonnull(message);
        ck_assert_uint_lt(r->n, ELEMENTSOF(r->items));
        r->items[r->n++] = (Report) {
                .severity = severity,
                .file = strdup(file),
                .line = line,
                .message = strdup(message),
        };
}

static void reports_done(Reports *r) {
        for (size_t i = 0; i < r->n; i++) {
                free(r->items[i].file);
                free(r->items[i].message);
        }
        r->n = 0;
}

static size_t count(const Reports *r, ConfigSeverity severity) {
        size_t n = 0;

        for (size_t i = 0; i < r->n; i++)
                n += r->items[i].severity == severity;
        return n;
}

static const Report *first(const Reports *r, ConfigSeverity severity) {
        for (size_t i = 0; i < r->n; i++)
                if (r->items[i].severity == severity)
                        return &r->items[i];
        ck_abort_msg("no report of severity %d", severity);
        return NULL;
}

static void dump(const Reports *r) {
        for (size_t i = 0; i < r->n; i++)
                fprintf(stderr, "  %s %s:%u: %s\n", r->items[i].severity == CONFIG_ERROR ? "error" : "warning",
                        r->items[i].file, r->items[i].line, r->items[i].message);
}

static void assert_prefix(const char *got, const char *want) {
        if (strncmp(got, want, strlen(want)) != 0)
                ck_abort_msg("message\n  \"%s\"\ndoes not start with\n  \"%s\"", got, want);
}

static void assert_settings(const Settings *got, const Settings *want) {
        ck_assert_int_eq(got->monitor_interval, want->monitor_interval);
        ck_assert_int_eq(got->sleep_msec, want->sleep_msec);
        ck_assert_int_eq(got->npages_boost, want->npages_boost);
        ck_assert_int_eq(got->npages_decay, want->npages_decay);
        ck_assert_int_eq(got->npages_min, want->npages_min);
        ck_assert_int_eq(got->npages_max, want->npages_max);
        ck_assert_int_eq(got->thres_coef, want->thres_coef);
        ck_assert_int_eq(got->thres_const, want->thres_const);
        ck_assert_int_eq(got->debug, want->debug);
        /* The loader stores an empty string as NULL. */
        ck_assert_pstr_eq(got->logfile, want->logfile && *want->logfile ? want->logfile : NULL);
        ck_assert_pstr_eq(got->guest_comm, want->guest_comm && *want->guest_comm ? want->guest_comm : NULL);
        ck_assert_pstr_eq(got->guest_cmdline, want->guest_cmdline && *want->guest_cmdline ? want->guest_cmdline : NULL);
        ck_assert_pstr_eq(got->libvirt_uri, want->libvirt_uri && *want->libvirt_uri ? want->libvirt_uri : NULL);
        ck_assert_int_eq(got->kvm_events, want->kvm_events);
        ck_assert_int_eq(got->event_settle_msec, want->event_settle_msec);
        ck_assert(settings_equal(got, want));
}

static void assert_defaults(const Settings *s) {
        Settings d;

        settings_init(&d);
        assert_settings(s, &d);
        settings_done(&d);
}

/* What a caller's running settings look like: a failed load must leave them exactly so. */
static char sentinel_logfile[] = "/sentinel/logfile";
static char sentinel_comm[] = "sentinel-comm";
static char sentinel_cmdline[] = "sentinel-cmdline";

static Settings sentinel(void) {
        return (Settings) {
                .monitor_interval = 111,
                .sleep_msec = 222,
                .npages_boost = 333,
                .npages_decay = -444,
                .npages_min = 555,
                .npages_max = 666,
                .thres_coef = 77,
                .thres_const = 888,
                .debug = true,
                .logfile = sentinel_logfile,
                .guest_comm = sentinel_comm,
                .guest_cmdline = sentinel_cmdline,
        };
}

static void assert_sentinel(const Settings *s) {
        Settings want = sentinel();

        assert_settings(s, &want);
        ck_assert_ptr_eq(s->logfile, sentinel_logfile);
        ck_assert_ptr_eq(s->guest_comm, sentinel_comm);
        ck_assert_ptr_eq(s->guest_cmdline, sentinel_cmdline);
}

static const char *fixtures(void) {
        return unit_fixtures();
}

static char *fixture(const char *rel) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", fixtures(), rel), 0);
        return p;
}

static char *read_text(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        ck_assert_msg(f, "cannot open %s", path);
        buf = malloc(CONFIG_FILE_SIZE_MAX + 1);
        ck_assert_ptr_nonnull(buf);
        n = fread(buf, 1, CONFIG_FILE_SIZE_MAX, f);
        buf[n] = '\0';
        return buf;
}

/* Turn every "# KEY=..." line into "KEY=...": how the shipped file says a setting is changed. */
static char *uncomment(const char *text, size_t *ret_n) {
        char *out = malloc(strlen(text) + 1), *o = out;
        size_t n = 0;

        ck_assert_ptr_nonnull(out);
        for (const char *p = text; *p;) {
                const char *nl = strchrnul(p, '\n');
                size_t k = strncmp(p, "# ", 2) == 0 ? strspn(p + 2, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") : 0;

                if (k > 0 && p[2 + k] == '=') {
                        p += 2;
                        n++;
                }
                memcpy(o, p, (size_t) (nl - p));
                o += nl - p;
                if (*nl)
                        *o++ = '\n';
                p = *nl ? nl + 1 : nl;
        }
        *o = '\0';
        *ret_n = n;
        return out;
}

static char *make_tmpdir(void) {
        const char *t = getenv("TMPDIR");
        char *d;

        ck_assert_int_ge(asprintf(&d, "%s/test-config-XXXXXX", t && *t ? t : "/tmp"), 0);
        ck_assert_ptr_nonnull(mkdtemp(d));
        return d;
}

static char *write_file(const char *dir, const char *name, const char *data, size_t size) {
        _cleanup_close_ int fd = -1;
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, data, size), (ssize_t) size);
        return p;
}

static void rm_rf(const char *dir) {
        ck_assert_int_eq(nftw(dir, unit_rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* ---- Settings basics ---- */

START_TEST(test_defaults) {
        Settings s;

        settings_init(&s);
        /* The original script's defaults, spelt out independently of config.c. */
        ck_assert_int_eq(s.monitor_interval, 60);
        ck_assert_int_eq(s.sleep_msec, 10);
        ck_assert_int_eq(s.npages_boost, 300);
        ck_assert_int_eq(s.npages_decay, -50);
        ck_assert_int_eq(s.npages_min, 64);
        ck_assert_int_eq(s.npages_max, 1250);
        ck_assert_int_eq(s.thres_coef, 20);
        ck_assert_int_eq(s.thres_const, 2048);
        ck_assert(!s.debug);
        ck_assert_ptr_null(s.logfile);
        ck_assert_str_eq(s.guest_comm, DEFAULT_GUEST_COMM);
        ck_assert_ptr_null(s.guest_cmdline);
        settings_done(&s);
}
END_TEST

START_TEST(test_empty_text) {
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load_string("", NAME, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);
}
END_TEST

START_TEST(test_done_twice) {
        Settings zero = {}, s, loaded;

        settings_done(&zero);
        settings_done(&zero);

        settings_init(&s);
        settings_done(&s);
        settings_done(&s);

        ck_assert_int_eq(config_load_string("LOGFILE=/var/log/x\nKSM_GUEST_COMM=a\nKSM_GUEST_CMDLINE=b\n", NAME,
                                            &loaded, NULL, NULL),
                         0);
        settings_done(&loaded);
        settings_done(&loaded);
        ck_assert_ptr_null(loaded.logfile);
        ck_assert_ptr_null(loaded.guest_comm);
}
END_TEST

START_TEST(test_copy) {
        Settings a, b, c, d;

        ck_assert_int_eq(config_load_string("KSM_NPAGES_MAX=2000\nDEBUG=1\nLOGFILE=/var/log/x\n"
                                            "KSM_GUEST_COMM='^qemu$'\nKSM_GUEST_CMDLINE='-enable-kvm'\n",
                                            NAME, &a, NULL, NULL),
                         0);
        ck_assert_int_eq(settings_copy(&a, &b), 0);
        assert_settings(&b, &a);
        ck_assert_ptr_ne(a.logfile, b.logfile);
        ck_assert_ptr_ne(a.guest_comm, b.guest_comm);
        ck_assert_ptr_ne(a.guest_cmdline, b.guest_cmdline);
        settings_done(&a);
        ck_assert_str_eq(b.logfile, "/var/log/x");
        ck_assert_str_eq(b.guest_comm, "^qemu$");
        ck_assert_str_eq(b.guest_cmdline, "-enable-kvm");
        ck_assert_int_eq(b.npages_max, 2000);
        settings_done(&b);

        /* The defaults copy, and both copies free, without trouble. */
        settings_init(&c);
        ck_assert_int_eq(settings_copy(&c, &d), 0);
        assert_defaults(&d);
        settings_done(&c);
        settings_done(&d);
        settings_done(&d);
}
END_TEST

START_TEST(test_equal) {
        Settings a, b;

        settings_init(&a);
        settings_init(&b);
        ck_assert(settings_equal(&a, &b));
        b.npages_max++;
        ck_assert(!settings_equal(&a, &b));
        b.npages_max--;
        b.guest_comm = (char *) "";
        a.guest_comm = NULL;
        ck_assert(settings_equal(&a, &b)); /* both mean off */
        b.guest_comm = (char *) "x";
        ck_assert(!settings_equal(&a, &b));
        b.guest_comm = NULL;
        b.debug = true;
        ck_assert(!settings_equal(&a, &b));
}
END_TEST

/* ---- accepted syntax and values ---- */

typedef struct Expect {
        const char *key;
        int64_t i;
        const char *s;
} Expect;

static void set_expected(Settings *s, const Expect *e) {
        if (!e->key)
                return;
        if (streq(e->key, "KSM_MONITOR_INTERVAL"))
                s->monitor_interval = e->i;
        else if (streq(e->key, "KSM_SLEEP_MSEC"))
                s->sleep_msec = e->i;
        else if (streq(e->key, "KSM_NPAGES_BOOST"))
                s->npages_boost = e->i;
        else if (streq(e->key, "KSM_NPAGES_DECAY"))
                s->npages_decay = e->i;
        else if (streq(e->key, "KSM_NPAGES_MIN"))
                s->npages_min = e->i;
        else if (streq(e->key, "KSM_NPAGES_MAX"))
                s->npages_max = e->i;
        else if (streq(e->key, "KSM_THRES_COEF"))
                s->thres_coef = e->i;
        else if (streq(e->key, "KSM_THRES_CONST"))
                s->thres_const = e->i;
        else if (streq(e->key, "DEBUG"))
                s->debug = e->i;
        else if (streq(e->key, "LOGFILE"))
                s->logfile = (char *) e->s;
        else if (streq(e->key, "KSM_GUEST_COMM"))
                s->guest_comm = (char *) e->s;
        else if (streq(e->key, "KSM_GUEST_CMDLINE"))
                s->guest_cmdline = (char *) e->s;
        else if (streq(e->key, "KSM_LIBVIRT_URI"))
                s->libvirt_uri = (char *) e->s;
        else if (streq(e->key, "KSM_KVM_EVENTS"))
                s->kvm_events = e->i;
        else if (streq(e->key, "KSM_EVENT_SETTLE_MSEC"))
                s->event_settle_msec = e->i;
        else if (streq(e->key, "KSM_POLICY"))
                s->policy = e->i;
        else if (streq(e->key, "KSM_ADAPTIVE_MAX_RATE"))
                s->adaptive_max_rate = e->i;
        else if (streq(e->key, "KSM_ADAPTIVE_MIN_RATE"))
                s->adaptive_min_rate = e->i;
        else if (streq(e->key, "KSM_ADAPTIVE_MAX_CPU"))
                s->adaptive_max_cpu = e->i;
        else if (streq(e->key, "KSM_FREE_MEMORY"))
                s->free_source = e->i;
        else if (streq(e->key, "KSM_COMMITTED"))
                s->committed_source = e->i;
        else if (streq(e->key, "KSM_CPU_BUDGET"))
                s->cpu_budget = e->i;
        else if (streq(e->key, "KSM_STOP_MODE"))
                s->stop_mode = e->i;
        else if (streq(e->key, "KSM_METRICS_FILE"))
                s->metrics_file = (char *) e->s;
        else if (streq(e->key, "KSM_ADVISOR"))
                s->advisor_mode = e->i;
        else if (streq(e->key, "KSM_ADVISOR_MAX_CPU"))
                s->advisor_max_cpu = e->i;
        else if (streq(e->key, "KSM_ADVISOR_TARGET_SCAN_TIME"))
                s->advisor_target_scan_time = e->i;
        else if (streq(e->key, "KSM_SMART_SCAN"))
                s->smart_scan = e->i;
        else if (streq(e->key, "KSM_MERGE_ACROSS_NODES"))
                s->merge_across_nodes = e->i;
        else if (streq(e->key, "KSM_MAX_PAGE_SHARING"))
                s->max_page_sharing = e->i;
        else
                ck_abort_msg("unknown key %s in the test table", e->key);
}

#define MAX2000                                                                                                        \
        { "KSM_NPAGES_MAX", 2000 }

static const struct {
        const char *text;
        Expect e[3];
} good[] = {
        /* How the value is written. */
        { "KSM_NPAGES_MAX=2000", { MAX2000 } },
        { "KSM_NPAGES_MAX=2000\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=\"2000\"\n", { MAX2000 } },
        { "KSM_NPAGES_MAX='2000'\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=\"20\"'0'0\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=2\\000\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=2000 # the most pages\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=2000\t#tab, then comment\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=\"2000\" # comment with 'quotes' and $(x) and ;\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=2000    \n", { MAX2000 } },
        { "KSM_NPAGES_MAX = 2000\n", { MAX2000 } },
        { "KSM_NPAGES_MAX= 2000\n", { MAX2000 } },
        { "KSM_NPAGES_MAX =2000\n", { MAX2000 } },
        { "KSM_NPAGES_MAX\t=\t'2000'\n", { MAX2000 } },
        { "export KSM_NPAGES_MAX=2000\n", { MAX2000 } },
        { "export\tKSM_NPAGES_MAX=\"2000\"\n", { MAX2000 } },
        { "  KSM_NPAGES_MAX=2000\n", { MAX2000 } },
        { "\tKSM_NPAGES_MAX=2000\n", { MAX2000 } },
        { "   export   KSM_NPAGES_MAX=2000   # indented\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=2000\r\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=\"2000\" # comment\r\n", { MAX2000 } },
        { "\xef\xbb\xbfKSM_NPAGES_MAX=2000\n", { MAX2000 } }, /* UTF-8 byte order mark */
        { "# comment\n\n   \n\t\n#KSM_NPAGES_MAX=5\n  # KSM_NPAGES_MAX=6\nKSM_NPAGES_MAX=2000\n# end\n", { MAX2000 } },
        { "KSM_NPAGES_MAX=5\nKSM_NPAGES_MAX=2000\n", { MAX2000 } }, /* the last one wins */
        /* Indentation is not an INI multi-line continuation: both keys are set. */
        { "KSM_NPAGES_MIN=10\n  KSM_NPAGES_MAX=2000\n", { { "KSM_NPAGES_MIN", 10 }, MAX2000 } },
        { "KSM_NPAGES_MIN=10\n    KSM_NPAGES_MAX=2000\n\tKSM_THRES_COEF=30\n",
          { { "KSM_NPAGES_MIN", 10 }, MAX2000, { "KSM_THRES_COEF", 30 } } },
        { "KSM_NPAGES_MIN=10\r\nKSM_NPAGES_MAX='2000'\r\n\r\n# Windows\r\nKSM_THRES_COEF=30\r\n",
          { { "KSM_NPAGES_MIN", 10 }, MAX2000, { "KSM_THRES_COEF", 30 } } },
        /* Every key, at the ends of its range. */
        { "KSM_LIBVIRT_URI='test:///default'", { { "KSM_LIBVIRT_URI", 0, "test:///default" } } },
        { "KSM_LIBVIRT_URI=qemu+unix:///system?socket=/run/x",
          { { "KSM_LIBVIRT_URI", 0, "qemu+unix:///system?socket=/run/x" } } },
        { "KSM_LIBVIRT_URI=", { { "KSM_LIBVIRT_URI", 0, NULL } } },
        { "KSM_KVM_EVENTS=0", { { "KSM_KVM_EVENTS", 0 } } },
        { "KSM_KVM_EVENTS=no", { { "KSM_KVM_EVENTS", 0 } } },
        { "KSM_KVM_EVENTS=Off", { { "KSM_KVM_EVENTS", 0 } } },
        { "KSM_KVM_EVENTS=false\nKSM_KVM_EVENTS=yes", { { "KSM_KVM_EVENTS", 1 } } },
        { "KSM_EVENT_SETTLE_MSEC=0", { { "KSM_EVENT_SETTLE_MSEC", 0 } } },
        { "KSM_FREE_MEMORY=available", { { "KSM_FREE_MEMORY", FREE_AVAILABLE } } },
        { "KSM_POLICY=adaptive\nKSM_ADAPTIVE_MAX_RATE=2000000",
          { { "KSM_POLICY", POLICY_ADAPTIVE }, { "KSM_ADAPTIVE_MAX_RATE", 2000000 } } },
        { "KSM_ADAPTIVE_MIN_RATE=100\nKSM_ADAPTIVE_MAX_CPU=0",
          { { "KSM_ADAPTIVE_MIN_RATE", 100 }, { "KSM_ADAPTIVE_MAX_CPU", 0 } } },
        { "KSM_FREE_MEMORY=available\nKSM_FREE_MEMORY=", { { "KSM_FREE_MEMORY", FREE_CLASSIC } } },
        { "KSM_COMMITTED=pss", { { "KSM_COMMITTED", COMMITTED_PSS } } },
        { "KSM_COMMITTED='rss-minus-merged'", { { "KSM_COMMITTED", COMMITTED_RSS_MINUS_MERGED } } },
        { "KSM_CPU_BUDGET=100", { { "KSM_CPU_BUDGET", 100 } } },
        { "KSM_STOP_MODE=unmerge", { { "KSM_STOP_MODE", STOP_UNMERGE } } },
        { "KSM_METRICS_FILE=/var/lib/prometheus/node-exporter/ksmtuned.prom",
          { { "KSM_METRICS_FILE", 0, "/var/lib/prometheus/node-exporter/ksmtuned.prom" } } },
        { "KSM_ADVISOR=scan-time", { { "KSM_ADVISOR", ADVISOR_SCAN_TIME } } },
        { "KSM_ADVISOR=none", { { "KSM_ADVISOR", ADVISOR_NONE } } },
        { "KSM_ADVISOR=none\nKSM_ADVISOR=", { { "KSM_ADVISOR", -1 } } },
        { "KSM_ADVISOR_MAX_CPU=70\nKSM_ADVISOR_TARGET_SCAN_TIME=2",
          { { "KSM_ADVISOR_MAX_CPU", 70 }, { "KSM_ADVISOR_TARGET_SCAN_TIME", 2 } } },
        { "KSM_ADVISOR_MAX_CPU=70\nKSM_ADVISOR_MAX_CPU=", { { "KSM_ADVISOR_MAX_CPU", -1 } } },
        { "KSM_SMART_SCAN=no\nKSM_MERGE_ACROSS_NODES=1", { { "KSM_SMART_SCAN", 0 }, { "KSM_MERGE_ACROSS_NODES", 1 } } },
        { "KSM_SMART_SCAN=", { { "KSM_SMART_SCAN", -1 } } },
        { "KSM_MAX_PAGE_SHARING=2", { { "KSM_MAX_PAGE_SHARING", 2 } } },
        { "KSM_EVENT_SETTLE_MSEC=60000", { { "KSM_EVENT_SETTLE_MSEC", 60000 } } },
        { "KSM_MONITOR_INTERVAL=1", { { "KSM_MONITOR_INTERVAL", 1 } } },
        { "KSM_MONITOR_INTERVAL=31536000", { { "KSM_MONITOR_INTERVAL", 31536000 } } },
        { "KSM_SLEEP_MSEC=0", { { "KSM_SLEEP_MSEC", 0 } } },
        { "KSM_SLEEP_MSEC=1000000", { { "KSM_SLEEP_MSEC", 1000000 } } },
        { "KSM_NPAGES_BOOST=-1000000000", { { "KSM_NPAGES_BOOST", -1000000000 } } },
        { "KSM_NPAGES_BOOST=1000000000", { { "KSM_NPAGES_BOOST", 1000000000 } } },
        { "KSM_NPAGES_DECAY=-1000000000", { { "KSM_NPAGES_DECAY", -1000000000 } } },
        { "KSM_NPAGES_DECAY=0", { { "KSM_NPAGES_DECAY", 0 } } },
        { "KSM_NPAGES_DECAY=-0", { { "KSM_NPAGES_DECAY", 0 } } },
        { "KSM_NPAGES_DECAY=1000000000", { { "KSM_NPAGES_DECAY", 1000000000 } } },
        { "KSM_NPAGES_MIN=0", { { "KSM_NPAGES_MIN", 0 } } },
        { "KSM_NPAGES_MIN=1250", { { "KSM_NPAGES_MIN", 1250 } } }, /* MIN == MAX is fine */
        { "KSM_NPAGES_MAX=1000000000", { { "KSM_NPAGES_MAX", 1000000000 } } },
        { "KSM_NPAGES_MIN=0\nKSM_NPAGES_MAX=0", { { "KSM_NPAGES_MIN", 0 }, { "KSM_NPAGES_MAX", 0 } } },
        { "KSM_THRES_COEF=0", { { "KSM_THRES_COEF", 0 } } },
        { "KSM_THRES_COEF=100", { { "KSM_THRES_COEF", 100 } } },
        { "KSM_THRES_CONST=0", { { "KSM_THRES_CONST", 0 } } },
        { "KSM_THRES_CONST=1099511627776", { { "KSM_THRES_CONST", INT64_C(1099511627776) } } },
        { "DEBUG=1", { { "DEBUG", 1 } } },
        { "DEBUG=yes", { { "DEBUG", 1 } } },
        { "DEBUG=' '", { { "DEBUG", 1 } } }, /* [ -n " " ] is true */
        { "DEBUG=", { { "DEBUG", 0 } } },
        { "DEBUG=\"\"", { { "DEBUG", 0 } } },
        { "DEBUG=1\nDEBUG=", { { "DEBUG", 0 } } },
        { "DEBUG= # off", { { "DEBUG", 0 } } },
        { "LOGFILE=/var/log/ksmtuned", { { "LOGFILE", 0, "/var/log/ksmtuned" } } },
        { "LOGFILE='/var/log/ksm tuned.log'", { { "LOGFILE", 0, "/var/log/ksm tuned.log" } } },
        { "LOGFILE=/var/log/ksm\\ tuned.log", { { "LOGFILE", 0, "/var/log/ksm tuned.log" } } },
        { "LOGFILE=/var/log/a#b", { { "LOGFILE", 0, "/var/log/a#b" } } }, /* '#' inside a word is no comment */
        { "LOGFILE=\"/var/log/a\\\"b\"", { { "LOGFILE", 0, "/var/log/a\"b" } } },
        { "LOGFILE=\"/var/log/a\\\\b\\x\"", { { "LOGFILE", 0, "/var/log/a\\b\\x" } } },
        { "LOGFILE='/var/log/$(x)`y`${z}'", { { "LOGFILE", 0, "/var/log/$(x)`y`${z}" } } },
        { "LOGFILE=\"/var/log/\\$x\"", { { "LOGFILE", 0, "/var/log/$x" } } },
        { "LOGFILE=/var/log/{a,b}*?[c]", { { "LOGFILE", 0, "/var/log/{a,b}*?[c]" } } },
        { "LOGFILE=/var/log/x\nLOGFILE=", { { "LOGFILE", 0, NULL } } },
        { "LOGFILE=/var/log/x\nLOGFILE=''", { { "LOGFILE", 0, NULL } } },
        { "KSM_GUEST_COMM='^qemu-kvm$'", { { "KSM_GUEST_COMM", 0, "^qemu-kvm$" } } },
        { "KSM_GUEST_COMM=\"^kvm$\"", { { "KSM_GUEST_COMM", 0, "^kvm$" } } },
        { "KSM_GUEST_COMM=^kvm$", { { "KSM_GUEST_COMM", 0, "^kvm$" } } },
        { "KSM_GUEST_COMM=\"^(kvm$|qemu$)\"", { { "KSM_GUEST_COMM", 0, "^(kvm$|qemu$)" } } },
        { "KSM_GUEST_COMM='" DEFAULT_GUEST_COMM "'", { { "KSM_GUEST_COMM", 0, DEFAULT_GUEST_COMM } } },
        { "KSM_GUEST_COMM=^qemu:.{1,11}$", { { "KSM_GUEST_COMM", 0, "^qemu:.{1,11}$" } } },
        { "KSM_GUEST_COMM=\nKSM_GUEST_CMDLINE='^qemu-system.*-enable-kvm'",
          { { "KSM_GUEST_COMM", 0, NULL }, { "KSM_GUEST_CMDLINE", 0, "^qemu-system.*-enable-kvm" } } },
        { "KSM_GUEST_CMDLINE='qemu.* -accel kvm'", { { "KSM_GUEST_CMDLINE", 0, "qemu.* -accel kvm" } } },
        /* An INI reader would cut " ;..." off as a comment; inside quotes it is part of the value. */
        { "KSM_GUEST_CMDLINE='a ;b'", { { "KSM_GUEST_CMDLINE", 0, "a ;b" } } },
        { "KSM_GUEST_CMDLINE=\"x # y\"", { { "KSM_GUEST_CMDLINE", 0, "x # y" } } },
        /* A long comment line is no problem, and its tail is not read as an assignment. */
        { "# xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "KSM_NPAGES_MAX=5\nKSM_NPAGES_MAX=2000\n",
          { MAX2000 } },
};

START_TEST(test_good) {
        Settings s = sentinel(), want;
        Reports r = {};
        int ret;

        ret = config_load_string(good[_i].text, NAME, &s, collect, &r);
        if (ret != 0 || r.n != 0)
                dump(&r);
        ck_assert_int_eq(ret, 0);
        ck_assert_uint_eq(r.n, 0);
        settings_init(&want);
        for (size_t j = 0; j < ELEMENTSOF(good[_i].e); j++)
                set_expected(&want, &good[_i].e[j]);
        assert_settings(&s, &want);
        settings_done(&s);
        reports_done(&r);
}
END_TEST

/* ---- values that are loaded with a warning ---- */

static const struct {
        const char *text;
        unsigned line;
        const char *message;
        Expect e;
} warn[] = {
        { "KSM_NPAGE_MAX=2000", 1, "unknown key KSM_NPAGE_MAX, ignoring (did you mean KSM_NPAGES_MAX?)" },
        { "# c\nksm_npages_max=2000", 2, "unknown key ksm_npages_max, ignoring (did you mean KSM_NPAGES_MAX?)" },
        { "KSM_THRESH_COEF=5", 1, "unknown key KSM_THRESH_COEF, ignoring (did you mean KSM_THRES_COEF?)" },
        { "\n\nFOO=bar", 3, "unknown key FOO, ignoring" },
        { "FOO=$(reboot)", 1, "unknown key FOO, ignoring" }, /* never executed, so harmless */
        { "PIDFILE=/var/run/ksmtune.pid", 1,
          "PIDFILE is ignored: ksmtuned runs as a systemd service and writes no pid file" },
        { "DEBUG=0",
          1,
          "DEBUG=0: any non-empty value turns DEBUG on, as in the original; "
          "to turn it off, write DEBUG= or remove the line",
          { "DEBUG", 1 } },
        { "DEBUG='no'", 1, "DEBUG='no': any non-empty value turns DEBUG on", { "DEBUG", 1 } },
        { "DEBUG=false", 1, "DEBUG=false: any non-empty value turns DEBUG on", { "DEBUG", 1 } },
        /* The script's ${KSM_NPAGES_MAX:-1250}: empty means the default. */
        { "KSM_NPAGES_MAX=2000\nKSM_NPAGES_MAX=",
          2,
          "KSM_NPAGES_MAX=: empty value, using the default 1250",
          { "KSM_NPAGES_MAX", 1250 } },
        { "KSM_MONITOR_INTERVAL=\"\" # empty",
          1,
          "KSM_MONITOR_INTERVAL=\"\": empty value, using the default 60",
          { "KSM_MONITOR_INTERVAL", 60 } },
        { "KSM_NPAGES_DECAY=''",
          1,
          "KSM_NPAGES_DECAY='': empty value, using the default -50",
          { "KSM_NPAGES_DECAY", -50 } },
        { "KSM_GUEST_COMM=",
          1,
          "KSM_GUEST_COMM and KSM_GUEST_CMDLINE are both empty: no process counts as a guest",
          { "KSM_GUEST_COMM", 0, NULL } },
        { "KSM_GUEST_COMM=''\nKSM_GUEST_CMDLINE=",
          2,
          "KSM_GUEST_COMM and KSM_GUEST_CMDLINE are both empty",
          { "KSM_GUEST_COMM", 0, NULL } },
};

START_TEST(test_warning) {
        Settings s = sentinel(), want;
        Reports r = {};
        const Report *w;
        int ret;

        ret = config_load_string(warn[_i].text, NAME, &s, collect, &r);
        if (ret != 0 || r.n != 1)
                dump(&r);
        ck_assert_int_eq(ret, 0);
        ck_assert_uint_eq(r.n, 1);
        w = first(&r, CONFIG_WARNING);
        ck_assert_str_eq(w->file, NAME);
        ck_assert_uint_eq(w->line, warn[_i].line);
        assert_prefix(w->message, warn[_i].message);
        settings_init(&want);
        set_expected(&want, &warn[_i].e);
        assert_settings(&s, &want);
        settings_done(&s);
        reports_done(&r);
}
END_TEST

/* ---- errors: each reported with its line, the load fails, the caller's settings stay ---- */

#define EXEC " (this file is read, not executed)"

static const struct {
        const char *text;
        unsigned line;
        const char *message; /* the start of the message */
} bad[] = {
        /* Not an integer. */
        { "KSM_NPAGES_MAX=12abc", 1, "KSM_NPAGES_MAX=12abc: not an integer" },
        { "# comment\n\nKSM_NPAGES_MAX=\"12abc\"\n", 3, "KSM_NPAGES_MAX=\"12abc\": not an integer" },
        { "KSM_NPAGES_MAX=1.5", 1, "KSM_NPAGES_MAX=1.5: not an integer" },
        { "KSM_NPAGES_MAX=0x10", 1, "KSM_NPAGES_MAX=0x10: not an integer" },
        { "KSM_NPAGES_MAX=+5", 1, "KSM_NPAGES_MAX=+5: not an integer" },
        { "KSM_NPAGES_MAX=-", 1, "KSM_NPAGES_MAX=-: not an integer" },
        { "KSM_NPAGES_MAX=' 5'", 1, "KSM_NPAGES_MAX=' 5': not an integer" },
        { "KSM_NPAGES_MAX=1e3", 1, "KSM_NPAGES_MAX=1e3: not an integer" },
        { "KSM_NPAGES_MAX=#5", 1, "KSM_NPAGES_MAX=#5: not an integer" }, /* as in bash: "#5" */
        { "KSM_NPAGES_MAX=\"2000\"# no blank, so no comment", 1,
          "KSM_NPAGES_MAX=\"2000\"# no blank, so no comment: text after the value would be run as a command" },
        { "KSM_KVM_EVENTS=maybe", 1, "KSM_KVM_EVENTS=maybe: not a boolean: write 1 or 0" },
        { "KSM_KVM_EVENTS=2", 1, "KSM_KVM_EVENTS=2: not a boolean: write 1 or 0" },
        { "KSM_LIBVIRT_URI=$URI", 1, "KSM_LIBVIRT_URI=$URI: " },
        { "KSM_EVENT_SETTLE_MSEC=60001", 1, "KSM_EVENT_SETTLE_MSEC=60001: out of range (0..60000 ms)" },
        { "KSM_ADAPTIVE_MIN_RATE=5000\nKSM_ADAPTIVE_MAX_RATE=4000\n", 2,
          "KSM_ADAPTIVE_MIN_RATE=5000 (set at test.conf:1) is greater than KSM_ADAPTIVE_MAX_RATE=4000 (set at "
          "test.conf:2)" },
        { "KSM_POLICY=smart", 1, "KSM_POLICY=smart: not one of: classic, adaptive" },
        { "KSM_ADAPTIVE_MAX_CPU=101", 1, "KSM_ADAPTIVE_MAX_CPU=101: out of range (0..100 percent)" },
        { "KSM_FREE_MEMORY=MemAvailable", 1, "KSM_FREE_MEMORY=MemAvailable: not one of: classic, available" },
        { "KSM_COMMITTED=PSS", 1, "KSM_COMMITTED=PSS: not one of: rss, pss, rss-minus-merged" },
        { "KSM_STOP_MODE=2", 1, "KSM_STOP_MODE=2: not one of: stop, unmerge" },
        { "KSM_ADVISOR=scan_time", 1, "KSM_ADVISOR=scan_time: not one of: none, scan-time" },
        { "KSM_CPU_BUDGET=101", 1, "KSM_CPU_BUDGET=101: out of range (0..100 percent)" },
        { "KSM_ADVISOR_MAX_CPU=0", 1, "KSM_ADVISOR_MAX_CPU=0: out of range (1..100 percent)" },
        { "KSM_ADVISOR_TARGET_SCAN_TIME=1", 1, "KSM_ADVISOR_TARGET_SCAN_TIME=1: out of range (2..86400 seconds)" },
        { "KSM_MAX_PAGE_SHARING=1", 1, "KSM_MAX_PAGE_SHARING=1: out of range (2..1000000000 sharers)" },
        { "KSM_SMART_SCAN=maybe", 1, "KSM_SMART_SCAN=maybe: not a boolean: write 1 or 0" },
        { "KSM_METRICS_FILE=ksmtuned.prom", 1, "KSM_METRICS_FILE=ksmtuned.prom: not an absolute path" },
        /* Out of range. */
        { "KSM_NPAGES_MAX=2000 # c\nKSM_THRES_COEF=101", 2, "KSM_THRES_COEF=101: out of range (0..100 percent)" },
        { "KSM_THRES_COEF=-1", 1, "KSM_THRES_COEF=-1: out of range (0..100 percent)" },
        { "KSM_MONITOR_INTERVAL=0", 1, "KSM_MONITOR_INTERVAL=0: out of range (1..31536000 seconds)" },
        { "KSM_MONITOR_INTERVAL=-5", 1, "KSM_MONITOR_INTERVAL=-5: out of range (1..31536000 seconds)" },
        { "KSM_MONITOR_INTERVAL=31536001", 1, "KSM_MONITOR_INTERVAL=31536001: out of range (1..31536000 seconds)" },
        { "KSM_SLEEP_MSEC=1000001", 1, "KSM_SLEEP_MSEC=1000001: out of range (0..1000000 ms)" },
        { "KSM_NPAGES_BOOST=1000000001", 1,
          "KSM_NPAGES_BOOST=1000000001: out of range (-1000000000..1000000000 pages)" },
        { "KSM_NPAGES_DECAY=-1000000001", 1,
          "KSM_NPAGES_DECAY=-1000000001: out of range (-1000000000..1000000000 pages)" },
        { "KSM_NPAGES_MAX=-1", 1, "KSM_NPAGES_MAX=-1: out of range (0..1000000000 pages)" },
        { "KSM_NPAGES_MAX=99999999999999999999999", 1,
          "KSM_NPAGES_MAX=99999999999999999999999: out of range (0..1000000000 pages)" },
        { "KSM_NPAGES_MAX=-99999999999999999999999", 1,
          "KSM_NPAGES_MAX=-99999999999999999999999: out of range (0..1000000000 pages)" },
        { "KSM_THRES_CONST=1099511627777", 1, "KSM_THRES_CONST=1099511627777: out of range (0..1099511627776 kB)" },
        /* Leading zeros: octal in bash arithmetic, decimal in test(1). */
        { "KSM_THRES_COEF=010", 1,
          "KSM_THRES_COEF=010: leading zero: bash arithmetic read 010 as octal 8; write 8 or 10" },
        { "KSM_THRES_COEF=09", 1,
          "KSM_THRES_COEF=09: leading zero: bash arithmetic rejected 09 as an invalid octal number; write 9" },
        { "KSM_NPAGES_DECAY=-050", 1,
          "KSM_NPAGES_DECAY=-050: leading zero: bash arithmetic read -050 as octal -40; write -40 or -50" },
        { "KSM_THRES_COEF=00", 1, "KSM_THRES_COEF=00: leading zero (octal in bash arithmetic); write 0" },
        { "KSM_THRES_COEF='07'", 1, "KSM_THRES_COEF='07': leading zero (octal in bash arithmetic); write 7" },
        /* MIN above MAX, reported where the later of the two was set. */
        { "KSM_NPAGES_MIN=2000", 1,
          "KSM_NPAGES_MIN=2000 (set at test.conf:1) is greater than KSM_NPAGES_MAX=1250 (the default)" },
        { "# c\nKSM_NPAGES_MAX=10\n", 2,
          "KSM_NPAGES_MIN=64 (the default) is greater than KSM_NPAGES_MAX=10 (set at test.conf:2)" },
        { "KSM_NPAGES_MAX=100\nKSM_NPAGES_MIN=200\n", 2,
          "KSM_NPAGES_MIN=200 (set at test.conf:2) is greater than KSM_NPAGES_MAX=100 (set at test.conf:1)" },
        { "KSM_NPAGES_MIN=200\nKSM_NPAGES_MAX=100\n", 2,
          "KSM_NPAGES_MIN=200 (set at test.conf:1) is greater than KSM_NPAGES_MAX=100 (set at test.conf:2)" },
        /* What would need a shell. */
        { "KSM_NPAGES_MAX=$(reboot)", 1, "KSM_NPAGES_MAX=$(reboot): command substitution $(...) needs a shell" EXEC },
        { "KSM_NPAGES_MAX=\"$(reboot)\"", 1,
          "KSM_NPAGES_MAX=\"$(reboot)\": command substitution $(...) needs a shell" },
        { "KSM_NPAGES_MAX=`reboot`", 1, "KSM_NPAGES_MAX=`reboot`: command substitution `...` needs a shell" EXEC },
        { "KSM_NPAGES_MAX=\"`reboot`\"", 1, "KSM_NPAGES_MAX=\"`reboot`\": command substitution `...` needs a shell" },
        { "KSM_NPAGES_MAX=${X}", 1, "KSM_NPAGES_MAX=${X}: variable expansion needs a shell" EXEC },
        { "KSM_NPAGES_MAX=$X", 1, "KSM_NPAGES_MAX=$X: variable expansion needs a shell" },
        { "KSM_NPAGES_MAX=\"$X\"", 1, "KSM_NPAGES_MAX=\"$X\": variable expansion needs a shell" },
        { "KSM_NPAGES_MAX=$1", 1, "KSM_NPAGES_MAX=$1: variable expansion needs a shell" },
        { "KSM_NPAGES_MAX=$$", 1, "KSM_NPAGES_MAX=$$: variable expansion needs a shell" },
        { "LOGFILE=$HOME/ksmtuned.log", 1, "LOGFILE=$HOME/ksmtuned.log: variable expansion needs a shell" },
        { "LOGFILE=\"${LOGDIR}/x\"", 1, "LOGFILE=\"${LOGDIR}/x\": variable expansion needs a shell" },
        { "KSM_NPAGES_MAX=$[1+1]", 1, "KSM_NPAGES_MAX=$[1+1]: arithmetic expansion $[...] needs a shell" },
        { "KSM_NPAGES_MAX=$((1+1))", 1, "KSM_NPAGES_MAX=$((1+1)): arithmetic expansion $((...)) needs a shell" },
        { "KSM_NPAGES_MAX=$'2000'", 1, "KSM_NPAGES_MAX=$'2000': $'...' and $\"...\" quoting need a shell" },
        { "KSM_NPAGES_MAX=2000; reboot", 1,
          "KSM_NPAGES_MAX=2000; reboot: an unquoted ';', '&' or '|' would start another command" EXEC },
        { "KSM_NPAGES_MAX=2000 ; reboot", 1, "KSM_NPAGES_MAX=2000 ; reboot: an unquoted ';', '&' or '|'" },
        { "KSM_NPAGES_MAX=2000 && reboot", 1, "KSM_NPAGES_MAX=2000 && reboot: an unquoted ';', '&' or '|'" },
        { "KSM_NPAGES_MAX=2000|cat", 1, "KSM_NPAGES_MAX=2000|cat: an unquoted ';', '&' or '|'" },
        { "KSM_NPAGES_MAX=2000 &", 1, "KSM_NPAGES_MAX=2000 &: an unquoted ';', '&' or '|'" },
        { "KSM_NPAGES_MAX=2000 >/tmp/x", 1, "KSM_NPAGES_MAX=2000 >/tmp/x: redirection needs a shell" EXEC },
        { "KSM_NPAGES_MAX=2000</dev/null", 1, "KSM_NPAGES_MAX=2000</dev/null: redirection needs a shell" },
        { "KSM_NPAGES_MAX=2000 reboot", 1,
          "KSM_NPAGES_MAX=2000 reboot: text after the value would be run as a command" EXEC
          "; quote the value, or start a comment with ' #'" },
        { "KSM_NPAGES_MAX=2000 KSM_NPAGES_MIN=100", 1,
          "KSM_NPAGES_MAX=2000 KSM_NPAGES_MIN=100: only one assignment per line is supported" },
        { "export KSM_NPAGES_MAX=2000 KSM_NPAGES_MIN=100", 1,
          "KSM_NPAGES_MAX=2000 KSM_NPAGES_MIN=100: only one assignment per line is supported" },
        { "KSM_NPAGES_MAX=2000 \\", 1,
          "KSM_NPAGES_MAX=2000 \\: a backslash at the end of a line would continue it; a value cannot span lines" },
        { "KSM_NPAGES_MAX=2000\\", 1,
          "KSM_NPAGES_MAX=2000\\: a backslash at the end of a line would continue it; a value cannot span lines" },
        { "KSM_NPAGES_MAX='2000", 1, "KSM_NPAGES_MAX='2000: unbalanced single quote (a value cannot span lines)" },
        { "KSM_NPAGES_MAX=\"2000", 1, "KSM_NPAGES_MAX=\"2000: unbalanced double quote (a value cannot span lines)" },
        { "KSM_NPAGES_MAX=\"20'00   \r\n", 1, "KSM_NPAGES_MAX=\"20'00: unbalanced double quote" },
        { "KSM_NPAGES_MAX=2000'", 1, "KSM_NPAGES_MAX=2000': unbalanced single quote" },
        { "LOGFILE=~/ksmtuned.log", 1, "LOGFILE=~/ksmtuned.log: tilde expansion needs a shell; write the full path" },
        { "LOGFILE=/var/log/x:~/y", 1, "LOGFILE=/var/log/x:~/y: tilde expansion needs a shell" },
        { "KSM_GUEST_COMM=^(kvm)$", 1,
          "KSM_GUEST_COMM=^(kvm)$: an unquoted '(' or ')' is a shell syntax error; quote the value" },
        /* Invalid strings. */
        { "KSM_GUEST_COMM='('", 1, "KSM_GUEST_COMM='(': invalid regular expression: " },
        { "KSM_GUEST_CMDLINE=\"[a\"", 1, "KSM_GUEST_CMDLINE=\"[a\": invalid regular expression: " },
        { "KSM_GUEST_CMDLINE='a{2,1}'", 1, "KSM_GUEST_CMDLINE='a{2,1}': invalid regular expression: " },
        { "LOGFILE=var/log/ksmtuned", 1, "LOGFILE=var/log/ksmtuned: not an absolute path" },
        { "LOGFILE='ksmtuned.log' # relative", 1, "LOGFILE='ksmtuned.log': not an absolute path" },
        /* Not an assignment. */
        { "garbage", 1, "not a KEY=VALUE assignment: garbage" },
        { "KSM_NPAGES_MAX=2000\n[ksmtuned]\n", 2, "not a KEY=VALUE assignment: [ksmtuned]" },
        { "KSM_NPAGES_MAX+=5", 1, "not a KEY=VALUE assignment: KSM_NPAGES_MAX+=5" },
        { "export", 1, "not a KEY=VALUE assignment: export" },
        { "export KSM_NPAGES_MAX", 1, "not a KEY=VALUE assignment: export KSM_NPAGES_MAX" },
        { "  . /etc/other.conf", 1, "not a KEY=VALUE assignment: . /etc/other.conf" },
        { "source /etc/other.conf", 1, "not a KEY=VALUE assignment: source /etc/other.conf" },
        { "if true; then KSM_NPAGES_MAX=5; fi", 1, "not a KEY=VALUE assignment: if true; then KSM_NPAGES_MAX=5; fi" },
        { "; an ini comment", 1, "not a KEY=VALUE assignment: ; an ini comment" },
        { "1KSM=5", 1, "not a KEY=VALUE assignment: 1KSM=5" },
        { "KSM NPAGES=5", 1, "not a KEY=VALUE assignment: KSM NPAGES=5" },
        { "KSM_NPAGES_MAX: 2000", 1, "not a KEY=VALUE assignment: KSM_NPAGES_MAX: 2000" },
        { "reboot\x1b[2J", 1, "not a KEY=VALUE assignment: reboot\\x1b[2J" },
        { "x xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 1,
          "not a KEY=VALUE assignment: x xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx..." },
        /* Longer than the 198 characters earlier versions took: an error, not two lines. */
        { "# c\nKSM_NPAGES_MAX=2000 # xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "\n",
          2, "line too long (" },
};

START_TEST(test_bad) {
        Settings s = sentinel();
        Reports r = {};
        const Report *e;
        int ret;

        ret = config_load_string(bad[_i].text, NAME, &s, collect, &r);
        if (ret != -EINVAL || count(&r, CONFIG_ERROR) != 1)
                dump(&r);
        ck_assert_int_eq(ret, -EINVAL);
        ck_assert_uint_eq(count(&r, CONFIG_ERROR), 1);
        e = first(&r, CONFIG_ERROR);
        ck_assert_str_eq(e->file, NAME);
        ck_assert_uint_eq(e->line, bad[_i].line);
        assert_prefix(e->message, bad[_i].message);
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_every_error_reported) {
        static const char text[] = "# A file with several mistakes: each is reported, with its line.\n"
                                   "KSM_NPAGES_MAX=abc\n"
                                   "KSM_THRES_COEF=200\n"
                                   "\n"
                                   "KSM_NPAGE_MIN=5\n"
                                   "  KSM_MONITOR_INTERVAL=$(date +%s)\n"
                                   "KSM_SLEEP_MSEC=20\n"
                                   "LOGFILE=relative\n"
                                   "KSM_NPAGES_MIN=2000\n";
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load_string(text, NAME, &s, collect, &r), -EINVAL);
        if (r.n != 6)
                dump(&r);
        ck_assert_uint_eq(r.n, 6);
        ck_assert_uint_eq(r.items[0].line, 2);
        ck_assert_str_eq(r.items[0].message, "KSM_NPAGES_MAX=abc: not an integer");
        ck_assert_uint_eq(r.items[1].line, 3);
        ck_assert_str_eq(r.items[1].message, "KSM_THRES_COEF=200: out of range (0..100 percent)");
        ck_assert_int_eq(r.items[2].severity, CONFIG_WARNING);
        ck_assert_uint_eq(r.items[2].line, 5);
        ck_assert_uint_eq(r.items[3].line, 6);
        assert_prefix(r.items[3].message, "KSM_MONITOR_INTERVAL=$(date +%s): command substitution");
        ck_assert_uint_eq(r.items[4].line, 8);
        ck_assert_str_eq(r.items[4].message, "LOGFILE=relative: not an absolute path");
        /* The bad KSM_NPAGES_MAX kept its default, which KSM_NPAGES_MIN then exceeds. */
        ck_assert_uint_eq(r.items[5].line, 9);
        ck_assert_str_eq(r.items[5].message,
                         "KSM_NPAGES_MIN=2000 (set at test.conf:9) is greater than KSM_NPAGES_MAX=1250 (the default)");
        ck_assert_uint_eq(count(&r, CONFIG_ERROR), 5);
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_long_lines) {
        char text[1024], *p = text;
        Settings s = sentinel();
        Reports r = {};

        /* The longest assignment line: 198 characters, the limit of earlier versions' inih... */
        p += sprintf(p, "LOGFILE=/");
        memset(p, 'x', 198 - 9);
        p += 198 - 9;
        *p++ = '\n';
        *p = '\0';
        ck_assert_int_eq(config_load_string(text, NAME, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_uint_eq(strlen(s.logfile), 198 - 8);
        settings_done(&s);

        /* ...and one more character, even after indentation that is not counted. */
        s = sentinel();
        p = text;
        p += sprintf(p, "\n    LOGFILE=/");
        memset(p, 'x', 198 - 8);
        p += 198 - 8;
        *p = '\0';
        ck_assert_int_eq(config_load_string(text, NAME, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_uint_eq(r.items[0].line, 2);
        ck_assert_str_eq(r.items[0].message, "line too long (199 characters, at most 198)");
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_report_optional) {
        Settings s = sentinel();

        ck_assert_int_eq(config_load_string("KSM_NPAGES_MAX=x\nFOO=1\n", NAME, &s, NULL, NULL), -EINVAL);
        assert_sentinel(&s);
        ck_assert_int_eq(config_load_string("KSM_NPAGES_MAX=2000\nFOO=1\n", NULL, &s, NULL, NULL), 0);
        ck_assert_int_eq(s.npages_max, 2000);
        settings_done(&s);
}
END_TEST

START_TEST(test_default_name) {
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load_string("KSM_NPAGES_MAX=x", NULL, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_str_eq(r.items[0].file, "(string)");
        reports_done(&r);
}
END_TEST

/* ---- files ---- */

START_TEST(test_original_conf) {
        _cleanup_free_ char *path = fixture("config/original.conf"), *text = NULL, *on = NULL;
        Settings s = sentinel(), want;
        Reports r = {};
        size_t n;

        /* The original's shipped file, all commented out: the defaults, silently. */
        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);

        /* Uncommented, it is valid too; only its DEBUG and LOGFILE lines differ from the defaults. */
        text = read_text(path);
        on = uncomment(text, &n);
        ck_assert_uint_eq(n, 10);
        ck_assert_int_eq(config_load_string(on, path, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        settings_init(&want);
        want.debug = true;
        want.logfile = (char *) "/var/log/ksmtuned";
        assert_settings(&s, &want);
        settings_done(&s);
}
END_TEST

static char *shipped_conf(void) {
        char *p;

        ck_assert_int_ge(asprintf(&p, "%s/../../conf/ksmtuned.conf", fixtures()), 0);
        return p;
}

START_TEST(test_shipped_conf) {
        _cleanup_free_ char *path = shipped_conf();
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);
}
END_TEST

START_TEST(test_shipped_conf_uncommented) {
        static const char *const keys[] = {
                "KSM_MONITOR_INTERVAL",
                "KSM_SLEEP_MSEC",
                "KSM_NPAGES_BOOST",
                "KSM_NPAGES_DECAY",
                "KSM_NPAGES_MIN",
                "KSM_NPAGES_MAX",
                "KSM_THRES_COEF",
                "KSM_THRES_CONST",
                "KSM_GUEST_COMM",
                "KSM_GUEST_CMDLINE",
                "KSM_EVENT_SETTLE_MSEC",
                "KSM_LIBVIRT_URI",
                "KSM_KVM_EVENTS",
                "KSM_FREE_MEMORY",
                "KSM_COMMITTED",
                "KSM_CPU_BUDGET",
                "KSM_STOP_MODE",
                "KSM_METRICS_FILE",
                "KSM_POLICY",
                "KSM_ADAPTIVE_MAX_RATE",
                "KSM_ADAPTIVE_MIN_RATE",
                "KSM_ADAPTIVE_MAX_CPU",
                "KSM_ADVISOR",
                "KSM_ADVISOR_MAX_CPU",
                "KSM_ADVISOR_MIN_PAGES_TO_SCAN",
                "KSM_ADVISOR_MAX_PAGES_TO_SCAN",
                "KSM_ADVISOR_TARGET_SCAN_TIME",
                "KSM_SMART_SCAN",
                "KSM_USE_ZERO_PAGES",
                "KSM_MAX_PAGE_SHARING",
                "KSM_MERGE_ACROSS_NODES",
                "DEBUG",
                "LOGFILE",
        };
        _cleanup_free_ char *path = shipped_conf(), *text = NULL, *on = NULL;
        Settings s = sentinel();
        Reports r = {};
        size_t n;

        /* Every "# KEY=VALUE" line shows the default: uncommenting all of them changes nothing. */
        text = read_text(path);
        on = uncomment(text, &n);
        ck_assert_uint_eq(n, ELEMENTSOF(keys));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                _cleanup_free_ char *line = NULL;

                ck_assert_int_ge(asprintf(&line, "\n%s=", keys[i]), 0);
                ck_assert_msg(strstr(on, line), "the shipped file does not document %s", keys[i]);
        }
        ck_assert_int_eq(config_load_string(on, path, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);
}
END_TEST

START_TEST(test_shipped_conf_examples) {
        _cleanup_free_ char *path = shipped_conf(), *text = NULL;
        Settings s = sentinel();
        Reports r = {};
        char *o;
        size_t n = 0;

        /* The indented examples ("#   KEY=VALUE") are valid as written. */
        text = read_text(path);
        o = text;
        for (const char *p = text; *p;) {
                const char *nl = strchrnul(p, '\n');

                if (strncmp(p, "#   ", 4) == 0 && memchr(p, '=', (size_t) (nl - p))) {
                        memmove(o, p + 4, (size_t) (nl - p - 4));
                        o += nl - p - 4;
                        *o++ = '\n';
                        n++;
                }
                p = *nl ? nl + 1 : nl;
        }
        *o = '\0';
        ck_assert_uint_ge(n, 4);
        ck_assert_int_eq(config_load_string(text, path, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        ck_assert_ptr_null(s.guest_comm);
        ck_assert_str_eq(s.guest_cmdline, "^qemu-system.*-enable-kvm");
        ck_assert(s.debug);
        ck_assert_str_eq(s.logfile, "/var/log/ksmtuned/ksmtuned.log");
        settings_done(&s);
}
END_TEST

START_TEST(test_user_conf) {
        _cleanup_free_ char *path = fixture("config/user.conf");
        Settings s = sentinel(), want;
        Reports r = {};

        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        settings_init(&want); /* the keys the file leaves out keep their defaults */
        want.monitor_interval = 30;
        want.sleep_msec = 15;
        want.npages_boost = 600;
        want.npages_decay = -100;
        want.npages_min = 32;
        want.npages_max = 2500;
        want.thres_coef = 20;
        want.thres_const = 4096;
        want.debug = true;
        want.logfile = (char *) "/var/log/ksmtuned";
        want.guest_comm = NULL;
        want.guest_cmdline = (char *) "^qemu-system.*-enable-kvm";
        assert_settings(&s, &want);
        settings_done(&s);
}
END_TEST

START_TEST(test_missing_file) {
        _cleanup_free_ char *path = fixture("config/does-not-exist.conf");
        _cleanup_free_ char *dir = fixture("config/does-not-exist.conf.d");
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, dir, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);
}
END_TEST

START_TEST(test_directory_as_file) {
        _cleanup_free_ char *path = fixture("config/dropins");
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_int_eq(r.items[0].severity, CONFIG_ERROR);
        ck_assert_str_eq(r.items[0].file, path);
        ck_assert_uint_eq(r.items[0].line, 0);
        ck_assert_str_eq(r.items[0].message, "is a directory, not a file");
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_dropins) {
        _cleanup_free_ char *path = fixture("config/dropins/main.conf"), *dir = fixture("config/dropins/main.conf.d");
        Settings s = sentinel(), want;
        Reports r = {};

        ck_assert_int_eq(config_load(path, dir, &s, collect, &r), 0);
        dump(&r);
        ck_assert_uint_eq(r.n, 0);
        settings_init(&want);
        want.npages_max = 1800;     /* 9-last.conf sorts last with strcmp() and wins */
        want.monitor_interval = 40; /* 20-second.conf after 10-first.conf */
        want.sleep_msec = 20;       /* 10-first.conf only */
        want.npages_min = 100;      /* main.conf only */
        want.thres_coef = 30;       /* main.conf only */
        assert_settings(&s, &want);
        settings_done(&s);

        /* Without the drop-ins: main.conf alone. */
        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), 0);
        ck_assert_int_eq(s.npages_max, 1500);
        ck_assert_int_eq(s.monitor_interval, 60);
        settings_done(&s);

        /* Drop-ins apply without a main file. */
        {
                _cleanup_free_ char *missing = fixture("config/dropins/missing.conf");

                ck_assert_int_eq(config_load(missing, dir, &s, collect, &r), 0);
                ck_assert_int_eq(s.npages_max, 1800);
                ck_assert_int_eq(s.npages_min, 64);
                settings_done(&s);
        }
        ck_assert_uint_eq(r.n, 0);
}
END_TEST

START_TEST(test_dropin_error) {
        _cleanup_free_ char *path = fixture("config/dropins-bad/main.conf");
        _cleanup_free_ char *dir = fixture("config/dropins-bad/main.conf.d"), *where = NULL;
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, dir, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_int_eq(asprintf(&where, "%s/50-bad.conf", dir) > 0, 1);
        ck_assert_str_eq(r.items[0].file, where);
        ck_assert_uint_eq(r.items[0].line, 3);
        ck_assert_str_eq(r.items[0].message, "KSM_THRES_COEF=abc: not an integer");
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_dropin_min_max) {
        _cleanup_free_ char *path = fixture("config/dropins-minmax/main.conf");
        _cleanup_free_ char *dir = fixture("config/dropins-minmax/main.conf.d"), *where = NULL, *msg = NULL;
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, dir, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_int_ge(asprintf(&where, "%s/10-max.conf", dir), 0);
        ck_assert_str_eq(r.items[0].file, where);
        ck_assert_uint_eq(r.items[0].line, 2);
        ck_assert_int_ge(asprintf(&msg,
                                  "KSM_NPAGES_MIN=1000 (set at %s:1) is greater than KSM_NPAGES_MAX=500 (set at %s:2)",
                                  path, where),
                         0);
        ck_assert_str_eq(r.items[0].message, msg);
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_dropin_dir_is_file) {
        _cleanup_free_ char *path = fixture("config/dropins/main.conf");
        Settings s = sentinel();
        Reports r = {};

        ck_assert_int_eq(config_load(path, path, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_str_eq(r.items[0].file, path);
        ck_assert_uint_eq(r.items[0].line, 0);
        ck_assert_str_eq(r.items[0].message, "cannot open drop-in directory: Not a directory");
        assert_sentinel(&s);
        reports_done(&r);
}
END_TEST

START_TEST(test_special_files) {
        static const char nul_text[] = "KSM_NPAGES_MAX=2000\nKSM_NPAGES_MIN=1\0"
                                       "0\n";
        _cleanup_free_ char *dir = make_tmpdir(), *dropins = NULL, *big = NULL, *nul = NULL, *fifo = NULL,
                            *null_link = NULL, *dangling = NULL, *one = NULL, *buf = NULL;
        Settings s = sentinel();
        Reports r = {};

        /* A link to /dev/null masks the main file. */
        ck_assert_int_ge(asprintf(&null_link, "%s/masked.conf", dir), 0);
        ck_assert_int_eq(symlink("/dev/null", null_link), 0);
        ck_assert_int_eq(config_load(null_link, NULL, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 0);
        assert_defaults(&s);
        settings_done(&s);

        /* Larger than CONFIG_FILE_SIZE_MAX: an error, whatever its content. */
        buf = malloc(CONFIG_FILE_SIZE_MAX + 1);
        ck_assert_ptr_nonnull(buf);
        memset(buf, '\n', CONFIG_FILE_SIZE_MAX + 1);
        big = write_file(dir, "big.conf", buf, CONFIG_FILE_SIZE_MAX + 1);
        s = sentinel();
        ck_assert_int_eq(config_load(big, NULL, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_uint_eq(r.items[0].line, 0);
        ck_assert_str_eq(r.items[0].message, "too large (more than 1048576 bytes)");
        assert_sentinel(&s);
        reports_done(&r);
        /* Exactly the maximum is fine. */
        free(big);
        big = write_file(dir, "big.conf", buf, CONFIG_FILE_SIZE_MAX);
        ck_assert_int_eq(config_load(big, NULL, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 0);
        settings_done(&s);

        /* A NUL byte. */
        nul = write_file(dir, "nul.conf", nul_text, sizeof(nul_text) - 1);
        s = sentinel();
        ck_assert_int_eq(config_load(nul, NULL, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_uint_eq(r.items[0].line, 2);
        ck_assert_str_eq(r.items[0].message, "NUL byte in line");
        assert_sentinel(&s);
        reports_done(&r);

        /* A FIFO would block a reader: refused. */
        ck_assert_int_ge(asprintf(&fifo, "%s/fifo.conf", dir), 0);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);
        ck_assert_int_eq(config_load(fifo, NULL, &s, collect, &r), -EINVAL);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_str_eq(r.items[0].message, "not a regular file");
        assert_sentinel(&s);
        reports_done(&r);

        /* A dangling symbolic link among the drop-ins: a warning. */
        ck_assert_int_ge(asprintf(&dropins, "%s/conf.d", dir), 0);
        ck_assert_int_eq(mkdir(dropins, 0755), 0);
        one = write_file(dropins, "10-good.conf", "KSM_NPAGES_MAX=2000\n", 20);
        ck_assert_int_ge(asprintf(&dangling, "%s/20-dangling.conf", dropins), 0);
        ck_assert_int_eq(symlink("/nonexistent/ksmtuned.conf", dangling), 0);
        ck_assert_int_eq(config_load(null_link, dropins, &s, collect, &r), 0);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_int_eq(r.items[0].severity, CONFIG_WARNING);
        ck_assert_str_eq(r.items[0].file, dangling);
        ck_assert_str_eq(r.items[0].message, "dangling symbolic link, ignoring");
        ck_assert_int_eq(s.npages_max, 2000);
        settings_done(&s);
        reports_done(&r);

        rm_rf(dir);
}
END_TEST

START_TEST(test_unreadable) {
        _cleanup_free_ char *dir = make_tmpdir(), *path = NULL;
        Settings s = sentinel();
        Reports r = {};
        bool dropped = false;

        path = write_file(dir, "secret.conf", "KSM_NPAGES_MAX=2000\n", 20);
        ck_assert_int_eq(chmod(path, 0), 0);
        if (geteuid() == 0) {
                /* root reads anything: become nobody for a moment (the saved uid lets us come back). */
                ck_assert_int_eq(chmod(dir, 0755), 0);
                ck_assert_int_eq(seteuid(65534), 0);
                dropped = true;
        }
        ck_assert_int_eq(config_load(path, NULL, &s, collect, &r), -EINVAL);
        if (dropped)
                ck_assert_int_eq(seteuid(0), 0);
        ck_assert_uint_eq(r.n, 1);
        ck_assert_str_eq(r.items[0].file, path);
        ck_assert_uint_eq(r.items[0].line, 0);
        ck_assert_str_eq(r.items[0].message, "cannot open: Permission denied");
        assert_sentinel(&s);
        reports_done(&r);
        rm_rf(dir);
}
END_TEST

static Suite *config_suite(void) {
        Suite *s = suite_create("config");
        TCase *tc;

        tc = tcase_create("settings");
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_empty_text);
        tcase_add_test(tc, test_done_twice);
        tcase_add_test(tc, test_copy);
        tcase_add_test(tc, test_equal);
        suite_add_tcase(s, tc);

        tc = tcase_create("syntax");
        tcase_add_loop_test(tc, test_good, 0, ELEMENTSOF(good));
        tcase_add_loop_test(tc, test_warning, 0, ELEMENTSOF(warn));
        tcase_add_loop_test(tc, test_bad, 0, ELEMENTSOF(bad));
        tcase_add_test(tc, test_every_error_reported);
        tcase_add_test(tc, test_long_lines);
        tcase_add_test(tc, test_report_optional);
        tcase_add_test(tc, test_default_name);
        suite_add_tcase(s, tc);

        tc = tcase_create("files");
        tcase_add_test(tc, test_original_conf);
        tcase_add_test(tc, test_shipped_conf);
        tcase_add_test(tc, test_shipped_conf_uncommented);
        tcase_add_test(tc, test_shipped_conf_examples);
        tcase_add_test(tc, test_user_conf);
        tcase_add_test(tc, test_missing_file);
        tcase_add_test(tc, test_directory_as_file);
        tcase_add_test(tc, test_dropins);
        tcase_add_test(tc, test_dropin_error);
        tcase_add_test(tc, test_dropin_min_max);
        tcase_add_test(tc, test_dropin_dir_is_file);
        tcase_add_test(tc, test_special_files);
        tcase_add_test(tc, test_unreadable);
        suite_add_tcase(s, tc);
        return s;
}

int main(void) {
        return unit_run(config_suite());
}
