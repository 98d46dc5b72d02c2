"""Shared by the benchmark scripts that write their figures themselves:
one `## Heading` section of docs/benchmarks.md replaced (or appended)."""
import os


def replace_section(docs, text):
    """Put `text`, which starts with its `## ` heading, in place of the
    section of that heading in `docs` (up to the next `## `), or at the end."""
    heading = text.split("\n", 1)[0]
    old = open(docs).read() if os.path.exists(docs) else "# Benchmarks\n\n"
    start = old.find(heading)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + 3)
        new = old[:start] + text + (old[nxt + 1:] if nxt >= 0 else "")
    open(docs, "w").write(new)
