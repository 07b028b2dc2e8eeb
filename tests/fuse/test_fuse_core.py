"""Fusion of score tables: formulas, source selection, key alignment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stages.classes import NUM_CLASSES, SCORE_COLUMNS
from stages.fuse import core
from stages.zoo import get_profile


def table(keys, seed=0, values=None):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(keys, columns=["ID", "cell_id"])
    scores = rng.uniform(0.01, 1.0, (len(keys), NUM_CLASSES)) if values is None else np.asarray(values, float)
    frame[list(SCORE_COLUMNS)] = scores
    return frame


KEYS = [("a", 1), ("a", 2), ("b", 1), ("b", 3)]


def scores_of(frame):
    return frame[list(SCORE_COLUMNS)].to_numpy()


def test_weighted_is_the_spec_formula_and_means_model_tables():
    cells = [table(KEYS, 1), table(KEYS, 2)]
    images = [table(KEYS, 3), table(KEYS, 4), table(KEYS, 5)]
    detector, image_on_cell = table(KEYS, 6), table(KEYS, 7)
    fused = core.fuse(
        {"cell": cells, "image": images, "detector": detector, "image_on_cell": image_on_cell},
        {"cell": 0.5, "image": 0.3, "detector": 0.1, "image_on_cell": 0.1},
    )
    expected = (
        0.5 * (scores_of(cells[0]) + scores_of(cells[1])) / 2
        + 0.3 * sum(scores_of(frame) for frame in images) / 3
        + 0.1 * scores_of(detector)
        + 0.1 * scores_of(image_on_cell)
    )
    assert list(fused.columns) == ["ID", "cell_id", *SCORE_COLUMNS]
    assert list(zip(fused["ID"], fused["cell_id"])) == KEYS
    np.testing.assert_allclose(scores_of(fused), expected, rtol=1e-12)


def test_profile_weights_work_as_given():
    profile = get_profile("demo")
    sources = {source: table(KEYS, index) for index, source in enumerate(profile.fusion.sources)}
    fused = core.fuse(sources, profile.fusion.weights, profile.fusion.mode)
    assert len(fused) == len(KEYS)


def test_rows_align_by_key_not_by_position():
    first = table(KEYS, 1)
    shuffled = first.iloc[[3, 1, 0, 2]].reset_index(drop=True)
    fused = core.fuse({"cell": first, "image": shuffled}, {"cell": 0.5, "image": 0.5})
    np.testing.assert_allclose(scores_of(fused), scores_of(first), rtol=1e-12)


def test_zero_or_absent_weight_source_is_not_used_and_not_needed():
    cell = table(KEYS, 1)
    garbage = table([("zzz", 9)], 2)  # would be a key mismatch if it were used
    fused = core.fuse({"cell": cell, "detector": garbage}, {"cell": 0.5, "detector": 0.0, "image": 0})
    np.testing.assert_allclose(scores_of(fused), scores_of(cell), rtol=1e-12)


def test_weights_are_normalised_when_a_source_is_left_out():
    cell, image = table(KEYS, 1), table(KEYS, 2)
    fused = core.fuse({"cell": cell, "image": image}, {"cell": 0.5, "image": 0.3})
    np.testing.assert_allclose(scores_of(fused), (0.5 * scores_of(cell) + 0.3 * scores_of(image)) / 0.8)


def test_multiplicative_is_the_weighted_geometric_mean():
    cell, detector = table(KEYS, 1), table(KEYS, 2)
    fused = core.fuse({"cell": cell, "detector": detector}, {"cell": 0.75, "detector": 0.25}, "multiplicative")
    np.testing.assert_allclose(scores_of(fused), scores_of(cell) ** 0.75 * scores_of(detector) ** 0.25, rtol=1e-10)
    zero = table(KEYS, values=np.zeros((len(KEYS), NUM_CLASSES)))
    fused = core.fuse({"cell": cell, "detector": zero}, {"cell": 0.5, "detector": 0.5}, "multiplicative")
    assert (scores_of(fused) > 0).all() and (scores_of(fused) < scores_of(cell)).all()


def test_mismatched_keys_are_an_error_naming_the_sources():
    with pytest.raises(core.KeyMismatch, match=r"cell and detector.*1 .*only in cell.*\('b', 3\)"):
        core.fuse({"cell": table(KEYS), "detector": table(KEYS[:3])}, {"cell": 1, "detector": 1})
    with pytest.raises(core.KeyMismatch, match="image"):
        core.fuse({"image": [table(KEYS), table(KEYS[:3] + [("c", 1)])]}, {"image": 1})
    with pytest.raises(core.KeyMismatch, match="duplicated"):
        core.fuse({"cell": table(KEYS + [("a", 1)])}, {"cell": 1})


def test_bad_configuration_is_an_error():
    with pytest.raises(ValueError, match="no table was given"):
        core.fuse({"cell": table(KEYS)}, {"cell": 0.5, "image": 0.5})
    with pytest.raises(ValueError, match="mode"):
        core.fuse({"cell": table(KEYS)}, {"cell": 1}, "additive")
    with pytest.raises(ValueError, match="negative"):
        core.fuse({"cell": table(KEYS)}, {"cell": 1, "image": -1})
    with pytest.raises(ValueError, match="positive weight"):
        core.fuse({"cell": table(KEYS)}, {"cell": 0})
    with pytest.raises(ValueError, match="NaN"):
        core.fuse({"cell": table(KEYS, values=np.full((4, NUM_CLASSES), np.nan))}, {"cell": 1})
    with pytest.raises(ValueError, match="missing column"):
        core.fuse({"cell": table(KEYS).drop(columns="class_7")}, {"cell": 1})


def test_the_image_gate_multiplies_the_fusion_by_the_image_models_probability():
    cell, detector = table(KEYS, 1), table(KEYS, 2)
    images = [table(KEYS, 3), table(KEYS, 4)]
    weights = {"cell": 0.7, "detector": 0.3}  # the image models gate without a weight of their own
    plain = core.fuse({"cell": cell, "detector": detector}, weights)
    gated = core.fuse({"cell": cell, "detector": detector, "image": images}, weights, gate="image")
    np.testing.assert_allclose(scores_of(gated), scores_of(plain) * (scores_of(images[0]) + scores_of(images[1])) / 2)
    with pytest.raises(ValueError, match=r"no table was given.*\['image'\]|\['image'\].*no table"):
        core.fuse({"cell": cell, "detector": detector}, weights, gate="image")
    with pytest.raises(ValueError, match="fusion gate 'detector' is not one of"):
        core.fuse({"cell": cell}, {"cell": 1}, gate="detector")


def test_the_cells_gate_multiplies_the_fusion_by_the_cell_models_mean_over_each_image():
    shuffled = [KEYS[index] for index in (3, 0, 2, 1)]  # tables arrive in any order
    cells = [table(shuffled, 1), table(shuffled, 2)]
    image = table(KEYS, 3)
    weights = {"cell": 0.2, "image": 0.8}
    plain = core.fuse({"cell": cells, "image": image}, weights)
    gated = core.fuse({"cell": cells, "image": image}, weights, gate="cells")
    cell = core.mean_tables(cells)  # sorted: a1, a2, b1, b3
    per_image = scores_of(cell).reshape(2, 2, NUM_CLASSES).mean(axis=1)  # image a, image b
    np.testing.assert_allclose(scores_of(gated), scores_of(plain) * np.repeat(per_image, 2, axis=0))
    assert not np.allclose(per_image[0], per_image[1])  # each image gets its own cells' mean
    # the gate's source is read even without a weight of its own
    image_only = core.fuse({"cell": cells, "image": image}, {"image": 1}, gate="cells")
    np.testing.assert_allclose(scores_of(image_only), scores_of(image) * np.repeat(per_image, 2, axis=0))
    with pytest.raises(ValueError, match=r"\['cell'\]"):
        core.fuse({"image": image}, {"image": 1}, gate="cells")


def test_the_cells_max_gate_multiplies_by_each_images_highest_cell_score():
    keys = [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("b", 2)]
    values = np.full((5, NUM_CLASSES), 0.1)
    values[1, 11] = 0.9  # one cell of image a shows class 11: the image shows it
    values[3:, 11] = 0.3  # image b's cells are all lukewarm about it
    cell, detector = table(keys, values=values), table(keys, 1)
    weights = {"cell": 0.5, "detector": 0.5}
    plain = scores_of(core.fuse({"cell": cell, "detector": detector}, weights))
    gated = scores_of(core.fuse({"cell": cell, "detector": detector}, weights, gate="cells_max"))
    np.testing.assert_allclose(gated[:3, 11], plain[:3, 11] * 0.9)
    np.testing.assert_allclose(gated[3:, 11], plain[3:, 11] * 0.3)
    np.testing.assert_allclose(gated[:, 0], plain[:, 0] * 0.1)
    # the mean gate ranks the two images the other way round for class 11 (a: 1.1 / 3, b: 0.3)
    pooled = scores_of(core.fuse({"cell": cell, "detector": detector}, weights, gate="cells"))
    np.testing.assert_allclose(pooled[:3, 11], plain[:3, 11] * 1.1 / 3)


def test_a_gated_profile_computes_the_image_models_and_an_unknown_gate_fails_at_load():
    from types import MappingProxyType

    from stages.zoo import FusionSettings, InvalidSetting

    gated = FusionSettings(mode="weighted", weights=MappingProxyType({"cell": 1.0}), gate="image")
    assert gated.sources == ("cell", "image")
    pooled = FusionSettings(mode="weighted", weights=MappingProxyType({"image": 1.0}), gate="cells")
    assert pooled.sources == ("cell", "image")
    highest = FusionSettings(mode="weighted", weights=MappingProxyType({"image": 1.0}), gate="cells_max")
    assert highest.sources == ("cell", "image")
    assert FusionSettings(mode="weighted", weights=MappingProxyType({"image": 1.0})).sources == ("image",)
    assert get_profile("hpa2021").fusion.gate == "none"  # the original's fusion stays the faithful one
    with pytest.raises(InvalidSetting, match="gate.*'none', 'image', 'cells', 'cells_max'"):
        FusionSettings(mode="weighted", weights=MappingProxyType({"cell": 1.0}), gate="detector")
