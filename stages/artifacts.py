"""An artifact's declaration: file name, format and schema, with the reader and writer that honour them.

Every file a stage writes is declared once, in its stage's ``contract.py``; the writing task and every
reader go through the same object, so a column, a dtype or a file name cannot drift between producer and
consumer. All I/O goes through :mod:`stages.storage`. Nothing here imports Luigi or a model library:
stage cores may import a contract for its column names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from stages import local_paths, storage

FORMATS = ("table", "array", "arrays", "json", "bytes")


@dataclasses.dataclass(frozen=True, eq=False)  # compared and hashed by identity: outputs are dict keys
class Artifact:
    """One file of a task's output folder.

    ``name`` may hold ``{field}`` placeholders (``"{image_id}.npz"``): one file per value, written as the
    task goes, so a shard's label images never sit in memory together.
    """

    name: str
    format: str
    description: str
    columns: tuple[str, ...] = ()  # table: the columns, in the order written
    dtypes: Mapping = dataclasses.field(default_factory=lambda: MappingProxyType({}))  # table: how each column is read back
    arrays: tuple[str, ...] = ()  # arrays (.npz): the arrays each file holds
    dtype: str | None = None  # array: the element type
    open_columns: bool = False  # table: more columns may follow the declared ones (e.g. Keras' metrics)

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"artifact {self.name}: format {self.format!r} is not one of {FORMATS}")
        if self.format == "table" and not self.columns:
            raise ValueError(f"artifact {self.name}: a table declares its columns")

    def file(self, **fields) -> str:
        return self.name.format(**fields)

    def uri(self, folder: str, **fields) -> str:
        return storage.join(folder, self.file(**fields))

    def read(self, folder: str, **fields):
        uri = self.uri(folder, **fields)
        if self.format == "table":
            return storage.read_table(uri, dtype=dict(self.dtypes), keep_default_na=False)
        if self.format == "array":
            return storage.read_array(uri)
        if self.format == "arrays":
            found = storage.read_arrays(uri)
            return tuple(found[name] for name in self.arrays)
        if self.format == "json":
            return storage.read_json(uri)
        return storage.read_bytes(uri)

    def write(self, folder: str, value, **fields) -> None:
        uri = self.uri(folder, **fields)
        if self.format == "table":
            missing = [column for column in self.columns if column not in value.columns]
            if missing:
                raise ValueError(f"{uri}: the table lacks the declared column(s) {missing} "
                                 f"(it has {list(value.columns)})")
            extra = [column for column in value.columns if column not in self.columns] if self.open_columns else []
            storage.write_table(uri, value[[*self.columns, *extra]])
        elif self.format == "array":
            array = np.asarray(value)
            if self.dtype and array.dtype != np.dtype(self.dtype):
                raise ValueError(f"{uri}: array of {array.dtype}, declared {self.dtype}")
            storage.write_array(uri, array)
        elif self.format == "arrays":
            storage.write_arrays(uri, **dict(zip(self.arrays, value, strict=True)))
        elif self.format == "json":
            storage.write_json(uri, json.loads(json.dumps(value, default=str)))
        else:
            storage.write_bytes(uri, value)

    @contextlib.contextmanager
    def mapped(self, folders: list[str]) -> Iterator[list[np.ndarray]]:
        """This array in each folder, memory-mapped read-only (see :func:`stages.local_paths.mapped_arrays`)."""
        if self.format != "array":
            raise TypeError(f"artifact {self.name} is a {self.format}, not an array")
        with local_paths.mapped_arrays([self.uri(folder) for folder in folders]) as arrays:
            yield arrays


def table(name: str, description: str, dtypes: Mapping, open_columns: bool = False) -> Artifact:
    """A CSV table whose columns are ``dtypes``' keys, in order."""
    return Artifact(name, "table", description, columns=tuple(dtypes), dtypes=MappingProxyType(dict(dtypes)),
                    open_columns=open_columns)
