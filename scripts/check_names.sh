#!/bin/sh
# check_names.sh — every function the library exports is either public or visibly internal.
#
#   public    named ft_<module>_..., declared in include/finetune/*.h
#   internal  named ft__<module>_... (two underscores), declared in a header under src/ (never installed)
#
# Lists the exported (global, defined) text symbols of the library that follow neither rule:
#   "ft_ but not in include/"  an internal helper that looks public: rename it ft__...
#   "no ft prefix"             a global name outside the library's namespace: make it static or ft__...
# Usage: scripts/check_names.sh [path/to/libfinetune.a]   (default build/libfinetune.a)
# Exit status 0 when nothing is listed, 1 otherwise.
set -eu
lib=${1:-build/libfinetune.a}
root=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$lib" ] || { echo "check_names: $lib not found (run make first)" >&2; exit 2; }
public=$(mktemp)
trap 'rm -f "$public"' EXIT
# every identifier in the code of a public header (comments stripped, macros not expanded)
for h in "$root"/include/finetune/*.h; do ${CC:-cc} -fpreprocessed -dD -E -P "$h" 2>/dev/null; done |
    tr -c 'A-Za-z0-9_' '\n' | grep '^ft_' | sort -u > "$public"
# names a header declares through a token-pasting macro: FT_OPS_DECLARE(ft_cpu_) with "void P##matmul_forward(...)"
prefixes=$(grep -ho '^[A-Z_][A-Z0-9_]*(ft_[a-z0-9_]*_)' "$root"/include/finetune/*.h | sed 's/.*(\(.*\))/\1/' | sort -u)
suffixes=$(grep -ho 'P##[A-Za-z0-9_]*' "$root"/include/finetune/*.h | sed 's/^P##//' | sort -u)
for p in $prefixes; do for x in $suffixes; do echo "$p$x"; done; done >> "$public"
nm -g --defined-only "$lib" 2>/dev/null | awk '$2 == "T" { print $3 }' | sort -u |
awk -v pub="$public" '
    BEGIN { while ((getline s < pub) > 0) ok[s] = 1 }
    /^ft__/ { next }
    /^ft_/  { if (!(ok[$0])) { print "ft_ but not in include/: " $0; bad++ } next }
            { print "no ft prefix:            " $0; bad++ }
    END { if (bad) { printf "%d exported names break the naming rule (see README, Layout)\n", bad; exit 1 } }'
