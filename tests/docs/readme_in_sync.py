#!/usr/bin/env python3
"""README.md documents every flag and every pass option the binary has.

    python3 tests/docs/readme_in_sync.py COMPRESS README.md

Every long flag in `compress --help` and in each subcommand's --help must appear in README.md (as
`--flag`, followed by a non-name character); every option of every pass in `compress passes --json`
must appear as `option=` in that pass's row of the README's pass table (the line starting
"| `<pass>` |"). Prints each omission.
"""
import json
import re
import subprocess
import sys


def help_text(compress, *args):
    return subprocess.run([compress, *args, "--help"], capture_output=True, text=True, check=True).stdout


def main():
    compress, readme_path = sys.argv[1], sys.argv[2]
    readme = open(readme_path, encoding="utf-8").read()
    missing = []
    top = help_text(compress)
    # The "Subcommands:" block runs to the next blank line (the footer with exit codes follows).
    block = top.split("Subcommands:", 1)[1].split("\n\n", 1)[0] if "Subcommands:" in top else ""
    subcommands = re.findall(r"^\s+([a-z][\w-]*)\s{2,}", block, re.M)
    for where, text in [("compress", top)] + [(f"compress {s}", help_text(compress, s)) for s in subcommands]:
        for flag in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))):
            if flag == "--help":
                continue
            if not re.search(re.escape(flag) + r"(?![a-z0-9-])", readme):
                missing.append(f"{where}: flag {flag}")
    passes = json.loads(subprocess.run([compress, "passes", "--json"], capture_output=True, text=True, check=True).stdout)
    for p in passes:
        rows = [line for line in readme.splitlines() if line.startswith(f"| `{p['name']}` |")]
        if not rows:
            missing.append(f"pass {p['name']}: no row in the README's pass table")
            continue
        for o in p["options"]:
            if f"{o['name']}=" not in rows[0]:
                missing.append(f"pass {p['name']}: option {o['name']}= not in its README row")
    print(f"{len(subcommands)} subcommands ({', '.join(subcommands)}), {len(passes)} passes checked")
    for m in missing:
        print("missing from README.md:", m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
