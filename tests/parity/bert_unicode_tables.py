#!/usr/bin/env python3
"""bert_unicode_tables.py — writes src/tokenizer/bert_tables.c: the character classes that HF
tokenizers' BertNormalizer and BertPreTokenizer use, measured by running them on every code point.

Why tables and not utf8proc categories: tokenizers takes "control" (Cc/Cf/Co), "punctuation" (P*) and
"nonspacing mark" (Mn) from the `unicode_categories` crate, whose data is older than utf8proc's (about
Unicode 8), so e.g. U+2E4E (Po since Unicode 11) is not punctuation there, and U+1734 (Mc since Unicode
14) is still a nonspacing mark. Probing the installed tokenizers gives exactly what HF does:

  control   removed by BertNormalizer(clean_text) (besides U+0000 and U+FFFD)
  punct     isolated by BertPreTokenizer (non-ASCII; ASCII punctuation is a fixed set in the C code)
  mn        removed by BertNormalizer(strip_accents) from a character that NFD leaves alone

Whitespace (Rust's char::is_whitespace, the Unicode White_Space set) and the CJK ranges are short fixed
lists in the C code; make_wordpiece_fixtures.py checks them on every code point too.

The C code decomposes (NFD) and lowercases with utf8proc. Where the installed utf8proc (through
ctypes) and HF disagree on one character, two small fix-up tables say what HF does:

  nfd_keep  code points utf8proc decomposes and HF's normalization data leaves alone (U+11938)
  lower     (code point, HF lowercase) where Rust's char::to_lowercase differs from utf8proc_tolower
            (characters new in Unicode 16); U+0130 -> "i\u0307", the one lowercase of two characters,
            is handled in the C code

Run from the repo root:  python3 tests/parity/bert_unicode_tables.py  (about 10 s)
"""
import sys

OUT = "src/tokenizer/bert_tables.c"


def code_points():
    return [c for c in range(0x110000) if not (0xD800 <= c <= 0xDFFF)]


def probe():
    from tokenizers import normalizers, pre_tokenizers
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False, lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True, lowercase=False)
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    control, punct, mn = [], [], []
    cps = code_points()
    B = 4096
    for i in range(0, len(cps), B):
        chunk = cps[i:i + B]
        # clean_text: "a" + c for each c; c is kept, becomes " ", or disappears
        out = clean.normalize_str("".join("a" + chr(c) for c in chunk) + "a")
        j = 0
        for c in chunk:
            assert out[j] == "a"
            j += 1
            if out[j] == "a" and c != ord("a"):
                if c not in (0, 0xFFFD):
                    control.append(c)
            else:
                j += 1
        # punctuation: a lone c between letters is its own piece
        s = "".join("a" + chr(c) for c in chunk) + "a"
        if len(pre.pre_tokenize_str(s)) != 1:
            for c in chunk:
                if c >= 0x80 and len(pre.pre_tokenize_str("a" + chr(c) + "a")) == 3:
                    punct.append(c)
        # nonspacing marks: NFD leaves c alone and strip_accents removes it
        sep = "\x01"
        items = [c for c in chunk if c != 1]
        s = sep.join(chr(c) for c in items)
        a = nfd.normalize_str(s).split(sep)
        b = strip.normalize_str(s).split(sep)
        assert len(a) == len(items) and len(b) == len(items)
        for c, x, y in zip(items, a, b):
            if x == chr(c) and y == "":
                mn.append(c)
    return control, punct, mn


def utf8proc_diffs():
    """(nfd_keep, lower) against the installed libutf8proc, as described at the top."""
    import ctypes
    from tokenizers import normalizers
    lib = ctypes.CDLL("libutf8proc.so.2")
    lib.utf8proc_tolower.restype = ctypes.c_int32
    lib.utf8proc_tolower.argtypes = [ctypes.c_int32]
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_ssize_t,
                                            ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    DECOMPOSE = 1 << 4
    buf = (ctypes.c_int32 * 32)()
    bound = ctypes.c_int(0)
    nfd = normalizers.NFD()
    low = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=False, lowercase=True)
    cps = [c for c in code_points() if c != 1]
    sep = "\x01"
    s = sep.join(chr(c) for c in cps)
    hf_nfd = nfd.normalize_str(s).split(sep)
    hf_low = low.normalize_str(s).split(sep)
    assert len(hf_nfd) == len(cps) and len(hf_low) == len(cps)
    nfd_keep, lower = [], []
    for c, d, l in zip(cps, hf_nfd, hf_low):
        n = lib.utf8proc_decompose_char(c, buf, 32, DECOMPOSE, ctypes.byref(bound))
        mine = "".join(chr(buf[i]) for i in range(n)) if n > 0 else chr(c)
        if mine != d:
            assert d == chr(c), f"U+{c:04X}: HF NFD {d!r}, utf8proc {mine!r}: not a fix-up the C code knows"
            nfd_keep.append(c)
        if c == 0x130:
            assert l == "i\u0307", l
            continue
        assert len(l) == 1, f"U+{c:04X}: HF lowercase {l!r} is more than one character"
        if ord(l) != lib.utf8proc_tolower(c):
            lower.append((c, ord(l)))
    return nfd_keep, lower


def ranges(xs):
    out = []
    for x in sorted(xs):
        if out and out[-1][1] == x - 1:
            out[-1][1] = x
        else:
            out.append([x, x])
    return out


def c_table(name, rs, what):
    lines = [f"/* {what}: {sum(b - a + 1 for a, b in rs)} code points in {len(rs)} ranges */",
             f"const ft_cp_range {name}[] = {{"]
    row = []
    for a, b in rs:
        row.append(f"{{0x{a:X}, 0x{b:X}}}")
        if len(row) == 6:
            lines.append("    " + ", ".join(row) + ",")
            row = []
    if row:
        lines.append("    " + ", ".join(row) + ",")
    lines.append("};")
    lines.append(f"const int {name}_n = (int)(sizeof {name} / sizeof {name}[0]);")
    return "\n".join(lines) + "\n"


def main():
    import tokenizers
    control, punct, mn = probe()
    nfd_keep, lower = utf8proc_diffs()
    src = [
        "/* bert_tables.c — character classes of HF tokenizers' BertNormalizer / BertPreTokenizer.",
        " *",
        f" * GENERATED by tests/parity/bert_unicode_tables.py from tokenizers {tokenizers.__version__} by probing every",
        " * code point (see that script for why these are tables and not utf8proc categories). Do not edit. */",
        '#include "tokenizer_impl.h"',
        "",
        c_table("ft_bert_control", ranges(control), "removed by clean_text (Cc, Cf, Co of tokenizers' Unicode data; not \\t \\n \\r)"),
        c_table("ft_bert_punct", ranges(punct), "non-ASCII punctuation split off by BertPreTokenizer (P* of tokenizers' Unicode data)"),
        c_table("ft_bert_mn", ranges(mn), "nonspacing marks removed by strip_accents (Mn of tokenizers' Unicode data)"),
        c_table("ft_bert_nfd_keep", ranges(nfd_keep), "decomposed by utf8proc, left alone by HF's NFD"),
        "/* (code point, HF lowercase) where utf8proc_tolower differs: %d entries */" % len(lower),
        "const ft_cp_map ft_bert_lower_fix[] = {",
        "".join(f"    {{0x{a:X}, 0x{b:X}}},\n" for a, b in lower) + ("    {-1, -1},\n" if not lower else "") + "};",
        "const int ft_bert_lower_fix_n = %d;" % len(lower),
        "",
    ]
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(src))
    print(f"{OUT}: control {len(control)}, punct {len(punct)}, mn {len(mn)} code points; fix-ups against utf8proc: "
          f"nfd_keep {len(nfd_keep)}, lower {len(lower)}", file=sys.stderr)


if __name__ == "__main__":
    main()
