"""EfficientAnno's shared contracts (CONTRACTS.md at the repository root), implemented once, numpy only.

Every package may import this one, the client included (DESIGN.md, "Architecture"). Import from the
modules: `labels` (the label map), `meta` (META keys and defaults), `geometry` (the sliding window's),
`answer` (the ensemble's region-first answer -> whole-volume maps).
"""
