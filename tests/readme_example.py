#!/usr/bin/env python3
"""Copies the C program between the README's readme-example markers to OUTPUT, so that the
tests compile and run the example exactly as the README shows it.

    readme_example.py README.md OUTPUT
"""
import re
import sys

text = open(sys.argv[1]).read()
m = re.search(r"<!-- readme-example: begin -->\s*```c\n(.*?)```\s*<!-- readme-example: end -->",
              text, re.S)
if not m:
    sys.exit("readme_example.py: no example between the readme-example markers in " + sys.argv[1])
with open(sys.argv[2], "w") as f:
    f.write(m.group(1))
