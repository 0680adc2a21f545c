/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The lexical part of reading ksmtuned.conf: one shell word as bash would assign it (and what would need
 * a shell to run, refused: the file is never executed), whole decimal numbers with the original's octal
 * pitfall explained, booleans, and the edit distance behind "did you mean".
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "config-lex.h"
#include "util.h"

#define NOT_EXECUTED  " (this file is read, not executed)"
#define BACKSLASH_EOL "a backslash at the end of a line would continue it; a value cannot span lines"

/* A copy of @n bytes of @s fit for a log line: control characters as \xNN, the rest as written. */
char *config_escape(const char *s, size_t n) {
        char *e, *p;

        e = malloc(n * 4 + 1);
        if (!e)
                return NULL;
        p = e;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c == 0x7f)
                        p += sprintf(p, "\\x%02x", c);
                else
                        *p++ = (char) c;
        }
        *p = '\0';
        return e;
}

bool config_is_blank(char c) {
        return c == ' ' || c == '\t';
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

bool config_is_name_char(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || is_digit(c);
}

/* What a shell would make of the '$' at @p, or NULL when it keeps it as a literal '$'. */
static const char *dollar_expansion(const char *p, bool in_double_quotes) {
        char c = p[1];

        if (c == '(' && p[2] == '(')
                return "arithmetic expansion $((...)) needs a shell" NOT_EXECUTED;
        if (c == '(')
                return "command substitution $(...) needs a shell" NOT_EXECUTED;
        if (c == '[')
                return "arithmetic expansion $[...] needs a shell" NOT_EXECUTED;
        if (c == '{' || config_is_name_char(c) || (c && strchr("@*#?!$-", c)))
                return "variable expansion needs a shell" NOT_EXECUTED;
        if (!in_double_quotes && (c == '\'' || c == '"'))
                return "$'...' and $\"...\" quoting need a shell" NOT_EXECUTED;
        return NULL;
}

/* Why an unquoted @c cannot be part of a value, or NULL when it can. */
static const char *unquoted_problem(char c) {
        switch (c) {
        case '`':
                return "command substitution `...` needs a shell" NOT_EXECUTED;
        case ';':
        case '&':
        case '|':
                return "an unquoted ';', '&' or '|' would start another command" NOT_EXECUTED;
        case '<':
        case '>':
                return "redirection needs a shell" NOT_EXECUTED;
        case '(':
        case ')':
                return "an unquoted '(' or ')' is a shell syntax error; quote the value";
        default:
                return NULL;
        }
}

/**
 * lex_value() - the value of an assignment, as bash would have assigned it, from the text after '='.
 * @s: the text after '=', to the end of the line.
 * @ret_value: the value, quotes removed; the caller frees it.
 * @ret_raw: where the value starts in @s, leading blanks skipped.
 * @ret_raw_len: how long the value is as written (without a trailing comment); on failure the rest of
 *               the line, so a message can show it.
 * @ret_reason: on failure, why; a static string.
 *
 * One shell word: unquoted text, '...' and "..." in any sequence, backslash escapes. Whatever would need
 * a shell to run it (expansions, command substitution, a second command, a redirection) is refused:
 * the file is never executed. Blanks and a '#' comment may follow the word, nothing else. Unlike a
 * shell, blanks may separate '=' from the value.
 *
 * Return: 0; -EINVAL with @ret_reason and @ret_raw_len set; -ENOMEM.
 */
int config_lex_value(const char *s, char **ret_value, const char **ret_raw, size_t *ret_raw_len,
                     const char **ret_reason) {
        _cleanup_free_ char *v = NULL;
        const char *p = s, *raw, *reason = NULL;
        bool tilde_expands = true;
        size_t n = 0, len;

        while (config_is_blank(*p))
                p++;
        raw = p;
        *ret_raw = raw;

        v = malloc(strlen(p) + 1);
        if (!v)
                return -ENOMEM;

        /* "KEY= # comment" is an empty value; "KEY=#x" is "#x", as in the shell. */
        if (p > s && *p == '#') {
                *ret_raw_len = 0;
                goto done;
        }

        while (*p && !config_is_blank(*p)) {
                char c = *p;

                if (c == '~' && tilde_expands) {
                        reason = "tilde expansion needs a shell; write the full path";
                        goto fail;
                }
                tilde_expands = c == ':'; /* as in PATH=~/a:~/b */

                if (c == '\'') {
                        const char *q = strchr(p + 1, '\'');

                        if (!q) {
                                reason = "unbalanced single quote (a value cannot span lines)";
                                goto fail;
                        }
                        memcpy(v + n, p + 1, (size_t) (q - p - 1));
                        n += (size_t) (q - p - 1);
                        p = q + 1;
                } else if (c == '"') {
                        for (p++;; p++) {
                                if (*p == '\0') {
                                        reason = "unbalanced double quote (a value cannot span lines)";
                                        goto fail;
                                }
                                if (*p == '"')
                                        break;
                                if (*p == '`') {
                                        reason = unquoted_problem('`');
                                        goto fail;
                                }
                                if (*p == '$' && (reason = dollar_expansion(p, true)))
                                        goto fail;
                                /* Inside double quotes, a backslash only escapes these. */
                                if (*p == '\\' && p[1] && strchr("$`\"\\", p[1]))
                                        p++;
                                v[n++] = *p;
                        }
                        p++;
                } else if (c == '\\') {
                        if (p[1] == '\0') {
                                reason = BACKSLASH_EOL;
                                goto fail;
                        }
                        v[n++] = p[1];
                        p += 2;
                } else if (c == '$') {
                        reason = dollar_expansion(p, false);
                        if (reason)
                                goto fail;
                        v[n++] = *p++;
                } else {
                        reason = unquoted_problem(c);
                        if (reason)
                                goto fail;
                        v[n++] = *p++;
                }
        }
        len = (size_t) (p - raw);

        while (config_is_blank(*p))
                p++;
        if (*p == '\\' && p[1] == '\0') {
                reason = BACKSLASH_EOL;
                goto fail;
        }
        if (*p != '\0' && *p != '#') {
                size_t name = 0;

                while (config_is_name_char(p[name]))
                        name++;
                reason = unquoted_problem(*p);
                if (!reason && name > 0 && !is_digit(*p) && p[name] == '=')
                        reason = "only one assignment per line is supported";
                else if (!reason)
                        reason = "text after the value would be run as a command" NOT_EXECUTED
                                 "; quote the value, or start a comment with ' #'";
                goto fail;
        }
        *ret_raw_len = len;
done:
        v[n] = '\0';
        *ret_value = TAKE_PTR(v);
        return 0;

fail:
        len = strlen(raw);
        while (len > 0 && config_is_blank(raw[len - 1]))
                len--;
        *ret_raw_len = len;
        *ret_reason = reason;
        return -EINVAL;
}

static int parse_decimal(const char *digits, size_t n, int base, uint64_t *ret) {
        uint64_t v = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned d = (unsigned) (digits[i] - '0');

                if (d >= (unsigned) base || v > (UINT64_MAX - d) / (uint64_t) base)
                        return -ERANGE;
                v = v * (uint64_t) base + d;
        }
        *ret = v;
        return 0;
}

/*
 * Explain a number with a leading zero: bash's $[...] arithmetic, which the original used for most keys,
 * read it as octal, while test(1), which it used for others, read it as decimal.
 */
static void leading_zero_reason(const char *v, char *buf, size_t size) {
        const char *sign = *v == '-' ? "-" : "", *digits = v + (*v == '-');
        size_t n = strlen(digits);
        uint64_t dec, oct;

        if (parse_decimal(digits, n, 10, &dec) < 0) {
                snprintf(buf, size, "leading zero: write the number without it");
                return;
        }
        if (strspn(digits, "01234567") != n)
                snprintf(buf, size,
                         "leading zero: bash arithmetic rejected %s as an invalid octal number; write %s%" PRIu64, v,
                         sign, dec);
        else if (parse_decimal(digits, n, 8, &oct) >= 0 && oct != dec)
                snprintf(buf, size,
                         "leading zero: bash arithmetic read %s as octal %s%" PRIu64 "; write %s%" PRIu64
                         " or %s%" PRIu64,
                         v, sign, oct, sign, oct, sign, dec);
        else
                snprintf(buf, size, "leading zero (octal in bash arithmetic); write %s%" PRIu64, sign, dec);
}

/* A whole decimal integer within [k->min, k->max]; on failure, why in @reason. */
int config_parse_int(const char *v, int64_t min, int64_t max, const char *unit, int64_t *ret, char *reason,
                     size_t size) {
        const char *digits = v + (*v == '-');
        size_t n = strspn(digits, "0123456789");
        uint64_t mag;
        int64_t x;

        if (n == 0 || digits[n] != '\0') {
                snprintf(reason, size, "not an integer");
                return -EINVAL;
        }
        if (n > 1 && digits[0] == '0') {
                leading_zero_reason(v, reason, size);
                return -EINVAL;
        }
        if (parse_decimal(digits, n, 10, &mag) < 0 || mag > (uint64_t) INT64_MAX)
                goto range;
        x = *v == '-' ? -(int64_t) mag : (int64_t) mag;
        if (x < min || x > max)
                goto range;
        *ret = x;
        return 0;

range:
        snprintf(reason, size, "out of range (%" PRIi64 "..%" PRIi64 " %s)", min, max, unit);
        return -ERANGE;
}

/* 1, 0, or -1 when @v is none of 1/0, yes/no, true/false, on/off (any case). */
int config_parse_bool(const char *v) {
        static const char *const yes[] = { "1", "yes", "true", "on" }, *const no[] = { "0", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        }
        return -1;
}

bool config_is_off_word(const char *v) {
        static const char *const words[] = { "0", "n", "no", "false", "off" };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(v, words[i]) == 0)
                        return true;
        return false;
}

/* Optimal string alignment distance, case-insensitive, for "did you mean" on unknown keys. */
size_t config_edit_distance(const char *a, const char *b) {
        size_t la = strlen(a), lb = strlen(b), d[3][32];
        size_t *prev2 = d[0], *prev = d[1], *cur = d[2];

        if (la >= 32 || lb >= 32)
                return SIZE_MAX;
        for (size_t j = 0; j <= lb; j++)
                prev[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t *t;

                cur[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cost = toupper((unsigned char) a[i - 1]) != toupper((unsigned char) b[j - 1]);
                        size_t m = prev[j] + 1;

                        if (cur[j - 1] + 1 < m)
                                m = cur[j - 1] + 1;
                        if (prev[j - 1] + cost < m)
                                m = prev[j - 1] + cost;
                        if (i > 1 && j > 1 && toupper((unsigned char) a[i - 1]) == toupper((unsigned char) b[j - 2]) &&
                            toupper((unsigned char) a[i - 2]) == toupper((unsigned char) b[j - 1]) &&
                            prev2[j - 2] + 1 < m)
                                m = prev2[j - 2] + 1;
                        cur[j] = m;
                }
                t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return prev[lb];
}
