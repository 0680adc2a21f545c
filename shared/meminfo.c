/* SPDX-License-Identifier: GPL-2.0-or-later */
/* /proc/meminfo parsing: only the fields the tuning policy and ksmctl need. */
#include <ctype.h>
#include <fcntl.h>
#include <stddef.h>

#include "meminfo.h"
#include "util.h"

/* The real file is ~1.5 kB; this bounds what a broken or hostile file can make us read. */
#define MEMINFO_MAX (64 * 1024)

/* Parse "   12345 kB" (the unit optional); -EBADMSG on anything else. */
static int parse_kb(const char *p, const char *eol, uint64_t *ret) {
        uint64_t v = 0;
        bool digits = false;

        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        while (p < eol && isdigit((unsigned char) *p)) {
                unsigned d = (unsigned) (*p - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
                digits = true;
                p++;
        }
        if (!digits)
                return -EBADMSG;
        while (p < eol && (*p == ' ' || *p == '\t'))
                p++;
        if (p < eol && eol - p == 2 && p[0] == 'k' && p[1] == 'B')
                p += 2;
        if (p != eol)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/**
 * meminfo_parse() - pick MemTotal, MemFree, MemAvailable, Buffers and Cached out of meminfo text.
 *
 * Only lines that start with one of those names count (so "SwapCached:" is not "Cached:"), as in the
 * original script's awk. Returns -EBADMSG when a needed field is missing or malformed, or MemTotal is 0,
 * which every formula divides by. MemAvailable is optional.
 */
int meminfo_parse(const char *text, MemInfo *ret) {
        static const struct {
                const char *name;
                size_t offset;
        } fields[] = {
                { "MemTotal:", offsetof(MemInfo, mem_total) },
                { "MemFree:", offsetof(MemInfo, mem_free) },
                { "MemAvailable:", offsetof(MemInfo, mem_available) },
                { "Buffers:", offsetof(MemInfo, buffers) },
                { "Cached:", offsetof(MemInfo, cached) },
        };
        MemInfo m = {};
        unsigned seen = 0;
        const char *line = text;

        while (*line) {
                const char *eol = strchrnul(line, '\n');

                for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                        size_t n = strlen(fields[i].name);

                        if ((size_t) (eol - line) < n || memcmp(line, fields[i].name, n) != 0)
                                continue;
                        if (seen & (1u << i))
                                break; /* awk would print both; the first is the kernel's */
                        if (parse_kb(line + n, eol, (uint64_t *) ((char *) &m + fields[i].offset)) < 0)
                                return -EBADMSG;
                        seen |= 1u << i;
                        break;
                }
                line = *eol ? eol + 1 : eol;
        }

        if ((seen & 0x1b) != 0x1b || m.mem_total == 0)
                return -EBADMSG;
        m.has_mem_available = seen & 0x4;
        *ret = m;
        return 0;
}

/**
 * meminfo_read() - read and parse @proc_dir/meminfo.
 */
int meminfo_read(const char *proc_dir, MemInfo *ret) {
        _cleanup_close_ int dfd = -1;
        _cleanup_free_ char *text = NULL;
        int r;

        dfd = open(proc_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        r = read_full_file_at(dfd, "meminfo", MEMINFO_MAX, &text, NULL);
        if (r < 0)
                return r;
        return meminfo_parse(text, ret);
}
