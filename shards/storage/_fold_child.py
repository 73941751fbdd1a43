"""`python -m shards.storage._fold_child PARENT PATH BASE UPTO TMP`: a background
compaction's fold, in its own low-priority process (see `_compaction.fold_in_child`)."""

from __future__ import annotations

import sys

from shards.storage._compaction import child_main

if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1:]))
