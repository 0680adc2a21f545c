/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The words of ksmtuned.conf: a shell assignment's value, numbers, booleans, and "did you mean". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool config_is_blank(char c);
bool config_is_name_char(char c);
char *config_escape(const char *s, size_t n);
int config_lex_value(const char *s, char **ret_value, const char **ret_raw, size_t *ret_raw_len,
                     const char **ret_reason);
int config_parse_int(const char *v, int64_t min, int64_t max, const char *unit, int64_t *ret, char *reason,
                     size_t size);
int config_parse_bool(const char *v);
bool config_is_off_word(const char *v);
size_t config_edit_distance(const char *a, const char *b);
