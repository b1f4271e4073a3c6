"""evoart.imaging: converting GAN output to pictures, grids, contact sheets and PNG files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from evoart.imaging import contact_sheet, image_grid, png_bytes, to_float_tensor, to_uint8

torch.set_num_threads(1)

BACKGROUND = (24, 24, 24)


def random_uint8(count: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- to_uint8


def test_generator_output_in_minus_one_to_one_becomes_channels_last_uint8():
    images = torch.zeros(2, 3, 5, 7)
    images[0, 0] = 1.0  # first image: pure red
    images[1] = -1.0  # second image: black
    out = to_uint8(images)
    assert out.dtype == np.uint8
    assert out.shape == (2, 5, 7, 3)
    assert out[0, 0, 0].tolist() == [255, 128, 128]
    assert out[1].max() == 0


def test_out_of_range_and_nan_values_are_clamped_not_wrapped():
    images = torch.tensor([[[[3.0, -5.0, float("nan")]]]]).expand(1, 3, 1, 3)
    assert to_uint8(images)[0, 0].tolist() == [[255, 255, 255], [0, 0, 0], [0, 0, 0]]


def test_numpy_floats_tensors_and_half_precision_agree():
    images = torch.rand(3, 3, 4, 4) * 2 - 1
    expected = to_uint8(images)
    np.testing.assert_array_equal(to_uint8(images.numpy()), expected)
    half = to_uint8(images.to(torch.bfloat16))
    assert np.abs(half.astype(int) - expected).max() <= 2


def test_uint8_images_pass_through_unchanged():
    images = random_uint8(4, 6)
    np.testing.assert_array_equal(to_uint8(images), images)


def test_single_images_and_grey_images_are_accepted():
    assert to_uint8(np.zeros((3, 4, 4), np.float32)).shape == (1, 4, 4, 3)
    grey = to_uint8(np.full((2, 1, 4, 4), 1.0, np.float32))
    assert grey.shape == (2, 4, 4, 3) and grey.min() == 255


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 4, 4, 3), np.float32),  # float but channels-last
        np.zeros((2, 3, 4, 4), np.uint8),  # uint8 but channels-first
        np.zeros((4, 4), np.uint8),
        np.zeros((1, 4, 4, 3), np.int64),
    ],
)
def test_ambiguous_or_unsupported_layouts_are_rejected(bad):
    with pytest.raises(ValueError):
        to_uint8(bad)


# --------------------------------------------------------------------------- to_float_tensor


def test_float_tensor_is_channels_first_in_minus_one_to_one():
    images = random_uint8(3, 5)
    images[0, 0, 0] = [0, 255, 0]
    tensor = to_float_tensor(images)
    assert isinstance(tensor, torch.Tensor)
    assert tensor.dtype == torch.float32
    assert tuple(tensor.shape) == (3, 3, 5, 5)
    assert tensor[0, :, 0, 0].tolist() == [-1.0, 1.0, -1.0]
    assert tensor.min() >= -1 and tensor.max() <= 1


def test_uint8_to_tensor_and_back_is_lossless():
    images = random_uint8(8, 16, seed=3)
    np.testing.assert_array_equal(to_uint8(to_float_tensor(images)), images)


def test_float_tensor_rejects_non_uint8():
    with pytest.raises(ValueError):
        to_float_tensor(np.zeros((1, 4, 4, 3), np.float32))


# --------------------------------------------------------------------------- image_grid


def test_grid_size_follows_columns_padding_and_scale():
    grid = image_grid(random_uint8(10, 8), cols=4, pad=2, scale=3)
    tile = 8 * 3
    assert grid.mode == "RGB"
    assert grid.size == (4 * tile + 5 * 2, 3 * tile + 4 * 2)  # 10 images -> 3 rows of 4


def test_grid_defaults_to_a_square_layout():
    assert image_grid(random_uint8(64, 4), pad=0).size == (32, 32)
    assert image_grid(random_uint8(1, 4), pad=0).size == (4, 4)


def test_grid_upscales_with_nearest_neighbour_and_keeps_gaps_background():
    images = random_uint8(3, 4, seed=1)
    grid = np.asarray(image_grid(images, cols=2, pad=1, scale=2, background=(1, 2, 3)))
    first = grid[1:9, 1:9]
    np.testing.assert_array_equal(first, images[0].repeat(2, 0).repeat(2, 1))
    assert grid[0, 0].tolist() == [1, 2, 3]  # frame
    assert grid[12, 14].tolist() == [1, 2, 3]  # the unused fourth cell
    np.testing.assert_array_equal(grid[1:9, 10:18], images[1].repeat(2, 0).repeat(2, 1))


def test_grid_accepts_generator_output_directly():
    grid = image_grid(torch.zeros(4, 3, 8, 8), pad=0)
    assert grid.size == (16, 16)
    assert grid.getpixel((3, 3)) == (128, 128, 128)


def test_grid_rejects_empty_input_and_bad_scale():
    with pytest.raises(ValueError):
        image_grid(np.zeros((0, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError):
        image_grid(random_uint8(2, 4), scale=0)


# --------------------------------------------------------------------------- contact_sheet


def test_contact_sheet_has_one_row_per_individual_with_label_and_tiles():
    rows = [(f"#{rank} fitness 0.{rank}", random_uint8(8, 8, seed=rank)) for rank in range(5)]
    sheet = contact_sheet(rows, per_row=8, scale=2)
    pixels = np.asarray(sheet)
    tile = 16
    assert sheet.height >= 5 * tile
    assert sheet.width > 8 * tile  # tiles plus a label column
    label_column = pixels[:, : sheet.width - 8 * (tile + 4)]
    assert (label_column != BACKGROUND).any(), "labels must be drawn"
    # the last tile of the last row is the last image of that individual, upscaled
    np.testing.assert_array_equal(
        pixels[-(tile + 4) : -4, -(tile + 4) : -4], rows[-1][1][7].repeat(2, 0).repeat(2, 1)
    )


def test_contact_sheet_grows_with_rows_and_title():
    row = ("best", random_uint8(8, 8))
    one = contact_sheet([row])
    three = contact_sheet([row, row, row])
    titled = contact_sheet([row], title="generation 3")
    assert three.width == one.width
    assert three.height > one.height
    assert titled.height > one.height


def test_contact_sheet_leaves_missing_samples_blank_and_ignores_extras():
    short = contact_sheet([("few", random_uint8(2, 8))], per_row=4, scale=1)
    long = contact_sheet([("few", random_uint8(9, 8))], per_row=4, scale=1)
    assert short.size == long.size
    right_end = np.asarray(short)[:, -12:]
    assert (right_end == BACKGROUND).all()


def test_contact_sheet_rejects_mixed_sizes_and_no_rows():
    with pytest.raises(ValueError):
        contact_sheet([("a", random_uint8(2, 8)), ("b", random_uint8(2, 16))])
    with pytest.raises(ValueError):
        contact_sheet([])


# --------------------------------------------------------------------------- png_bytes


def test_png_bytes_round_trips_pixels():
    image = image_grid(random_uint8(4, 8), scale=2)
    decoded = Image.open(io.BytesIO(png_bytes(image)))
    np.testing.assert_array_equal(np.asarray(decoded), np.asarray(image))


def test_same_pixels_give_identical_png_files_whatever_the_metadata():
    pixels = random_uint8(1, 16)[0]
    plain = Image.fromarray(pixels)
    tagged = Image.fromarray(pixels)
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", "something else")
    buffer = io.BytesIO()
    tagged.save(buffer, format="PNG", pnginfo=info, dpi=(300, 300))
    reopened = Image.open(io.BytesIO(buffer.getvalue()))
    reopened.load()
    assert reopened.info  # the source really carries metadata
    data = png_bytes(plain)
    assert png_bytes(reopened) == data
    assert png_bytes(plain) == data
    for chunk in (b"tEXt", b"tIME", b"pHYs", b"iCCP", b"zTXt", b"iTXt"):
        assert chunk not in data
