"""The report's drawing: cell and nucleus outlines in their colours, ids in small type where the green is dim,
and the predict command's labelled overlay (still :func:`stages.submit.report.annotate`)."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.segmentation import find_boundaries

from stages.submit import report, report_draw


def two_cells(rows=300, cols=500):
    field = np.zeros((rows, cols, 4), np.uint8)
    cells = np.zeros((rows, cols), np.uint16)
    nuclei = np.zeros((rows, cols), np.uint16)
    cells[50:250, 40:240] = 1
    cells[60:280, 300:480] = 2
    nuclei[120:180, 110:170] = 1
    nuclei[140:200, 360:420] = 2
    return field, cells, nuclei


def colour_mask(image, colour):
    return (image == np.array(colour, np.uint8)).all(axis=2)


def test_outlines_of_cells_and_nuclei_in_their_colours_on_a_shrunk_non_square_image():
    field, cells, nuclei = two_cells()
    drawn = report_draw.draw_cells(field, cells, nuclei, max_side=250, ids=False)
    assert drawn.shape == (150, 250, 3) and drawn.dtype == np.uint8
    small_cells = cv2.resize(cells, (250, 150), interpolation=cv2.INTER_NEAREST_EXACT)
    small_nuclei = cv2.resize(nuclei, (250, 150), interpolation=cv2.INTER_NEAREST_EXACT)
    nucleus_edge = find_boundaries(small_nuclei, mode="inner") & (small_nuclei > 0)
    cell_edge = find_boundaries(small_cells, mode="inner") & (small_cells > 0)
    assert nucleus_edge.sum() > 50 and cell_edge.sum() > 100
    # every pixel of a nucleus' boundary has the nucleus colour, every cell boundary pixel the cell colour
    assert colour_mask(drawn, report_draw.NUCLEUS_OUTLINE)[nucleus_edge].all()
    assert colour_mask(drawn, report_draw.CELL_OUTLINE)[cell_edge].all()
    # and nothing else is drawn: off the boundaries the black field stays black
    assert (drawn[~(nucleus_edge | cell_edge)] == 0).all()
    assert report_draw.NUCLEUS_OUTLINE != report_draw.CELL_OUTLINE


def test_without_nuclei_only_cells_are_outlined():
    field, cells, _ = two_cells()
    drawn = report_draw.draw_cells(field, cells, None, max_side=500, ids=False)
    assert not colour_mask(drawn, report_draw.NUCLEUS_OUTLINE).any()
    assert colour_mask(drawn, report_draw.CELL_OUTLINE).sum() > 500


def test_each_cell_id_is_written_inside_its_cell():
    field, cells, nuclei = two_cells()
    plain = report_draw.draw_cells(field, cells, nuclei, max_side=500, ids=False)
    drawn = report_draw.draw_cells(field, cells, nuclei, max_side=500)
    changed = (drawn != plain).any(axis=2)
    for cell_id in (1, 2):
        inside = (cells == cell_id) & ~(find_boundaries(cells, mode="inner") | find_boundaries(nuclei, mode="inner"))
        assert (changed & inside).sum() > 20, cell_id  # its digit's pixels
    assert not (changed & (cells == 0)).any()  # ids stay inside their cells here (room enough)
    # small type: the id's pixels of a 200x200 cell fit in a box a few dozen pixels wide
    ys, xs = np.nonzero(changed & (cells == 1))
    assert np.ptp(ys) < 20 and np.ptp(xs) < 20
    # the digit itself is drawn in the id colour
    assert colour_mask(drawn, report_draw.ID_COLOUR)[changed & (cells == 1)].any()


def test_an_id_goes_where_the_green_is_dim():
    field, cells, nuclei = two_cells()
    field[50:250, 40:160, 1] = 220  # cell 1's left part glows green; its right part (160:240) is dark
    plain = report_draw.draw_cells(field, cells, nuclei, max_side=500, ids=False)
    drawn = report_draw.draw_cells(field, cells, nuclei, max_side=500)
    ys, xs = np.nonzero((drawn != plain).any(axis=2) & (cells == 1))
    assert xs.size and xs.min() >= 160, (xs.min(), xs.max())


def test_a_cell_too_small_for_its_id_still_gets_it_and_ids_beyond_nine_are_drawn():
    field = np.zeros((80, 120, 4), np.uint8)
    cells = np.zeros((80, 120), np.uint16)
    cells[30:34, 50:54] = 12
    drawn = report_draw.draw_cells(field, cells, None, max_side=120)
    assert (drawn.sum(axis=2) > 0).sum() > (cells > 0).sum() + 10  # the text spills around the tiny cell


def test_label_images_must_match_the_field():
    field, cells, nuclei = two_cells()
    try:
        report_draw.draw_cells(field, cells, nuclei[:-1])
    except ValueError as error:
        assert "do not match" in str(error)
    else:
        raise AssertionError("a nucleus image of another size was drawn")


def test_annotate_draws_outlines_and_text_on_a_shrunk_non_square_image():
    field, cells, _ = two_cells()
    plain = report.annotate(field, cells, {}, max_side=250)
    assert plain.shape == (150, 250, 3) and plain.dtype == np.uint8
    assert (plain == 255).all(axis=2).sum() > 100  # white outlines on a black field
    labelled = report.annotate(field, cells, {1: [(0, 0.9)], 2: [(13, 0.8), (16, 0.1)]}, max_side=250)
    yellow = (labelled[..., 0] > 0) & (labelled[..., 2] == 0)
    assert (labelled[..., 2] == 0).any() and yellow.sum() > 20  # yellow text
    png = report.png_bytes(labelled)
    assert cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape == (150, 250, 3)
