"""Compare the visible text of two builds of the same run's gallery, page by page.

    python benchmarks/gallery_text_diff.py OLD_RUN_DIR NEW_RUN_DIR [--pages N]

Each HTML page under OLD_RUN_DIR (and the index beside it) is parsed to its text (its
text nodes, whitespace collapsed, empty ones dropped; scripts and styles left out) and
compared passage by passage with the page of the same path under NEW_RUN_DIR; text split
differently between elements but reading the same is not a difference. Prints every page that
differs with its changed passages, then a summary of the distinct kinds of change (numbers
and individual ids masked), so that a rebuild with new templates can be checked for
differences nobody intended.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path


class _Text(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def page_text(path: Path) -> list[str]:
    """The page's text nodes, whitespace collapsed, empty ones dropped."""
    p = _Text()
    p.feed(path.read_text(encoding="utf-8"))
    return [t for t in (" ".join(part.split()) for part in p.parts) if t]


def page_kind(name: str) -> str:
    parts = name.split("/")
    return {1: "top index", 2: "run page", 3: "generation page"}.get(
        len(parts), "lineage page" if parts[-1] == "lineage.html" else "individual page")


def mask(words: list[str]) -> str:
    text = " ".join(words)
    text = re.sub(r"g\d{3}-i\d{2,}", "<id>", text)
    return re.sub(r"-?\d+(\.\d+)?(e[-+]\d+)?", "#", text)


def compare(old: list[str], new: list[str], context: int = 2) -> list[tuple[str, str, str]]:
    """(context before, old text, new text) for each changed passage."""
    out = []
    sm = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        a, b = " ".join(old[a0:a1]), " ".join(new[b0:b1])
        if op != "equal" and a.replace(" ", "") != b.replace(" ", ""):
            out.append((" | ".join(old[max(0, a0 - context):a0]), a, b))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path, help="run folder built by the old code")
    ap.add_argument("new", type=Path, help="the same run rebuilt by the new code")
    ap.add_argument("--pages", type=int, default=3, help="how many differing pages to print in full (default 3)")
    args = ap.parse_args(argv)
    pairs = [(p, args.new / p.relative_to(args.old)) for p in sorted(args.old.rglob("*.html"))]
    pairs.append((args.old.parent / "index.html", args.new.parent / "index.html"))
    kinds: Counter[tuple[str, str]] = Counter()
    kind_pages: dict[tuple[str, str], set[str]] = {}
    same, missing, shown = 0, [], 0
    for old, new in pairs:
        name = str(old.relative_to(args.old.parent))
        if not new.is_file():
            missing.append(name)
            continue
        changes = compare(page_text(old), page_text(new))
        if not changes:
            same += 1
            continue
        if shown < args.pages:
            shown += 1
            print(f"== {name}: {len(changes)} changed passages")
            for ctx, a, b in changes:
                print(f"   …{ctx[-60:]}\n     - {a[:300]}\n     + {b[:300]}")
        for _, a, b in changes:
            key = (mask(a.split()), mask(b.split()))
            kinds[key] += 1
            kind_pages.setdefault(key, set()).add(page_kind(name))
    print(f"\n{len(pairs)} pages: {same} with the same text, {len(pairs) - same - len(missing)} differing, "
          f"{len(missing)} missing in the new build {missing or ''}")
    print(f"{len(kinds)} distinct kinds of change (numbers as #, ids as <id>), most frequent first:")
    for (a, b), n in kinds.most_common():
        pages = sorted(kind_pages[(a, b)])
        print(f"  {n:5d}x on {', '.join(pages)}"
              f"\n        - {a[:240]}\n        + {b[:240]}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
