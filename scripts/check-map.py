#!/usr/bin/env python3
"""Fails when ARCHITECTURE.md names a file, folder or item the code no longer has.

    python3 scripts/check-map.py [ARCHITECTURE.md]

The map is only useful while it is true, and code moves. Every `backticked` span of
the map is read:

- a path (`client/src/install/`, `scripts/check-map.py`) must exist, unless it is
  one inside an install root or a site (`ROOT/current`, `channels/<channel>.json`);
- a Rust name (`UpdatePlan`, `Cache::release_indexes`, `install::commit::recover`,
  `Error::Net`, `plan_release`) must be defined somewhere in the workspace's
  sources: its last segment as a `fn`, `struct`, `enum`, `trait`, `type`, `const`,
  `static` or `mod`, an enum variant or a field;
- anything else (commands, file names inside a root, JSON) is not checked.

Exits 1 naming every span that does not resolve.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPAN = re.compile(r"`([^`\n]+)`")
RUST_NAME = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*$")
# The first segments of paths inside an install root or a site, which the map shows
# but the repository does not hold.
LAYOUT_FOLDERS = {"ROOT", "channels", "blobs", "roots", "releases", "slots", "current"}
PATH_TOKEN = re.compile(r"^[A-Za-z0-9_.\-/<>]+$")


def sources() -> str:
    """The text of every Rust source of the workspace, tests and fuzz targets included."""
    texts = []
    for path in REPO.rglob("*.rs"):
        if "target" in path.relative_to(REPO).parts:
            continue
        texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


def defined(name: str, code: str) -> bool:
    """Whether `name` (the last segment of a Rust path) is defined in `code`."""
    escaped = re.escape(name)
    item = re.compile(
        rf"\b(?:fn|struct|enum|trait|type|const|static|mod)\s+{escaped}\b"
    )
    variant = re.compile(rf"^\s+{escaped}\s*(?:[({{,]|$)", re.MULTILINE)
    field = re.compile(rf"^\s+(?:pub(?:\([a-z]+\))?\s+)?{escaped}:", re.MULTILINE)
    return bool(item.search(code) or variant.search(code) or field.search(code))


def check(map_path: Path) -> list[str]:
    text = map_path.read_text(encoding="utf-8")
    code = sources()
    problems = []
    for line_number, line in enumerate(text.splitlines(), 1):
        for span in SPAN.findall(line):
            span = span.strip()
            first = span.split("/", 1)[0]
            if "/" in span and PATH_TOKEN.match(span) and first not in LAYOUT_FOLDERS:
                if "<" in span:
                    # A pattern such as `client-cli/src/<command>.rs`: its folder.
                    span_path = span.rsplit("/", 1)[0]
                else:
                    span_path = span
                if not (REPO / span_path).exists():
                    problems.append(f"{map_path.name}:{line_number}: no such path `{span}`")
            elif RUST_NAME.match(span) and (
                "::" in span
                or (span[0].isupper() and any(c.islower() for c in span))
                or "_" in span.strip("_")
            ):
                last = span.rsplit("::", 1)[-1]
                if not defined(last, code):
                    problems.append(f"{map_path.name}:{line_number}: nothing defines `{span}`")
    return problems


def main() -> int:
    map_path = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "ARCHITECTURE.md"
    problems = check(map_path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} name(s) in {map_path.name} do not resolve; update the map")
        return 1
    print(f"ok    {map_path.name}: every path and name resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
