"""`make demo`: the main job end to end on the embedded default (grows with the serving path)."""

import sys

print("EfficientAnno demo: the post-processing lands first; see README.md", file=sys.stderr)
