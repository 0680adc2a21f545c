/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Fuzz target: the per-process KSM parsers: ksm_stat, smaps' VmFlags, and a QEMU command line's name. */
#include <errno.h>

#include "fuzz.h"
#include "ksm-proc.h"

/* Whether @s is valid UTF-8 (no overlong two-byte forms, nothing above U+10FFFF's lead byte). */
static int utf8_valid(const unsigned char *s) {
        while (*s) {
                size_t len = *s < 0x80             ? 1
                             : (*s & 0xe0) == 0xc0 ? 2
                             : (*s & 0xf0) == 0xe0 ? 3
                             : (*s & 0xf8) == 0xf0 ? 4
                                                   : 0;

                if (len == 0 || (len == 2 && *s < 0xc2) || (len == 4 && *s > 0xf4))
                        return 0;
                for (size_t i = 1; i < len; i++)
                        if ((s[i] & 0xc0) != 0x80)
                                return 0;
                s += len;
        }
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = fuzz_strndup(data, size);
        KsmProcStat s = { .rmap_items = 77 }, again = { .rmap_items = 77 };
        char *name = NULL;
        bool b = false;
        KsmUnmergeable why;
        int r;

        /* ksm_stat: success or -EBADMSG, deterministic, output untouched on failure. */
        r = ksm_proc_stat_parse(text, &s);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);
        FUZZ_CHECK(ksm_proc_stat_parse(text, &again) == r);
        if (r < 0)
                FUZZ_CHECK(s.rmap_items == 77 && !s.has_rmap_items);
        else
                FUZZ_CHECK(memcmp(&s, &again, sizeof(s)) == 0);

        r = ksm_proc_smaps_mergeable(text, &b);
        FUZZ_CHECK(r == 0 || r == -EBADMSG);

        /* The command line is the raw bytes, NULs included. */
        r = ksm_proc_cmdline_name((const char *) data, size, &name);
        FUZZ_CHECK(r == 0 || r == -ENODATA);
        if (r == 0) {
                FUZZ_CHECK(name && *name && strlen(name) <= 256);
                ksm_proc_name_sanitize(name);
                FUZZ_CHECK(utf8_valid((const unsigned char *) name));
                free(name);
        }
        why = ksm_proc_cmdline_unmergeable((const char *) data, size);
        FUZZ_CHECK(why >= 0 && why < _KSM_UNMERGEABLE_MAX);
        FUZZ_CHECK(ksm_unmergeable_to_string(why) && ksm_unmergeable_label(why));

        ksm_proc_name_sanitize(text);
        FUZZ_CHECK(utf8_valid((const unsigned char *) text));
        free(text);
        return 0;
}
