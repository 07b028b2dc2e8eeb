"""The model zoo (stages/zoo.yaml) as typed, frozen objects.

Every classifier and the detector is named once in the YAML file, with the original's settings and a
``demo`` override block; code asks the zoo by name and never types a model's settings twice. An unknown
profile, model or setting fails loudly with the names that do exist.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import yaml

ZOO_FILE = Path(__file__).with_name("zoo.yaml")
Role = Literal["cell", "image", "detector"]
ROLES: tuple[str, ...] = ("cell", "image", "detector")
CHANNEL_SETS: tuple[str, ...] = ("rgb", "green")
FUSION_SOURCES: tuple[str, ...] = ("cell", "image", "detector", "image_on_cell")
LR_SCHEDULES: tuple[str, ...] = ("plateau", "cosine")


class UnknownName(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    role: Role
    input_size: int
    channels: str
    epochs: int
    external_data: bool
    initial_weights: str | None = None
    backbone: str | None = None
    loss: str | None = None
    pseudo_labels: bool = False
    augment: tuple[str, ...] = ()
    architecture: str | None = None
    finetune_epochs: int = 0

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"model {self.name}: role {self.role!r} is not one of {ROLES}")
        if self.channels not in CHANNEL_SETS:
            raise ValueError(f"model {self.name}: channels {self.channels!r} is not one of {CHANNEL_SETS}")
        if self.role != "detector" and not (self.backbone and self.loss):
            raise ValueError(f"model {self.name}: a classifier needs a backbone and a loss")
        if self.role == "detector" and not self.architecture:
            raise ValueError(f"model {self.name}: a detector needs an architecture (e.g. yolov5su.yaml)")


@dataclasses.dataclass(frozen=True)
class PseudoLabelSettings:
    positive_threshold: float
    negative_threshold: float
    folds: int
    model: str  # the cell model whose settings the fold models train with (its pseudo_labels ignored)


@dataclasses.dataclass(frozen=True)
class FusionSettings:
    mode: Literal["weighted", "multiplicative"]
    weights: MappingProxyType

    def __post_init__(self):
        if self.mode not in ("weighted", "multiplicative"):
            raise ValueError(f"fusion mode {self.mode!r} is not 'weighted' or 'multiplicative'")
        unknown = set(self.weights) - set(FUSION_SOURCES)
        if unknown:
            raise UnknownName(f"unknown fusion source(s) {sorted(unknown)}; known: {FUSION_SOURCES}")

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources with a non-zero weight: only these are computed at all."""
        return tuple(source for source in FUSION_SOURCES if self.weights.get(source, 0))


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    tile_size: int
    image_on_cell_model: str
    batch_size: int
    steps_per_epoch: int | None
    validation_fraction: float
    learning_rate: float  # Adam's (the peak of the cosine schedule)
    lr_schedule: str  # one of LR_SCHEDULES
    pseudo_label: PseudoLabelSettings
    fusion: FusionSettings
    models: MappingProxyType  # name -> ModelSpec, in the zoo file's order

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"profile {self.name}: lr_schedule {self.lr_schedule!r} is not one of {LR_SCHEDULES}")

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownName(f"unknown model {name!r} in profile {self.name}; known: {list(self.models)}") from None

    def role(self, role: str) -> tuple[ModelSpec, ...]:
        if role not in ROLES:
            raise UnknownName(f"unknown role {role!r}; known: {ROLES}")
        return tuple(spec for spec in self.models.values() if spec.role == role)

    @property
    def detector(self) -> ModelSpec:
        (spec,) = self.role("detector")
        return spec

    @property
    def image_on_cell(self) -> ModelSpec:
        return self.model(self.image_on_cell_model)


def _strict(cls, values: dict, where: str):
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise UnknownName(f"{where}: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**values)


def _model(name: str, entry: dict, profile: str, profile_names) -> ModelSpec:
    settings = {key: value for key, value in entry.items() if key not in profile_names}
    settings.update(entry.get(profile) or {})
    if "augment" in settings:
        settings["augment"] = tuple(settings["augment"])
    return _strict(ModelSpec, {"name": name, **settings}, f"model {name}")


@functools.cache
def load_zoo(path: str | Path = ZOO_FILE) -> MappingProxyType:
    """All profiles of the zoo file, by name."""
    document = yaml.safe_load(Path(path).read_text())
    profiles = {}
    for name, entry in document["profiles"].items():
        entry = dict(entry)
        models = {model: _model(model, spec, name, document["profiles"]) for model, spec in document["models"].items()}
        entry["pseudo_label"] = _strict(PseudoLabelSettings, entry["pseudo_label"], f"profile {name} pseudo_label")
        fusion = dict(entry["fusion"])
        fusion["weights"] = MappingProxyType(dict(fusion["weights"]))
        entry["fusion"] = _strict(FusionSettings, fusion, f"profile {name} fusion")
        profile = _strict(Profile, {"name": name, **entry, "models": MappingProxyType(models)}, f"profile {name}")
        profile.image_on_cell  # an unknown image-on-cell model fails at load, not mid-run
        if profile.model(profile.pseudo_label.model).role != "cell":
            raise ValueError(f"profile {name}: pseudo_label model {profile.pseudo_label.model} is not a cell model")
        for spec in profile.role("cell"):
            if spec.input_size != profile.tile_size:
                raise ValueError(f"profile {name}: cell model {spec.name} reads {spec.input_size}-px input but "
                                 f"tiles are {profile.tile_size} px")
        if len(profile.role("detector")) != 1:
            raise ValueError(f"profile {name}: exactly one detector expected")
        profiles[name] = profile
    return MappingProxyType(profiles)


def get_profile(name: str, path: str | Path = ZOO_FILE) -> Profile:
    profiles = load_zoo(path)
    try:
        return profiles[name]
    except KeyError:
        raise UnknownName(f"unknown profile {name!r}; known: {list(profiles)}") from None
