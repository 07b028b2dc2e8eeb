"""The model zoo (stages/zoo.yaml) as typed, frozen objects.

Every classifier and the detector is named once in the YAML file, with the original's settings and a
``demo`` override block; code asks the zoo by name and never types a model's settings twice. An unknown
profile, model or setting, a value of the wrong type or outside its allowed values fails loudly when the zoo
loads, naming the model or profile, the setting and what is allowed.

The allowed values below are the only copies: the classify stage (models, data, train, settings, task)
imports them from here. This module imports no Keras, since building the Luigi graph loads the zoo.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import yaml

from stages import zoo_schema as schema
from stages.zoo_schema import InvalidSetting, UnknownName

ZOO_FILE = Path(__file__).with_name("zoo.yaml")
Role = Literal["cell", "image", "detector"]
ROLES: tuple[str, ...] = ("cell", "image", "detector")
CHANNEL_SETS: tuple[str, ...] = ("rgb", "green")
# both backbone sources (efficientnet.tfkeras, keras.applications) build exactly these
BACKBONES: tuple[str, ...] = tuple(f"EfficientNetB{index}" for index in range(8))
BACKBONE_SOURCES: tuple[str, ...] = ("efficientnet", "keras_applications")
LOSSES: tuple[str, ...] = ("binary_crossentropy", "binary_focal_crossentropy")
# the augmentations that blend two samples (and so shift the BatchNorm statistics training sees)
MIXING_AUGMENTATIONS: tuple[str, ...] = ("cutmix", "mixup")
# the geometric ones, which are also the views a classifier's predictions can be averaged over (none in the
# original): a cell's class does not depend on its orientation
TEST_TIME_AUGMENTATIONS: tuple[str, ...] = ("flip", "rotate90")
AUGMENTATIONS: tuple[str, ...] = MIXING_AUGMENTATIONS + TEST_TIME_AUGMENTATIONS
LR_SCHEDULES: tuple[str, ...] = ("plateau", "cosine")
FUSION_MODES: tuple[str, ...] = ("weighted", "multiplicative")
FUSION_SOURCES: tuple[str, ...] = ("cell", "image", "detector", "image_on_cell")
# none: the original's fusion; image: every cell's fused score for a class is multiplied by the image
# models' probability of that class for its image; cells: by the cell models' mean probability of the class
# over all cells of its image; cells_max: by their highest probability of it over those cells (the field's
# evidence pooled from its cells: a class shown by one mitotic cell of twenty still counts). Either way a
# class the whole field does not show is turned down in every one of its cells: what a per-cell call without
# image labels needs, and what the challenge metric, which ranks cells only within images that hold the
# class, never rewards. Below, the source each gate reads (computed even when its fusion weight is 0).
GATE_SOURCES: dict[str, str] = {"image": "image", "cells": "cell", "cells_max": "cell"}
FUSION_GATES: tuple[str, ...] = ("none", *GATE_SOURCES)
# initial-weights names Keras resolves by downloading, impossible offline
DOWNLOADING_WEIGHTS: tuple[str, ...] = ("imagenet", "noisy-student")

# Settings only one kind of model reads: set on the other kind they would be silently ignored.
CLASSIFIER_ONLY = ("backbone", "loss", "pseudo_labels", "augment", "test_time_augment")
# Settings that change a model's predictions, not the trained model (kept out of the training fingerprint).
PREDICTION_ONLY = ("test_time_augment",)
DETECTOR_ONLY = ("architecture", "finetune_epochs")

MODEL_RULES = {
    "name": schema.TEXT,
    "role": schema.one_of(ROLES),
    "input_size": schema.integer(1),
    "channels": schema.one_of(CHANNEL_SETS),
    "epochs": schema.integer(1),
    "external_data": schema.BOOLEAN,
    "initial_weights": schema.optional(schema.Rule(
        lambda value: isinstance(value, str) and value not in DOWNLOADING_WEIGHTS,
        f"a local weights file (not {DOWNLOADING_WEIGHTS}, which download)")),
    "backbone": schema.optional(schema.one_of(BACKBONES), say_null=False),
    "loss": schema.optional(schema.one_of(LOSSES), say_null=False),
    "pseudo_labels": schema.BOOLEAN,
    "augment": schema.list_of(AUGMENTATIONS),
    "test_time_augment": schema.list_of(TEST_TIME_AUGMENTATIONS),
    "architecture": schema.optional(schema.TEXT),
    "finetune_epochs": schema.integer(0),
}


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
    test_time_augment: tuple[str, ...] = ()
    architecture: str | None = None
    finetune_epochs: int = 0

    def __post_init__(self):
        where = f"model {self.name}"
        schema.check(where, MODEL_RULES, self)
        for listed in ("augment", "test_time_augment"):  # YAML gives lists; a spec stays hashable
            object.__setattr__(self, listed, tuple(getattr(self, listed)))
        classifier = self.role != "detector"
        if classifier and not (self.backbone and self.loss):
            raise InvalidSetting(where, "a classifier needs a backbone and a loss")
        if self.role == "image" and self.channels != "green":  # whole images are stored grey (the green channel)
            raise InvalidSetting(where, f"channels {self.channels!r}: an image model reads the green channel only")
        if not classifier and not self.architecture:
            raise InvalidSetting(where, "a detector needs an architecture (e.g. yolov5su.yaml)")
        ignored = [name for name in (DETECTOR_ONLY if classifier else CLASSIFIER_ONLY) if getattr(self, name)]
        if ignored:
            raise InvalidSetting(where, f"{', '.join(ignored)}: not read by a {self.role} model")


@dataclasses.dataclass(frozen=True)
class PseudoLabelSettings:
    SETTING_PREFIX = "pseudo_label "

    positive_threshold: float
    negative_threshold: float
    folds: int
    model: str  # the cell model whose settings the fold models train with (its pseudo_labels ignored)

    def __post_init__(self):
        schema.check(None, {"positive_threshold": schema.PROBABILITY, "negative_threshold": schema.PROBABILITY,
                            "folds": schema.integer(2), "model": schema.TEXT}, self, self.SETTING_PREFIX)


@dataclasses.dataclass(frozen=True)
class FusionSettings:
    SETTING_PREFIX = "fusion "

    mode: Literal["weighted", "multiplicative"]
    weights: MappingProxyType
    gate: Literal["none", "image", "cells", "cells_max"] = "none"

    def __post_init__(self):
        schema.check(None, {"mode": schema.one_of(FUSION_MODES), "weights": schema.MAPPING,
                            "gate": schema.one_of(FUSION_GATES)}, self, self.SETTING_PREFIX)
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        unknown = set(self.weights) - set(FUSION_SOURCES)
        if unknown:
            raise UnknownName(f"unknown fusion source(s) {sorted(unknown, key=str)}; known: {FUSION_SOURCES}")
        for source, weight in self.weights.items():
            schema.check_value(None, f"fusion weight of {source}", weight, schema.NON_NEGATIVE_NUMBER)

    @property
    def sources(self) -> tuple[str, ...]:
        """Sources with a non-zero weight, and the gate's source: only these are computed."""
        return tuple(source for source in FUSION_SOURCES
                     if self.weights.get(source, 0) or GATE_SOURCES.get(self.gate) == source)


PROFILE_RULES = {
    "name": schema.TEXT,
    "description": schema.TEXT,
    "tile_size": schema.integer(1),
    "image_on_cell_model": schema.TEXT,
    "batch_size": schema.integer(1),
    "steps_per_epoch": schema.optional(schema.integer(1)),  # null: one pass over the data
    "validation_fraction": schema.FRACTION,  # the plateau schedule and YOLO both need held-out data
    "learning_rate": schema.POSITIVE_NUMBER,
    "lr_schedule": schema.one_of(LR_SCHEDULES),
    "pseudo_label": schema.instance(PseudoLabelSettings, "pseudo-label settings"),
    "fusion": schema.instance(FusionSettings, "fusion settings"),
    "models": schema.Rule(lambda value: isinstance(value, Mapping)
                          and all(isinstance(spec, ModelSpec) for spec in value.values()), "models by name"),
    "members": schema.Rule(lambda value: isinstance(value, (list, tuple)) and all(isinstance(name, str)
                                                                                  for name in value),
                           "a list of model names"),
}


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
    models: MappingProxyType  # name -> ModelSpec, in the zoo file's order: every zoo entry
    # The ensemble: the zoo entries this profile trains and fuses (empty or absent: all of them). A small
    # machine spends its steps on fewer, longer-trained members (the demo profile); every entry keeps its
    # settings, so e.g. the pseudo-label rule can still name a model outside the ensemble.
    members: tuple[str, ...] = ()

    def __post_init__(self):
        schema.check(f"profile {self.name}", PROFILE_RULES, self)
        members = tuple(self.members) or tuple(self.models)
        unknown = [name for name in members if name not in self.models]
        if unknown:
            raise UnknownName(f"profile {self.name}: unknown member(s) {unknown}; known: {list(self.models)}")
        object.__setattr__(self, "members", tuple(name for name in self.models if name in members))  # zoo order

    def model(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            raise UnknownName(f"unknown model {name!r} in profile {self.name}; known: {list(self.models)}") from None

    def role(self, role: str) -> tuple[ModelSpec, ...]:
        """The ensemble's members of this role."""
        if role not in ROLES:
            raise UnknownName(f"unknown role {role!r}; known: {ROLES}")
        return tuple(self.models[name] for name in self.members if self.models[name].role == role)

    @property
    def detector(self) -> ModelSpec:
        (spec,) = self.role("detector")
        return spec

    @property
    def image_on_cell(self) -> ModelSpec:
        return self.model(self.image_on_cell_model)


def _model(name: str, entry, profile: str, profile_names, tile_size: int) -> ModelSpec:
    where = f"model {name} in profile {profile}"
    if not isinstance(entry, Mapping):
        raise InvalidSetting(where, f"{entry!r} is not a mapping of settings")
    override = entry.get(profile) or {}
    if not isinstance(override, Mapping):
        raise InvalidSetting(where, f"its {profile} block {override!r} is not a mapping of settings")
    settings = {key: value for key, value in entry.items() if key not in profile_names}
    settings.update(override)
    if settings.get("role") == "cell":
        # A cell model reads the tiles as the tile stage cut them: one size per profile, stated once.
        if "input_size" in settings:
            raise InvalidSetting(where, f"input_size {settings['input_size']!r}: a cell model reads the profile's "
                                        f"tiles, whose size is the profile's tile_size ({tile_size})")
        settings["input_size"] = tile_size
    return schema.build(ModelSpec, {"name": name, **settings}, where)


def _profile(name: str, entry, document: dict) -> Profile:
    where = f"profile {name}"
    if not isinstance(entry, Mapping):
        raise InvalidSetting(where, f"{entry!r} is not a mapping of settings")
    entry = dict(entry)
    schema.check_value(where, "tile_size", entry.get("tile_size"), PROFILE_RULES["tile_size"])
    models = {model: _model(model, spec, name, document["profiles"], entry["tile_size"])
              for model, spec in document["models"].items()}
    for key, cls in (("pseudo_label", PseudoLabelSettings), ("fusion", FusionSettings)):
        if key in entry:  # a missing one is named by the Profile's own check below
            entry[key] = schema.build(cls, entry[key], where)
    profile = schema.build(Profile, {"name": name, **entry, "models": MappingProxyType(models)}, where)
    if profile.image_on_cell.role != "image" or profile.image_on_cell_model not in profile.members:
        raise InvalidSetting(where, f"image_on_cell_model {profile.image_on_cell_model} is not an image model of "
                                    f"the ensemble (members: {list(profile.members)})")
    fold_model = profile.model(profile.pseudo_label.model)
    if fold_model.role != "cell":
        raise InvalidSetting(where, f"pseudo_label model {profile.pseudo_label.model} is not a cell model")
    if len(profile.role("detector")) != 1:
        raise InvalidSetting(where, f"exactly one detector expected among the members {list(profile.members)}")
    return profile


@functools.cache
def load_zoo(path: str | Path = ZOO_FILE) -> MappingProxyType:
    """All profiles of the zoo file, by name."""
    document = yaml.safe_load(Path(path).read_text())
    sections = ("profiles", "models")
    if not (isinstance(document, dict) and set(document) == set(sections)
            and all(isinstance(document[key], dict) and document[key] for key in sections)):
        raise InvalidSetting(str(path), f"expected exactly the non-empty mappings {sections}")
    return MappingProxyType({name: _profile(name, entry, document) for name, entry in document["profiles"].items()})


def get_profile(name: str, path: str | Path = ZOO_FILE) -> Profile:
    profiles = load_zoo(path)
    try:
        return profiles[name]
    except KeyError:
        raise UnknownName(f"unknown profile {name!r}; known: {list(profiles)}") from None
