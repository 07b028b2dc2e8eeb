"""Classic segmentation on the three real HPA fields of view (no truth: plausible cell counts).

Expected counts come from looking at the fields: 57_F11_1 shows 11 nuclei (one a sliver on the left
edge), 89_B5_1 shows 11 (one multinucleate cell among them), B2AI_1_untreated_A1_R1 about 27 (several
cut by the border, two pairs pressed together). Measured: 10, 11 and 23. Each range is the count seen
+-35%; every one lies inside 5-60, what an HPA field of 1728-2048 px at 63x holds, where a nucleus is
150-250 px across.
"""

from __future__ import annotations


import pytest
from conftest import REAL_DATA

from stages import storage
from stages.fields import read_field
from stages.manifest.core import channel_files
from stages.segment.core import SegmentSettings, segment_classic

REAL = REAL_DATA / "test"
EXPECTED = {"57_F11_1": (7, 15), "89_B5_1": (7, 15), "B2AI_1_untreated_A1_R1": (17, 36)}



@pytest.mark.parametrize("image_id", sorted(EXPECTED))
def test_real_field_yields_a_plausible_cell_count(image_id):
    files = channel_files(storage.listdir(str(REAL)))
    field = read_field(str(REAL), image_id, files[image_id])
    cells, nuclei = segment_classic(field, SegmentSettings())
    low, high = EXPECTED[image_id]
    assert cells.shape == field.shape[:2]
    assert low <= int(cells.max()) <= high
    assert set(nuclei[nuclei > 0]) == set(range(1, int(cells.max()) + 1))
