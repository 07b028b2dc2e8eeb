"""segment stage: cell and nucleus label images and a per-cell table per field of view (SPEC 3.1).

``core`` holds the logic (classic and hpacellseg backends), ``contract`` the file and column names,
``task`` the Luigi tasks and the readers downstream stages use; the command that draws the outlines for a
look is :mod:`stages.dev.overlay`.
"""
