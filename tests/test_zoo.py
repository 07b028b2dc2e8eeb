"""The model zoo file loads into frozen objects; every unknown name or malformed setting fails loudly."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from stages.zoo import (
    AUGMENTATIONS,
    BACKBONES,
    CHANNEL_SETS,
    FUSION_MODES,
    LOSSES,
    LR_SCHEDULES,
    ROLES,
    TEST_TIME_AUGMENTATIONS,
    ZOO_FILE,
    FusionSettings,
    InvalidSetting,
    UnknownName,
    get_profile,
    load_zoo,
)


def edited_zoo(tmp_path, edit):
    document = yaml.safe_load(ZOO_FILE.read_text())
    edit(document)
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))  # the file's order: hpa2021 loads first
    return path


def test_demo_overrides_apply_and_the_objects_are_frozen():
    faithful, demo = get_profile("hpa2021"), get_profile("demo")
    assert faithful.model("cell.b7_e1").backbone == "EfficientNetB7"
    assert demo.model("cell.b7_e1").backbone == "EfficientNetB0"
    assert demo.model("cell.b7_e1").input_size == demo.tile_size
    assert (faithful.lr_schedule, demo.lr_schedule) == ("plateau", "cosine")
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.model("cell.b7_e1").epochs = 3
    with pytest.raises(TypeError):
        demo.models["cell.b7_e1"] = None


def test_cell_models_read_their_profiles_tile_size(tmp_path):
    profiles = load_zoo(edited_zoo(tmp_path, lambda d: d["profiles"]["demo"].update(tile_size=96)))
    for name, tile_size in (("hpa2021", 256), ("demo", 96)):
        profile = profiles[name]
        assert profile.tile_size == tile_size
        assert {spec.input_size for spec in profile.models.values() if spec.role == "cell"} == {tile_size}
    assert profiles["demo"].image_on_cell.input_size == get_profile("demo").image_on_cell.input_size != 96


def test_a_profile_trains_and_fuses_its_members_only():
    faithful, demo = get_profile("hpa2021"), get_profile("demo")
    assert faithful.members == tuple(faithful.models)  # no members list: the whole zoo, in the file's order
    assert len(faithful.role("cell")) == 5 and len(faithful.role("image")) == 3
    assert [spec.name for spec in demo.role("cell")] == ["cell.b7_ext_e1"]
    assert [spec.name for spec in demo.role("image")] == [demo.image_on_cell_model]
    assert demo.detector.name == "yolo.v5s"
    # every entry keeps its settings: the pseudo-label rule's model (and any model by name) still resolves
    assert demo.model(demo.pseudo_label.model).role == "cell" and "cell.b7_e1" not in demo.members


def test_unknown_profile_model_and_role_name_the_known_ones():
    with pytest.raises(UnknownName, match="unknown profile 'hpa2020'.*hpa2021"):
        get_profile("hpa2020")
    with pytest.raises(UnknownName, match="unknown model 'cell.b9'.*cell.b7_e1"):
        get_profile("demo").model("cell.b9")
    with pytest.raises(UnknownName, match="unknown role"):
        get_profile("demo").role("segmenter")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["models"]["cell.b7_e1"].update(dropout=0.3),
     r"model cell.b7_e1 in profile hpa2021: unknown setting\(s\) \['dropout'\]"),
    (lambda d: d["profiles"]["demo"].update(lr_schedule="step"), "lr_schedule 'step' is not one of"),
    (lambda d: d["profiles"]["demo"].update(image_on_cell_model="image.nope"), "unknown model 'image.nope'"),
    (lambda d: d["profiles"]["demo"]["fusion"]["weights"].update(yolo=0.1), "unknown fusion source"),
    (lambda d: d["models"]["cell.b7_ext_e1"]["demo"].update(input_size=48),
     r"model cell.b7_ext_e1 in profile demo: input_size 48: a cell model reads the profile's tiles, whose size "
     r"is the profile's tile_size \(80\)"),
    (lambda d: d["profiles"]["demo"].pop("tile_size"), "profile demo: tile_size None is not an integer >= 1"),
    (lambda d: d["profiles"]["demo"].update(members=["cell.b7_ext_e1", "image.b7_600_noext", "yolo.v5"]),
     r"profile demo: unknown member\(s\) \['yolo.v5'\]; known: \['cell.b0_ext_pseudo_e10'"),
    (lambda d: d["profiles"]["demo"].update(members=["cell.b7_ext_e1", "image.b7_600_noext"]),
     r"exactly one detector expected among the members \['cell.b7_ext_e1', 'image.b7_600_noext'\]"),
    (lambda d: d["profiles"]["demo"].update(members=["cell.b7_e1", "image.b7_600_ext", "yolo.v5s"]),
     "image_on_cell_model image.b7_600_noext is not an image model of the ensemble"),
    (lambda d: d["profiles"]["demo"].update(members="yolo.v5s"), "members 'yolo.v5s' is not a list of model names"),
    (lambda d: d["models"]["cell.b7_e1"].update(channels="rgby"), "channels 'rgby' is not one of"),
])
def test_a_malformed_zoo_fails_at_load(tmp_path, edit, message):
    with pytest.raises((UnknownName, ValueError), match=message):
        load_zoo(edited_zoo(tmp_path, edit))


def set_model(name, profile=None, **settings):
    """An edit that sets ``settings`` on zoo model ``name``: its base entry, or its ``profile`` override block."""
    return lambda d: (d["models"][name] if profile is None else d["models"][name][profile]).update(settings)


def set_profile(name, *keys, **settings):
    def edit(d):
        entry = d["profiles"][name]
        for key in keys:
            entry = entry[key]
        entry.update(settings)
    return edit


@pytest.mark.parametrize("edit, start, allowed", [
    (set_model("cell.b7_e1", "demo", backbone="EfficientNetB9"),
     "model cell.b7_e1 in profile demo: backbone 'EfficientNetB9' is not", BACKBONES),
    (set_model("image.b7_600_ext", loss="focal"),
     "model image.b7_600_ext in profile hpa2021: loss 'focal' is not", LOSSES),
    (set_model("cell.b0_ext_pseudo_e10", "demo", augment=["flip", "cutmixx"]),
     "model cell.b0_ext_pseudo_e10 in profile demo: augment ['flip', 'cutmixx'] is not", AUGMENTATIONS),
    (set_model("cell.b7_e1", "demo", test_time_augment=["flip", "transpose"]),
     "model cell.b7_e1 in profile demo: test_time_augment ['flip', 'transpose'] is not", TEST_TIME_AUGMENTATIONS),
    (set_model("cell.b7_e1", channels="rgby"),
     "model cell.b7_e1 in profile hpa2021: channels 'rgby' is not", CHANNEL_SETS),
    (set_profile("demo", lr_schedule="step"), "profile demo: lr_schedule 'step' is not", LR_SCHEDULES),
    (set_model("image.b7_720_ext", role="segmenter"),
     "model image.b7_720_ext in profile hpa2021: role 'segmenter' is not", ROLES),
    (set_profile("hpa2021", "fusion", mode="sum"), "profile hpa2021: fusion mode 'sum' is not", FUSION_MODES),
    (set_model("cell.b7_e1", epochs="ten"),
     "model cell.b7_e1 in profile hpa2021: epochs 'ten' is not", "an integer >= 1"),
    (set_model("image.b7_600_ext", "demo", input_size=1.5),
     "model image.b7_600_ext in profile demo: input_size 1.5 is not", "an integer >= 1"),
    (set_model("cell.b7_e1", epochs=True),
     "model cell.b7_e1 in profile hpa2021: epochs True is not", "an integer >= 1"),
    (set_model("cell.b7_e1", external_data="yes"),
     "model cell.b7_e1 in profile hpa2021: external_data 'yes' is not", "true or false"),
    (set_model("cell.b7_e1", augment="cutmix"),
     "model cell.b7_e1 in profile hpa2021: augment 'cutmix' is not", f"a list of items from {AUGMENTATIONS}"),
    (set_model("yolo.v5s", finetune_epochs=-1),
     "model yolo.v5s in profile hpa2021: finetune_epochs -1 is not", "an integer >= 0"),
    (set_model("cell.b7_e1", initial_weights="imagenet"),
     "model cell.b7_e1 in profile hpa2021: initial_weights 'imagenet' is not", "which download"),
    (set_profile("demo", "pseudo_label", folds=1), "profile demo: pseudo_label folds 1 is not", "an integer >= 2"),
    (set_profile("demo", "pseudo_label", positive_threshold=1.5),
     "profile demo: pseudo_label positive_threshold 1.5 is not", "a number in [0, 1]"),
    (set_profile("demo", "fusion", "weights", image=-0.3),
     "profile demo: fusion weight of image -0.3 is not", "a number >= 0"),
    (set_profile("demo", "fusion", "weights", image="high"),
     "profile demo: fusion weight of image 'high' is not", "a number >= 0"),
    (set_profile("demo", batch_size=0), "profile demo: batch_size 0 is not", "an integer >= 1"),
    (set_profile("demo", steps_per_epoch=2.5), "profile demo: steps_per_epoch 2.5 is not", "null or an integer >= 1"),
    (set_profile("demo", validation_fraction=1.0),
     "profile demo: validation_fraction 1.0 is not", "a number in (0, 1)"),
    (set_profile("demo", learning_rate="fast"), "profile demo: learning_rate 'fast' is not", "a number > 0"),
])
def test_a_bad_value_names_its_model_or_profile_the_value_and_what_is_allowed(tmp_path, edit, start, allowed):
    with pytest.raises(InvalidSetting) as caught:
        load_zoo(edited_zoo(tmp_path, edit))
    message = str(caught.value)
    assert message.startswith(start), message
    assert str(allowed) in message, message


@pytest.mark.parametrize("edit, message", [
    (set_model("yolo.v5s", backbone="EfficientNetB0"),
     "model yolo.v5s in profile hpa2021: backbone: not read by a detector"),
    (set_model("yolo.v5s", test_time_augment=["flip"]),
     "model yolo.v5s in profile hpa2021: test_time_augment: not read by a detector"),
    (set_model("image.b7_600_ext", "demo", channels="rgb"),
     "model image.b7_600_ext in profile demo: channels 'rgb': an image model reads the green channel only"),
    (set_model("cell.b7_e1", "demo", finetune_epochs=2),
     "model cell.b7_e1 in profile demo: finetune_epochs: not read by"),
    (lambda d: d["models"]["cell.b7_e1"].pop("channels"), r"cell.b7_e1 in profile hpa2021: missing setting\(s\)"),
    (set_model("cell.b7_e1", demo="small"), "cell.b7_e1 in profile demo: its demo block 'small' is not a mapping"),
    (set_profile("demo", image_on_cell_model="cell.b7_e1"), "image_on_cell_model cell.b7_e1 is not an image model"),
    (lambda d: d["profiles"]["demo"]["pseudo_label"].update(margin=0.1),
     r"profile demo: unknown pseudo_label setting\(s\) \['margin'\]"),
    (lambda d: d.update(defaults={}), "expected exactly the non-empty mappings"),
])
def test_settings_at_odds_with_the_model_or_the_file_fail_at_load(tmp_path, edit, message):
    with pytest.raises((UnknownName, InvalidSetting), match=message):
        load_zoo(edited_zoo(tmp_path, edit))


def test_objects_built_in_code_are_checked_too():
    spec = get_profile("demo").model("cell.b7_e1")
    with pytest.raises(InvalidSetting, match=r"^model cell.b7_e1: loss 'focal' is not one of \('binary_crossentropy'"):
        dataclasses.replace(spec, loss="focal")
    assert dataclasses.replace(spec, augment=["flip"]).augment == ("flip",)  # kept hashable
    assert dataclasses.replace(spec, test_time_augment=["rotate90"]).test_time_augment == ("rotate90",)
    with pytest.raises(InvalidSetting, match="fusion mode 'sum' is not one of"):
        FusionSettings("sum", {"cell": 1.0})
    with pytest.raises(UnknownName, match="unknown fusion source"):
        FusionSettings("weighted", {"yolo": 1.0})


def test_loading_the_zoo_imports_no_deep_learning_framework():
    # a bare `stages` package: its __init__ imports every stage's tasks, and this is about the zoo alone
    code = f"""
import sys, types
package = types.ModuleType("stages")
package.__path__ = [{str(ZOO_FILE.parent)!r}]
sys.modules["stages"] = package
import stages.zoo
stages.zoo.load_zoo()
print(sorted({{name.split(".")[0] for name in sys.modules}} & {{"keras", "tensorflow", "torch", "jax"}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
