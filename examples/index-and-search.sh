#!/usr/bin/env bash
# Index a folder of music and search it by description, in a throwaway beets
# library that leaves your own beets config and library alone.
#
#   bash examples/index-and-search.sh MUSIC_DIR ["QUERY"]
#
# Without BEETSDIR the library goes to a new temporary folder, which is kept
# (search it again without re-indexing) and named at the end with the
# commands to reuse or remove it. Set BEETSDIR to use a folder of your own
# between runs (re-runs import only folders not seen before and embed only
# what is new or changed).
set -euo pipefail
if [ $# -lt 1 ] || [ ! -d "$1" ]; then
  echo "usage: $0 MUSIC_DIR [\"QUERY\"]   (MUSIC_DIR must be a folder)" >&2
  exit 2
fi
music=$(cd "$1" && pwd)
query=${2:-"calm piano without drums"}
throwaway=
if [ -z "${BEETSDIR:-}" ]; then
  throwaway=$(mktemp -d -t beets-clap-library-XXXXXX)
  export BEETSDIR=$throwaway
  # Said last, whether the run ends well or not.
  trap 'echo "---"
echo "The library is kept in $throwaway"
echo "  search it again:  BEETSDIR=$throwaway beet clap \"QUERY\""
echo "  remove it:        rm -r $throwaway"' EXIT
fi
mkdir -p "$BEETSDIR"
if [ ! -f "$BEETSDIR/config.yaml" ]; then
  cat > "$BEETSDIR/config.yaml" <<YAML
directory: $music
library: $BEETSDIR/library.db
plugins: clap
# A new library has nothing to back up before beets' schema migrations.
create_backup_before_migrations: no
import:
  copy: no
  move: no
  write: no
  autotag: no
  quiet: yes
  # Untagged files all have the same (empty) album and artist: in quiet mode
  # beets would take every folder after the first for a duplicate album and
  # skip it, so keep them all.
  duplicate_action: keep
  # A re-run skips the folders it imported before: importing them again
  # would replace their items with new ones (new ids), and every vector,
  # kept by item id, would be computed again. Files added later to an
  # imported folder are therefore not picked up (beets' incremental mode).
  incremental: yes
  log: $BEETSDIR/import.log
YAML
fi
echo "beets library: $BEETSDIR/library.db"
beet import -q "$music"
beet clap-index
echo "--- beet clap \"$query\""
# Untagged files have no title: the path alone says which they are; a
# missing artist is left out rather than printed as " - ".
beet clap "$query" -n 10 -f '$clap_score  %if{$title,%if{$artist,$artist - }$title  ($path),$path}'
