"""Test-time augmentation: which views a setting names, and that the prediction is their mean."""

import numpy as np
import pytest

from stages.classes import NUM_CLASSES
from stages.classify import models
from stages.classify.predict import predict_probabilities, views
from stages.zoo import get_profile

SPEC = get_profile("demo").role("cell")[0]  # the demo's cell member: it predicts over 8 views


def test_each_setting_names_its_views_first_the_input_as_it_is():
    assert views(()) == [(0, False)]
    assert views(("flip",)) == [(0, False), (0, True)]
    assert views(("rotate90",)) == [(0, False), (1, False), (2, False), (3, False)]
    both = views(("flip", "rotate90"))
    assert both[0] == (0, False) and sorted(both) == [(turns, mirrored) for turns in range(4) for mirrored in (0, 1)]
    with pytest.raises(ValueError, match=r"unknown test-time augmentation\(s\) \['transpose'\]; known"):
        views(("transpose",))


class TopLeftCorner:
    """A model that sees orientation (an untrained network's outputs barely depend on its input): class c's
    score is (c + 1) / 19 times the brightness of the input's top-left quarter."""

    def predict_on_batch(self, batch):
        half = batch.shape[1] // 2
        brightness = batch[:, :half, :half].astype(np.float64).mean(axis=(1, 2, 3)) / 255
        return brightness[:, None] * (np.arange(NUM_CLASSES) + 1) / NUM_CLASSES


@pytest.fixture(scope="module", params=["corner", "keras"])
def model_and_tiles(request):
    rng = np.random.default_rng(3)
    tiles = rng.integers(0, 256, (5, SPEC.input_size, SPEC.input_size, 3), dtype=np.uint8)
    return (TopLeftCorner() if request.param == "corner" else models.build_classifier(SPEC)), tiles


def test_the_eight_views_average_the_tiles_mirrored_and_turned(model_and_tiles):
    model, tiles = model_and_tiles
    # the 8 symmetries of the square built independently of the code under test: transposes and flips
    symmetric = [tiles, tiles[:, ::-1], tiles[:, :, ::-1], tiles[:, ::-1, ::-1]]
    symmetric += [np.swapaxes(view, 1, 2) for view in symmetric]
    expected = np.mean([predict_probabilities(model, np.ascontiguousarray(view), SPEC.channels)
                        for view in symmetric], axis=0)
    # a batch of 2 leaves a zero-padded last batch: the padding must not leak into any view's rows
    augmented = predict_probabilities(model, tiles, SPEC.channels, batch_size=2,
                                      test_time_augment=("flip", "rotate90"))
    np.testing.assert_allclose(augmented, expected, atol=1e-6)
    if isinstance(model, TopLeftCorner):  # the views differ, so the mean is not any one of them
        assert np.abs(augmented - predict_probabilities(model, tiles, SPEC.channels)).max() > 1e-3


def test_mirroring_alone_averages_two_views(model_and_tiles):
    model, tiles = model_and_tiles
    expected = (predict_probabilities(model, tiles, SPEC.channels)
                + predict_probabilities(model, np.ascontiguousarray(tiles[:, :, ::-1]), SPEC.channels)) / 2
    np.testing.assert_allclose(predict_probabilities(model, tiles, SPEC.channels, test_time_augment=("flip",)),
                               expected, atol=1e-6)


def test_quarter_turns_need_square_inputs_mirroring_does_not():
    wide = np.zeros((2, 8, 6, 3), np.uint8)
    with pytest.raises(ValueError, match="must be square, got 8 x 6 px"):
        predict_probabilities(TopLeftCorner(), wide, "rgb", test_time_augment=("rotate90",))
    assert predict_probabilities(TopLeftCorner(), wide, "rgb", test_time_augment=("flip",)).shape == (2, NUM_CLASSES)
