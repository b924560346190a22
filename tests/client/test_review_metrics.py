"""Surface Dice, Dice and lesion pairing on hand-built masks whose every figure is worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from eanno_client.review_metrics import (
    ReviewSettings,
    components,
    dice,
    pair_components,
    slices_touched,
    surface_dice,
)


def cube(shape=(20, 20, 20), lo=(4, 4, 4), n=10) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[lo[0] : lo[0] + n, lo[1] : lo[1] + n, lo[2] : lo[2] + n] = True
    return m


# A 10^3 cube has 10^3 - 8^3 = 488 boundary voxels. Shifted by one voxel along axis 0, the boundary voxels
# of each cube farther than one step from the other's boundary are its whole trailing face (10 x 10 = 100:
# outside the other cube, one step from the other's face) and the interior of its leading face (8 x 8 = 64:
# inside the other cube, one step from its face). So with a tolerance below one step: (488 - 164) / 488.
SHIFTED_CUBE_SD = (488 - 164) / 488


def test_identical_masks_have_surface_dice_one() -> None:
    m = cube()
    assert surface_dice(m, m.copy(), (0.7, 1.3, 2.5), 0.0) == 1.0


def test_shifted_cube_surface_dice_below_and_at_one_step() -> None:
    a, b = cube(), cube(lo=(5, 4, 4))
    assert surface_dice(a, b, (1, 1, 1), 0.5) == pytest.approx(SHIFTED_CUBE_SD)
    assert surface_dice(a, b, (1, 1, 1), 1.0) == pytest.approx(1.0)
    assert dice(a, b) == pytest.approx(2 * 900 / 2000)


def test_surface_dice_reads_the_spacing_of_the_shifted_axis() -> None:
    a = cube()
    along_thick = cube(lo=(5, 4, 4))  # axis 0 has 2 mm voxels: one step is 2 mm
    along_thin = cube(lo=(4, 5, 4))  # axis 1 has 1 mm voxels
    spacing = (2.0, 1.0, 1.0)
    # 2 mm along the shift, but the leading face's interior voxels next to a side face are now 1 mm from the
    # other cube's side: of its 8 x 8 interior only the inner 6 x 6 = 36 stay out of reach (with the 100).
    assert surface_dice(a, along_thick, spacing, 1.5) == pytest.approx((488 - 100 - 36) / 488)
    assert surface_dice(a, along_thick, spacing, 0.9) == pytest.approx(
        SHIFTED_CUBE_SD
    )  # shared side faces only
    assert surface_dice(a, along_thin, spacing, 1.5) == pytest.approx(1.0)
    assert surface_dice(a, along_thick, spacing, 2.0) == pytest.approx(1.0)


def test_surface_dice_of_empty_masks() -> None:
    empty = np.zeros((8, 8, 8), bool)
    assert surface_dice(empty, empty, (1, 1, 1), 1.0) == 1.0
    assert surface_dice(cube((8, 8, 8), (2, 2, 2), 3), empty, (1, 1, 1), 1.0) == 0.0


def test_surface_dice_counts_the_array_border_as_surface() -> None:
    # a cube filling the array: cropping must not lose its outer face (then it would have no surface)
    full = np.ones((6, 6, 6), bool)
    inner = cube((6, 6, 6), (1, 1, 1), 4)
    # full cube surface: 6^3 - 4^3 = 152 voxels; inner cube [1, 5)^3 surface: 4^3 - 2^3 = 56 voxels.
    # Each inner surface voxel is one step from the full cube's face; of the full cube's, the 6 x 4 x 4 = 96
    # face interiors are one step away, the 48 edge voxels sqrt(2) and the 8 corners sqrt(3).
    spacing = (1, 1, 1)
    assert surface_dice(full, inner, spacing, 0.5) == pytest.approx(0.0)
    assert surface_dice(full, inner, spacing, 1.0) == pytest.approx((96 + 56) / (152 + 56))
    assert surface_dice(full, inner, spacing, 1.5) == pytest.approx((96 + 48 + 56) / (152 + 56))
    assert surface_dice(full, inner, spacing, 1.8) == pytest.approx(1.0)


def test_pairing_joins_splits_and_leaves_unmatched_alone() -> None:
    model = np.zeros((30, 10, 10), bool)
    revised = np.zeros_like(model)
    model[2:12, 2:6, 2:6] = True  # one model lesion ...
    revised[2:6, 2:6, 2:6] = True  # ... split into two revised lesions
    revised[8:12, 2:6, 2:6] = True
    model[20:23, 2:5, 2:5] = True  # model only: deleted
    revised[26:29, 2:5, 2:5] = True  # revised only: added
    mcc, nm = components(model, 26)
    rcc, nr = components(revised, 26)
    groups = pair_components(mcc, nm, rcc, nr)
    shapes = sorted((len(g.model), len(g.revised)) for g in groups)
    assert shapes == [(0, 1), (1, 0), (1, 2)]


def test_slices_touched_per_axis() -> None:
    changed = np.zeros((10, 12, 14), bool)
    changed[2, 3:6, 7] = True
    changed[5, 3, 7:9] = True
    assert slices_touched(changed) == [2, 3, 2]


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="connectivity must be 6, 18 or 26, got 5"):
        ReviewSettings(connectivity=5)
    with pytest.raises(ValueError, match="reshape_below"):
        ReviewSettings(reshape_below=1.5)
