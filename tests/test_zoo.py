"""The model zoo file loads into frozen objects; every unknown name or malformed setting fails loudly."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from stages.zoo import ZOO_FILE, UnknownName, get_profile, load_zoo


def edited_zoo(tmp_path, edit):
    document = yaml.safe_load(ZOO_FILE.read_text())
    edit(document)
    path = tmp_path / "zoo.yaml"
    path.write_text(yaml.safe_dump(document))
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


def test_unknown_profile_model_and_role_name_the_known_ones():
    with pytest.raises(UnknownName, match="unknown profile 'hpa2020'.*hpa2021"):
        get_profile("hpa2020")
    with pytest.raises(UnknownName, match="unknown model 'cell.b9'.*cell.b7_e1"):
        get_profile("demo").model("cell.b9")
    with pytest.raises(UnknownName, match="unknown role"):
        get_profile("demo").role("segmenter")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["models"]["cell.b7_e1"].update(dropout=0.3), r"model cell.b7_e1: unknown setting\(s\) \['dropout'\]"),
    (lambda d: d["profiles"]["demo"].update(lr_schedule="step"), "lr_schedule 'step' is not one of"),
    (lambda d: d["profiles"]["demo"].update(image_on_cell_model="image.nope"), "unknown model 'image.nope'"),
    (lambda d: d["profiles"]["demo"]["fusion"]["weights"].update(yolo=0.1), "unknown fusion source"),
    (lambda d: d["models"]["cell.b7_e1"]["demo"].update(input_size=48), "reads 48-px input but tiles are"),
    (lambda d: d["models"]["cell.b7_e1"].update(channels="rgby"), "channels 'rgby' is not one of"),
])
def test_a_malformed_zoo_fails_at_load(tmp_path, edit, message):
    with pytest.raises((UnknownName, ValueError), match=message):
        load_zoo(edited_zoo(tmp_path, edit))
