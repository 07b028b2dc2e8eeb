"""Artifacts as local paths, for libraries that insist on one (Keras, Ultralytics, NumPy memory maps).

Part of the storage layer (:mod:`stages.storage`): a local artifact is used where it lies, an S3 object goes
through a scratch folder that is removed when the block ends, also on an error.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from stages import s3, scratch
from stages.storage import missing, is_s3, write_with


@contextlib.contextmanager
def local_copy(uri: str, suffix: str = "") -> Iterator[Path]:
    """A local file holding the artifact, for libraries that insist on a path (Keras, Ultralytics); an S3
    object is downloaded straight to a scratch folder, removed when the block ends (also on an error)."""
    if not is_s3(uri):
        if not Path(uri).exists():
            raise missing(uri)
        yield Path(uri)
        return
    with scratch.folder("stage-") as folder:
        path = Path(folder) / ("artifact" + suffix)
        s3.download(uri, path)
        yield path


@contextlib.contextmanager
def staged_output(uri: str, suffix: str = "") -> Iterator[Path]:
    """A scratch file path; when the block ends without error its content is written to ``uri`` atomically
    (streamed, never whole in memory). The scratch folder is removed either way."""
    with scratch.folder("stage-") as folder:
        path = Path(folder) / ("artifact" + suffix)
        yield path
        with open(path, "rb") as handle:
            if is_s3(uri):
                s3.upload(uri, handle)
            else:
                write_with(uri, lambda target: shutil.copyfileobj(handle, target, 1024 * 1024))


@contextlib.contextmanager
def mapped_array(uri: str) -> Iterator[np.ndarray]:
    with mapped_arrays([uri]) as (array,):
        yield array


@contextlib.contextmanager
def mapped_arrays(uris: list[str]) -> Iterator[list[np.ndarray]]:
    """The ``.npy`` artifacts as read-only memory maps, so training reads only the rows it samples: a local
    file is mapped where it lies, an S3 object is copied to a scratch folder first (removed when the block
    ends)."""
    with scratch.folder("mapped-") as folder:
        arrays = []
        for number, uri in enumerate(uris):
            path = Path(uri)
            if is_s3(uri):
                path = Path(folder) / f"{number}.npy"
                s3.download(uri, path)
            elif not path.exists():
                raise missing(uri)
            arrays.append(np.load(path, mmap_mode="r", allow_pickle=False))
        yield arrays
