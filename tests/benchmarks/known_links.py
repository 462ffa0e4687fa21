"""Which tags the text encoder links to concepts the lexicon knows.

A concept the lexicon knows but links to no tag ("k-pop", "oboe",
"uplifting") reaches tags only through the text encoder, judged by the
lexicon's kinds (taglinks._by_kind). This lists, for every concept of the
lexicon, wanted and negated, the tags that link reaches, as `beet clap`
resolves them (taglinks.link_tags), so that a wrong one can be read off:

    python tests/benchmarks/known_links.py --bundle models/clap-default

One line per (concept, wanted or negated) with any tag, then a JSON
summary (how many such links; docs/benchmarks.md, "The text encoder's
links judged by kind").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, required=True)
    args = parser.parse_args(argv)

    from beetsplug.clap.lexicon import lexicon
    from beetsplug.clap.model import Bundle
    from beetsplug.clap.taglinks import bundle_tag_meanings, link_tags

    bundle = Bundle.load(args.bundle)
    names = list(bundle.tag_names)
    meanings = bundle_tag_meanings(bundle)
    rows = []
    for concept in lexicon().concepts:
        for wanted in (True, False):
            match = link_tags(bundle, concept, wanted)
            if match.by != "text encoder" or not match.present:
                continue
            said = sorted({meanings[i].concept or names[i] for i in match.present})
            rows.append(
                {
                    "concept": concept,
                    "kind": lexicon().kind_of(concept),
                    "wanted": wanted,
                    "tags": said,
                }
            )
            how = "wanted " if wanted else "negated"
            print(f"{how} {concept} ({rows[-1]['kind']}): {', '.join(said)}")
    summary = {
        "bundle": str(args.bundle),
        "links": len(rows),
        "wanted": sum(r["wanted"] for r in rows),
        "negated": sum(not r["wanted"] for r in rows),
    }
    print(json.dumps({"known_links": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
