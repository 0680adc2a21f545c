# SPDX-License-Identifier: GPL-2.0-or-later
"""A strict parser of the Prometheus text exposition format, version 0.0.4, for tests.

parse(text) returns {family: {"type": ..., "help": ... or None, "samples": [(name, labels, value)]}} and
raises ValueError("line N: ...") on anything the format does not allow, or that Prometheus would reject
or silently take differently: a bad # HELP or # TYPE line, a TYPE after the family's samples or twice,
a second HELP, names and label names outside their alphabets, a label value with a bad escape, a value
that is not a float, +Inf, -Inf or NaN, a timestamp that is not an integer, a family's lines not
together, the same sample (name and labels) twice, a histogram's buckets out of order, and a missing
newline at the end. Counters named without _total are a warning (PromWarning), or an error with
strict_names=True.

Run as a program, it tests itself. Standard library only.
"""

import math
import re
import sys
import warnings

__all__ = ["parse", "PromWarning", "TYPES"]

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
TIMESTAMP = re.compile(r"-?[0-9]+")
BLANKS = " \t"
# The samples each type's family holds, by the suffix added to the family's name.
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("", "_sum", "_count"),
            "counter": ("",), "gauge": ("",), "untyped": ("",)}


class PromWarning(UserWarning):
    """A convention broken, not the format: made an error by strict_names=True."""


class _Line:
    """One line and a cursor into it, raising ValueError with the line number."""

    def __init__(self, number, text):
        self.number = number
        self.text = text
        self.pos = 0

    def fail(self, why):
        raise ValueError(f"line {self.number}: {why}: {self.text!r}")

    def blanks(self):
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in BLANKS:
            self.pos += 1
        return self.pos > start

    def peek(self):
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def at_end(self):
        return self.pos >= len(self.text)

    def match(self, regex, what):
        m = regex.match(self.text, self.pos)
        if not m:
            self.fail(f"expected {what}")
        self.pos = m.end()
        return m.group(0)

    def token(self):
        """Up to the next blank or the end."""
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in BLANKS:
            self.pos += 1
        return self.text[start:self.pos]


def _value(line, token):
    if token in ("+Inf", "-Inf"):
        return math.inf if token[0] == "+" else -math.inf
    if token == "NaN":
        return math.nan
    if not FLOAT.fullmatch(token):
        line.fail(f"value {token!r} is not a float, +Inf, -Inf or NaN")
    return float(token)


def _label_value(line):
    if line.peek() != '"':
        line.fail('expected \'"\' to open a label value')
    line.pos += 1
    out = []
    while True:
        if line.at_end():
            line.fail("label value not closed")
        c = line.text[line.pos]
        line.pos += 1
        if c == '"':
            return "".join(out)
        if c == "\\":
            e = line.peek()
            if e not in ('\\', '"', 'n'):
                line.fail(f"bad escape '\\{e}' in a label value (only \\\\, \\\" and \\n)")
            out.append("\n" if e == "n" else e)
            line.pos += 1
        else:
            out.append(c)


def _labels(line):
    """{name="value",...}, the cursor on '{'; a trailing comma is allowed, as Prometheus allows it."""
    labels = {}
    line.pos += 1
    while True:
        line.blanks()
        if line.peek() == "}":
            line.pos += 1
            return labels
        name = line.match(LABEL_NAME, "a label name ([a-zA-Z_][a-zA-Z0-9_]*)")
        if name.startswith("__"):
            line.fail(f"label name {name!r}: names starting with __ are reserved")
        if name in labels:
            line.fail(f"label {name!r} twice")
        line.blanks()
        if line.peek() != "=":
            line.fail(f"expected '=' after label name {name!r}")
        line.pos += 1
        line.blanks()
        labels[name] = _label_value(line)
        line.blanks()
        if line.peek() == ",":
            line.pos += 1
        elif line.peek() != "}":
            line.fail("expected ',' or '}' after a label value")


def _help_text(line, raw):
    """A HELP docstring: only \\\\ and \\n are escapes; any other backslash is itself."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw) and raw[i + 1] in ("\\", "n"):
            out.append("\n" if raw[i + 1] == "n" else "\\")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class _Parser:
    def __init__(self, strict_names):
        self.strict_names = strict_names
        self.families = {}
        self.current = None  # the family whose lines we are in
        self.closed = set()  # families whose lines have ended: they may not come back
        self.seen = set()  # (sample name, labels) so far
        self.first_sample_line = {}

    def enter(self, line, family):
        if family == self.current:
            return
        if family in self.closed:
            line.fail(f"lines of metric family {family!r} are not together")
        if self.current is not None:
            self.closed.add(self.current)
        self.current = family

    def family(self, name):
        return self.families.setdefault(name, {"type": None, "help": None, "samples": []})

    def directive(self, line):
        line.pos += 1  # '#'
        line.blanks()
        word = line.token()
        if word not in ("HELP", "TYPE"):
            return  # a comment
        if not line.blanks():
            line.fail(f"expected a metric name after # {word}")
        name = line.match(METRIC_NAME, "a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        if not line.at_end() and not line.blanks():
            line.fail(f"expected a blank after the metric name of # {word}")
        self.enter(line, name)
        fam = self.family(name)
        if word == "HELP":
            if fam["help"] is not None:
                line.fail(f"second HELP for {name!r}")
            fam["help"] = _help_text(line, line.text[line.pos:])
            return
        kind = line.token()
        line.blanks()
        if not line.at_end():
            line.fail("unexpected text after the type")
        if kind not in TYPES:
            line.fail(f"type {kind!r} is none of {', '.join(TYPES)}")
        if fam["type"] is not None:
            line.fail(f"second TYPE for {name!r}")
        if fam["samples"]:
            line.fail(f"TYPE for {name!r} after its samples (first on line {self.first_sample_line[name]})")
        fam["type"] = kind
        if kind == "counter" and not name.endswith("_total"):
            msg = f"line {line.number}: counter {name!r} does not end in _total"
            if self.strict_names:
                raise ValueError(msg)
            warnings.warn(msg, PromWarning, stacklevel=4)

    def family_of(self, name):
        """The family a sample name belongs to: a typed family through its suffixes, else its own."""
        candidates = [self.current] if self.current else []
        candidates += [name[: -len(s)] for s in ("_bucket", "_sum", "_count") if name.endswith(s)]
        for fam in candidates:
            kind = self.families.get(fam, {}).get("type") or "untyped"
            if fam in self.families and any(name == fam + s for s in SUFFIXES[kind]):
                return fam
        return name

    def sample(self, line):
        line.blanks()
        name = line.match(METRIC_NAME, "a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        separated = line.blanks()
        labels = {}
        if line.peek() == "{":
            labels = _labels(line)
            separated = True  # "}" ends a token: a blank after it is allowed, not needed
            line.blanks()
        if not separated or line.at_end():
            line.fail("expected a blank and a value after the metric name")
        value = _value(line, line.token())
        if line.blanks() and not line.at_end():
            ts = line.token()
            if not TIMESTAMP.fullmatch(ts) or not -(2**63) <= int(ts) < 2**63:
                line.fail(f"timestamp {ts!r} is not an integer (milliseconds)")
            line.blanks()
        if not line.at_end():
            line.fail("unexpected text after the sample")

        fam_name = self.family_of(name)
        self.enter(line, fam_name)
        fam = self.family(fam_name)
        kind = fam["type"] or "untyped"
        key = (name, frozenset(labels.items()))
        if key in self.seen:
            line.fail(f"sample {name}{labels or ''} twice")
        self.seen.add(key)
        if kind == "histogram" and name.endswith("_bucket"):
            if "le" not in labels:
                line.fail(f"histogram bucket {name!r} without an 'le' label")
            _value(line, labels["le"])
        if kind == "summary" and name == fam_name:
            if "quantile" not in labels:
                line.fail(f"summary sample {name!r} without a 'quantile' label")
            q = _value(line, labels["quantile"])
            if not 0 <= q <= 1:
                line.fail(f"quantile {labels['quantile']!r} is not between 0 and 1")
        self.first_sample_line.setdefault(fam_name, line.number)
        fam["samples"].append((name, labels, value))

    def check_histograms(self):
        for fam_name, fam in self.families.items():
            if fam["type"] != "histogram":
                continue
            groups = {}
            for name, labels, value in fam["samples"]:
                rest = frozenset((k, v) for k, v in labels.items() if k != "le")
                g = groups.setdefault(rest, {"buckets": [], "count": None})
                if name.endswith("_bucket"):
                    g["buckets"].append((_value(_Line(0, labels["le"]), labels["le"]), value))
                elif name.endswith("_count"):
                    g["count"] = value
            for rest, g in groups.items():
                where = f"histogram {fam_name!r}{dict(rest) or ''}"
                if not g["buckets"]:
                    continue
                les = [le for le, _ in g["buckets"]]
                if les != sorted(les):
                    raise ValueError(f"{where}: buckets not in increasing 'le' order")
                if les[-1] != math.inf:
                    raise ValueError(f"{where}: no le=\"+Inf\" bucket")
                counts = [v for _, v in g["buckets"]]
                if any(b < a for a, b in zip(counts, counts[1:])):
                    raise ValueError(f"{where}: bucket counts go down")
                if g["count"] is not None and g["count"] != counts[-1]:
                    raise ValueError(f"{where}: _count {g['count']} is not the +Inf bucket's {counts[-1]}")


def parse(text, strict_names=False):
    """Parse an exposition; see the module's documentation. Empty text is an empty exposition."""
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    if text and not text.endswith("\n"):
        raise ValueError(f"line {text.count(chr(10)) + 1}: the exposition does not end with a newline")
    p = _Parser(strict_names)
    for number, raw in enumerate(text.split("\n")[:-1] if text else [], 1):
        if "\r" in raw:
            raise ValueError(f"line {number}: carriage return (lines end with \\n only): {raw!r}")
        line = _Line(number, raw)
        line.blanks()
        if line.at_end():
            continue  # empty lines are ignored
        if line.peek() == "#":
            p.directive(line)
        else:
            p.sample(line)
    p.check_histograms()
    for name, fam in p.families.items():
        if fam["type"] is None:
            fam["type"] = "untyped"
    return p.families


# ---------------------------------------------------------------------------------------------------------------
# Self-test: python3 promparse.py

VALID = [
    ("empty", "", {}),
    ("comments and blank lines", "# just a comment\n\n#\n   \n", {}),
    ("one gauge",
     "# HELP ksm_pages_shared KSM pages in use.\n# TYPE ksm_pages_shared gauge\nksm_pages_shared 1500\n",
     {"ksm_pages_shared": ("gauge", "KSM pages in use.", [("ksm_pages_shared", {}, 1500.0)])}),
    ("labels, escapes, trailing comma, blanks, timestamp",
     '# TYPE a_total counter\na_total{x="1",y="q\\"u\\\\o\\nte"} 3 1700000000000\n'
     'a_total { x = "2" , } \t4.5e3   -17\n',
     {"a_total": ("counter", None, [("a_total", {"x": "1", "y": 'q"u\\o\nte'}, 3.0),
                                    ("a_total", {"x": "2"}, 4500.0)])}),
    ("special values", "# TYPE v gauge\nv{k=\"a\"} +Inf\nv{k=\"b\"} -Inf\nv{k=\"c\"} NaN\nv{k=\"d\"} -0.5\n"
     "v{k=\"e\"} .5\nv{k=\"f\"} 1.\nv{k=\"g\"} +3\n",
     {"v": ("gauge", None, [("v", {"k": "a"}, math.inf), ("v", {"k": "b"}, -math.inf), ("v", {"k": "c"}, "nan"),
                            ("v", {"k": "d"}, -0.5), ("v", {"k": "e"}, 0.5), ("v", {"k": "f"}, 1.0),
                            ("v", {"k": "g"}, 3.0)])}),
    ("untyped without TYPE, colons in names", "foo:bar 1\nother 2\n",
     {"foo:bar": ("untyped", None, [("foo:bar", {}, 1.0)]), "other": ("untyped", None, [("other", {}, 2.0)])}),
    ("HELP escapes, HELP after samples of the same family, empty HELP",
     "# TYPE h gauge\nh 1\n# HELP h a\\\\b\\nc \\t\n# HELP e\ne 0\n",
     {"h": ("gauge", "a\\b\nc \\t", [("h", {}, 1.0)]), "e": ("untyped", "", [("e", {}, 0.0)])}),
    ("histogram",
     '# TYPE lat histogram\nlat_bucket{le="0.1"} 1\nlat_bucket{le="1"} 3\nlat_bucket{le="+Inf"} 4\n'
     "lat_sum 2.5\nlat_count 4\n",
     {"lat": ("histogram", None, [("lat_bucket", {"le": "0.1"}, 1.0), ("lat_bucket", {"le": "1"}, 3.0),
                                  ("lat_bucket", {"le": "+Inf"}, 4.0), ("lat_sum", {}, 2.5),
                                  ("lat_count", {}, 4.0)])}),
    ("summary", '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="1"} 2\ns_sum 3\ns_count 2\n',
     {"s": ("summary", None, [("s", {"quantile": "0.5"}, 1.0), ("s", {"quantile": "1"}, 2.0),
                              ("s_sum", {}, 3.0), ("s_count", {}, 2.0)])}),
    ("a _count gauge of its own next to a histogram",
     '# TYPE x histogram\nx_bucket{le="+Inf"} 1\nx_sum 1\nx_count 1\n# TYPE y_count gauge\ny_count 5\n',
     None),
    ("same name, different labels", 'm{a="1"} 1\nm{a="2"} 1\nm 1\n', None),
    ("no blank after '}'", 'm{a="1"}1\n', {"m": ("untyped", None, [("m", {"a": "1"}, 1.0)])}),
    ("empty braces", "m{} 1\n", {"m": ("untyped", None, [("m", {}, 1.0)])}),
]

INVALID = [
    ("no trailing newline", "a 1", "line 1"),
    ("TYPE after samples", "a 1\n# TYPE a gauge\n", "line 2"),
    ("TYPE twice", "# TYPE a gauge\n# TYPE a gauge\n", "line 2"),
    ("HELP twice", "# HELP a x\n# HELP a y\n", "line 2"),
    ("unknown type", "# TYPE a gaugeish\n", "line 1"),
    ("TYPE without type", "# TYPE a\n", "line 1"),
    ("TYPE with extra text", "# TYPE a gauge extra\n", "line 1"),
    ("HELP without name", "# HELP\n", "line 1"),
    ("bad name in TYPE", "# TYPE 1a gauge\n", "line 1"),
    ("bad metric name", "ok 1\n1bad 1\n", "line 2"),
    ("dash in metric name", "a-b 1\n", "line 1"),
    ("bad label name", 'a{1x="v"} 1\n', "line 1"),
    ("colon in label name", 'a{x:y="v"} 1\n', "line 1"),
    ("reserved label name", 'a{__name__="v"} 1\n', "line 1"),
    ("label twice", 'a{x="1",x="2"} 1\n', "line 1"),
    ("bad escape", 'a{x="\\t"} 1\n', "line 1"),
    ("unclosed label value", 'a{x="v} 1\n', "line 1"),
    ("unquoted label value", "a{x=v} 1\n", "line 1"),
    ("missing comma", 'a{x="1" y="2"} 1\n', "line 1"),
    ("unclosed braces", 'a{x="1" 1\n', "line 1"),
    ("no value", "a\n", "line 1"),
    ("no value, trailing blank", "a \n", "line 1"),
    ("name and value run together", "a1\n", "line 1"),
    ("no value after labels", 'a{x="1"}\n', "line 1"),
    ("bad value", "a one\n", "line 1"),
    ("lower-case inf", "a inf\n", "line 1"),
    ("Inf without sign", "a Inf\n", "line 1"),
    ("nan", "a nan\n", "line 1"),
    ("hex value", "a 0x10\n", "line 1"),
    ("comma decimal", "a 1,5\n", "line 1"),
    ("float timestamp", "a 1 1.5\n", "line 1"),
    ("huge timestamp", "a 1 99999999999999999999\n", "line 1"),
    ("text after timestamp", "a 1 2 3\n", "line 1"),
    ("not contiguous", "a 1\nb 1\na 2\n", "line 3"),
    ("HELP of a closed family", "a 1\nb 1\n# HELP a late\n", "line 3"),
    ("duplicate sample", 'a{x="1"} 1\na{x="1"} 2\n', "line 2"),
    ("duplicate sample, labels reordered", 'a{x="1",y="2"} 1\na{y="2",x="1"} 2\n', "line 2"),
    ("duplicate unlabelled sample", "# TYPE a gauge\na 1\na 1\n", "line 3"),
    ("carriage return", "a 1\r\n", "line 1"),
    ("bucket without le", "# TYPE h histogram\nh_bucket 1\n", "line 2"),
    ("bucket with bad le", '# TYPE h histogram\nh_bucket{le="x"} 1\n', "line 2"),
    ("histogram without +Inf", '# TYPE h histogram\nh_bucket{le="1"} 1\n', "histogram 'h'"),
    ("histogram buckets out of order", '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\n'
     'h_bucket{le="+Inf"} 1\n', "increasing"),
    ("histogram counts going down", '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n', "go down"),
    ("histogram _count", '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 3\n', "_count"),
    ("summary without quantile", "# TYPE s summary\ns 1\n", "line 2"),
    ("summary quantile out of range", '# TYPE s summary\ns{quantile="2"} 1\n', "line 2"),
    ("sample in the middle of another family", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", "line 5"),
]


def _same(got, want):
    if set(got) != set(want):
        return False
    for name, (kind, help_, samples) in want.items():
        g = got[name]
        if g["type"] != kind or g["help"] != help_ or len(g["samples"]) != len(samples):
            return False
        for (gn, gl, gv), (wn, wl, wv) in zip(g["samples"], samples):
            if gn != wn or gl != wl:
                return False
            if wv == "nan":
                if not math.isnan(gv):
                    return False
            elif gv != wv:
                return False
    return True


def _selftest():
    failed = 0
    for label, text, want in VALID:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                got = parse(text)
        except (ValueError, PromWarning) as e:
            print(f"FAIL valid '{label}': {e}")
            failed += 1
            continue
        if want is not None and not _same(got, want):
            print(f"FAIL valid '{label}': got {got}")
            failed += 1
        else:
            print(f"ok   valid '{label}'")
    for label, text, where in INVALID:
        try:
            got = parse(text)
        except ValueError as e:
            if where in str(e):
                print(f"ok   invalid '{label}': {e}")
            else:
                print(f"FAIL invalid '{label}': error does not say {where!r}: {e}")
                failed += 1
        else:
            print(f"FAIL invalid '{label}': accepted as {got}")
            failed += 1

    # Counters without _total: a warning by default, an error with strict_names.
    text = "# TYPE ksm_full_scans counter\nksm_full_scans 9\n"
    checks = 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = parse(text)
    checks += 1
    if got["ksm_full_scans"]["samples"] != [("ksm_full_scans", {}, 9.0)] or \
            [w.category for w in caught] != [PromWarning] or "line 1" not in str(caught[0].message):
        print(f"FAIL counter without _total: {got} {[str(w.message) for w in caught]}")
        failed += 1
    try:
        parse(text, strict_names=True)
    except ValueError as e:
        checks += 1
        if "line 1" not in str(e) or "_total" not in str(e):
            print(f"FAIL strict_names message: {e}")
            failed += 1
    else:
        checks += 1
        print("FAIL strict_names accepted a counter without _total")
        failed += 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse("# TYPE ksm_full_scans_total counter\nksm_full_scans_total 9\n", strict_names=True)
    checks += 1
    try:
        parse(b"a 1\n")
    except TypeError:
        pass
    else:
        print("FAIL bytes accepted")
        failed += 1
    checks += 1

    total = len(VALID) + len(INVALID) + checks
    print(f"promparse self-test: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(_selftest())
