#!/bin/sh
# Branin (Dixon & Szegő 1978) as a `finetune sweep --objective-cmd`: branin.sh --x X --y Y prints f(x, y).
# x in [-5, 10], y in [0, 15]; global minimum 0.397887 at (-pi, 12.275), (pi, 2.275), (9.42478, 2.475).
exec awk -v a="$2" -v b="$4" 'BEGIN { pi = atan2(0, -1); x = a + 0; y = b + 0;
  t = y - 5.1 / (4 * pi * pi) * x * x + 5 / pi * x - 6
  printf "%.17g\n", t * t + 10 * (1 - 1 / (8 * pi)) * cos(x) + 10 }'
