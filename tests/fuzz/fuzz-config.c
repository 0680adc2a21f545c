/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: config_load_string(), the /etc/ksmtuned.conf parser, with its reporting contract checked. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz.h"

#define NAME "/etc/ksmtuned.conf"

typedef struct Reports {
        unsigned errors, warnings, lines;
        uint64_t hash; /* of every report in order: two parses of one text must report the same */
} Reports;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
        const unsigned char *c = p;

        for (size_t i = 0; i < n; i++)
                h = (h ^ c[i]) * UINT64_C(1099511628211);
        return h;
}

static void report(void *userdata, ConfigSeverity severity, const char *file, unsigned line, const char *message) {
        Reports *r = userdata;

        FUZZ_CHECK(severity == CONFIG_ERROR || severity == CONFIG_WARNING);
        FUZZ_CHECK(file && strcmp(file, NAME) == 0);
        FUZZ_CHECK(message && *message);
        FUZZ_CHECK(line <= r->lines);
        if (severity == CONFIG_ERROR)
                r->errors++;
        else
                r->warnings++;
        r->hash = fnv(r->hash, &severity, sizeof(severity));
        r->hash = fnv(r->hash, &line, sizeof(line));
        r->hash = fnv(r->hash, message, strlen(message) + 1);
}

/* What a successful load promises the daemon: every value within its documented range. */
static void check_settings(const Settings *s) {
        FUZZ_CHECK(s->monitor_interval >= 1 && s->monitor_interval <= 31536000);
        FUZZ_CHECK(s->sleep_msec >= 0 && s->sleep_msec <= 1000000);
        FUZZ_CHECK(s->npages_min >= 0 && s->npages_min <= s->npages_max && s->npages_max <= 1000000000);
        FUZZ_CHECK(s->npages_boost >= -1000000000 && s->npages_boost <= 1000000000);
        FUZZ_CHECK(s->npages_decay >= -1000000000 && s->npages_decay <= 1000000000);
        FUZZ_CHECK(s->thres_coef >= 0 && s->thres_coef <= 100);
        FUZZ_CHECK(s->thres_const >= 0);
        FUZZ_CHECK(s->event_settle_msec >= 0 && s->event_settle_msec <= 60000);
        FUZZ_CHECK(!s->logfile || s->logfile[0] == '/');
}

static int load(const char *text, unsigned lines, Settings *ret, Reports *rep) {
        int r;

        *rep = (Reports) { .lines = lines, .hash = UINT64_C(14695981039346656037) };
        settings_init(ret);
        r = config_load_string(text, NAME, ret, report, rep);
        FUZZ_CHECK(r == 0 || r == -EINVAL);
        /* The load fails exactly when an error was reported. */
        FUZZ_CHECK((r == -EINVAL) == (rep->errors > 0));
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Settings a, b, c;
        Reports ra, rb;
        unsigned lines = 1;
        char *text;
        int r1, r2;

        if (size > CONFIG_FILE_SIZE_MAX + 1)
                return 0;
        text = fuzz_strndup(data, size);
        for (size_t i = 0; text[i]; i++)
                lines += text[i] == '\n';

        r1 = load(text, lines, &a, &ra);
        r2 = load(text, lines, &b, &rb);
        FUZZ_CHECK(r1 == r2 && ra.errors == rb.errors && ra.warnings == rb.warnings && ra.hash == rb.hash);
        if (r1 == 0) {
                check_settings(&a);
                FUZZ_CHECK(settings_equal(&a, &b));
                FUZZ_CHECK(settings_copy(&a, &c) == 0);
                FUZZ_CHECK(settings_equal(&a, &c));
                settings_done(&c);
        } else {
                /* On failure @ret is untouched: still the defaults settings_init() put there. */
                Settings d;

                settings_init(&d);
                FUZZ_CHECK(settings_equal(&a, &d));
        }
        settings_done(&a);
        settings_done(&b);
        free(text);
        return 0;
}
