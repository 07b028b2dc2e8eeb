"""match stage: detector boxes to segmented cells, one score per (cell, class) (SPEC 3.8).

``core`` is the pure matching, ``task`` the Luigi tasks (Match, MatchAll), ``contract`` the files.
"""
