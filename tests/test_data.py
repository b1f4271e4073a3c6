"""evoart.data: built-in procedural datasets, user image folders, the decode cache, splits."""

from __future__ import annotations

import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from evoart import data
from evoart.data import (
    BUILTIN_COUNT,
    DEFAULT_DATASET,
    DataError,
    ImageSet,
    holdout_split,
    list_datasets,
    load_images,
    preview,
    register_dataset,
    require_count,
)

BUILTINS = ["shapes", "landscapes", "patterns"]
RED = (255, 0, 0)


@pytest.fixture(autouse=True)
def _no_user_cache(tmp_path, monkeypatch):
    """Never touch the real ~/.cache: any load without cache_dir goes to tmp."""
    monkeypatch.setenv("EVOART_CACHE", str(tmp_path / "env-cache"))


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def save(path: Path, image: Image.Image, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def solid(colour, size=(24, 24), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` with its size and mtime, to prove nothing was written."""
    state = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            stat = path.stat()
            state[str(path.relative_to(folder))] = (stat.st_size, stat.st_mtime_ns)
    state["."] = (0, folder.stat().st_mtime_ns)
    return state


# --------------------------------------------------------------------------- built-in datasets


def test_the_three_builtins_are_listed_with_descriptions_and_shapes_is_default():
    infos = list_datasets()
    names = [info.name for info in infos]
    assert set(BUILTINS) <= set(names)
    assert DEFAULT_DATASET == "shapes" == names[0]
    assert all(len(info.description) > 20 for info in infos)
    assert BUILTIN_COUNT == 2048


@pytest.mark.parametrize("name", BUILTINS)
@pytest.mark.parametrize("resolution", [16, 32, 64])
def test_builtins_generate_square_rgb_uint8_images(name, resolution):
    imageset = load_images(name, resolution, count=6)
    assert imageset.kind == "builtin"
    assert imageset.name == imageset.source == name
    assert imageset.images.dtype == np.uint8
    assert imageset.images.shape == (6, resolution, resolution, 3)
    assert imageset.skipped == []
    assert re.fullmatch(r"[0-9a-f]{16}", imageset.fingerprint)
    assert len(imageset) == 6


def test_builtin_count_defaults_to_builtin_count(monkeypatch):
    monkeypatch.setattr(data.types, "BUILTIN_COUNT", 5)  # the real 2048 is exercised by the timing report
    assert load_images("patterns", 16).images.shape[0] == 5


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_are_byte_identical_for_identical_arguments(name):
    first = load_images(name, 16, count=12, seed=7)
    again = load_images(name, 16, count=12, seed=7)
    other_seed = load_images(name, 16, count=12, seed=8)
    assert first.images.tobytes() == again.images.tobytes()
    assert first.fingerprint == again.fingerprint
    assert other_seed.fingerprint != first.fingerprint
    assert not np.array_equal(other_seed.images, first.images)


@pytest.mark.parametrize("name", BUILTINS)
def test_a_preview_shows_exactly_the_first_training_images(name):
    small = load_images(name, 16, count=4, seed=3).images
    large = load_images(name, 16, count=20, seed=3).images
    np.testing.assert_array_equal(small, large[:4])


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_are_not_trivial(name):
    images = load_images(name, 32, count=48).images.astype(np.float32)
    flat = images.reshape(len(images), -1)
    assert flat.std(axis=1).min() > 10, "every image has visible structure"
    assert len({image.tobytes() for image in images.astype(np.uint8)}) == len(images), "no duplicates"
    neighbours = np.abs(images - np.roll(images, 1, axis=0)).mean(axis=(1, 2, 3))
    assert neighbours.mean() > 30, "images differ clearly from each other"
    saturation = images.max(axis=-1) - images.min(axis=-1)
    assert (saturation > 50).mean() > 0.25, "the datasets are colourful, not grey"


@pytest.mark.parametrize("name", BUILTINS)
def test_builtins_depict_the_same_scenes_at_every_resolution(name):
    small = load_images(name, 16, count=8).images.astype(np.float32)
    large = load_images(name, 32, count=8).images.astype(np.float32)
    shrunk = large.reshape(8, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    assert np.abs(small - shrunk).mean() < 8
    assert np.abs(small - np.roll(shrunk, 1, axis=0)).mean() > 30


def test_shapes_have_a_plain_background_and_saturated_shapes():
    images = load_images("shapes", 32, count=32).images.astype(np.int16)
    corners = images[:, [0, 0, -1, -1], [0, -1, 0, -1]]
    corner_saturation = corners.max(-1) - corners.min(-1)
    saturation = images.max(-1) - images.min(-1)
    assert np.median(corner_saturation) < 90, "backgrounds are muted"
    assert (saturation.reshape(32, -1).max(1) > 150).all(), "every image has a saturated shape"


def test_landscapes_have_sky_above_and_dark_ground_below():
    images = load_images("landscapes", 32, count=32).images.astype(np.float32)
    luma = images @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    top, bottom = luma[:, :6].mean(axis=(1, 2)), luma[:, -6:].mean(axis=(1, 2))
    assert (bottom < top + 20).mean() > 0.9
    assert (luma.reshape(32, -1).max(1) > 180).mean() > 0.8, "a bright sun or moon is visible"


def test_custom_datasets_can_be_registered(monkeypatch):
    monkeypatch.setattr(data.builtin, "_REGISTRY", dict(data.builtin._REGISTRY))

    @register_dataset("flat-grey", "Flat grey squares (test).")
    def flat(count, resolution, rng):
        return np.full((count, resolution, resolution, 3), 128, np.uint8)

    assert "flat-grey" in [info.name for info in list_datasets()]
    assert load_images("flat-grey", 8, count=3).images.shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("flat-grey", "again")(flat)


def test_a_misbehaving_registered_dataset_is_reported(monkeypatch):
    monkeypatch.setattr(data.builtin, "_REGISTRY", dict(data.builtin._REGISTRY))
    register_dataset("broken", "returns floats")(lambda count, resolution, rng: np.zeros((count, 4, 4, 3)))
    with pytest.raises(ValueError, match="broken"):
        load_images("broken", 4, count=2)


# --------------------------------------------------------------------------- folders: decoding


def truncated_png(path: Path) -> Path:
    """A real PNG cut in half, like an interrupted download."""
    path.parent.mkdir(parents=True, exist_ok=True)
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    """A realistic messy folder: every mode, nested folders, odd extensions, two bad files."""
    root = tmp_path / "photos"
    save(root / "rgb.jpg", solid((20, 200, 20), (40, 30)))
    save(root / "grey.png", solid(90, mode="L"))
    save(root / "grey-alpha.png", solid((200, 255), mode="LA"))
    save(root / "palette.gif", solid(3, mode="P"))
    save(root / "rgba.PNG", solid((255, 0, 0, 255), mode="RGBA"))
    save(root / "deep" / "er" / "sixteen.png", solid(32768, mode="I;16"))
    save(root / "deep" / "cmyk.JPEG", solid((255, 0, 0, 0), mode="CMYK"))
    save(root / "deep" / "photo.webp", solid((10, 20, 200)))
    save(root / "deep" / "icon.bmp", solid((250, 250, 0)))
    truncated_png(root / "broken" / "cut.png")
    (root / "broken" / "notes.jpg").write_text("this is not a picture")
    (root / "readme.txt").write_text("ignored: not an image extension")
    save(root / ".thumbnails" / "hidden.png", solid((1, 2, 3)))
    return root


def test_a_messy_folder_loads_every_usable_image_as_rgb(mixed_folder, cache):
    imageset = load_images(mixed_folder, 16, cache_dir=cache)
    assert imageset.kind == "folder"
    assert imageset.name == "photos"
    assert imageset.source == str(mixed_folder.resolve())
    assert imageset.images.shape == (9, 16, 16, 3)
    assert imageset.images.dtype == np.uint8


def test_unreadable_files_are_skipped_with_a_reason(mixed_folder, cache):
    imageset = load_images(mixed_folder, 16, cache_dir=cache)
    reasons = {Path(path).name: reason for path, reason in imageset.skipped}
    assert set(reasons) == {"cut.png", "notes.jpg"}
    assert "truncated" in reasons["cut.png"]
    assert "not a readable image" in reasons["notes.jpg"]
    assert all(Path(path).is_absolute() for path, _ in imageset.skipped)


def test_truncated_images_stay_detectable():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_images_come_in_sorted_path_order(tmp_path, cache):
    folder = tmp_path / "order"
    save(folder / "b.png", solid((0, 0, 255)))
    save(folder / "a" / "z.png", solid((0, 255, 0)))
    save(folder / "A.png", solid(RED))
    colours = [tuple(image[4, 4]) for image in load_images(folder, 8, cache_dir=cache).images]
    assert colours == [RED, (0, 255, 0), (0, 0, 255)]  # "A.png" < "a/z.png" < "b.png"


def one_image_folder(tmp_path: Path, name: str, image: Image.Image, **params) -> Path:
    folder = tmp_path / f"single-{Path(name).stem}"
    save(folder / name, image, **params)
    return folder


def palette_image(transparent: bool) -> Image.Image:
    image = Image.new("P", (16, 16), 1)
    image.putpalette([0, 0, 0, 30, 120, 240] + [0, 0, 0] * 254)
    if transparent:
        image.paste(0, (0, 0, 4, 4))  # a transparent corner, far from the centre
    return image


CONVERSIONS = {
    # name: (file name, image, save params, expected colour at the centre, tolerance)
    "rgb png": ("x.png", solid((12, 34, 56)), {}, (12, 34, 56), 0),
    "opaque red rgba stays red": ("x.png", solid((255, 0, 0, 255), mode="RGBA"), {}, RED, 0),
    "half transparent red is composited on black": ("x.png", solid((255, 0, 0, 128), mode="RGBA"), {}, (128, 0, 0), 1),
    "transparent is black": ("x.png", solid((255, 255, 255, 0), mode="RGBA"), {}, (0, 0, 0), 0),
    "grey": ("x.png", solid(90, mode="L"), {}, (90, 90, 90), 0),
    "grey with alpha": ("x.png", solid((200, 255), mode="LA"), {}, (200, 200, 200), 0),
    "1-bit": ("x.bmp", solid(1, mode="1"), {}, (255, 255, 255), 0),
    "palette": ("x.gif", palette_image(False), {}, (30, 120, 240), 0),
    "palette with transparency": ("x.png", palette_image(True), {"transparency": 0}, (30, 120, 240), 0),
    "16-bit mid grey is mid grey, not white": ("x.png", solid(32768, mode="I;16"), {}, (128, 128, 128), 1),
    "16-bit black": ("x.png", solid(0, mode="I;16"), {}, (0, 0, 0), 0),
    # no listed format writes mode I with Pillow, but PIL sniffs content, not names
    "32-bit integer grey": ("x.png", solid(40000, mode="I"), {"format": "TIFF"}, (156, 156, 156), 1),
    "cmyk cyan": ("x.jpg", solid((255, 0, 0, 0), mode="CMYK"), {}, (0, 255, 255), 3),
    "jpeg": ("x.JPG", solid((200, 30, 30)), {"quality": 95}, (200, 30, 30), 6),
    "webp with alpha": ("x.webp", solid((0, 0, 255, 255), mode="RGBA"), {"lossless": True}, (0, 0, 255), 0),
}


@pytest.mark.parametrize("case", CONVERSIONS, ids=list(CONVERSIONS))
def test_every_image_mode_converts_to_sensible_rgb(tmp_path, cache, case):
    file_name, image, params, expected, tolerance = CONVERSIONS[case]
    folder = one_image_folder(tmp_path, file_name, image, **params)
    imageset = load_images(folder, 8, cache_dir=cache)
    assert imageset.skipped == []
    pixel = imageset.images[0, 5, 5].astype(int)
    assert np.abs(pixel - np.array(expected)).max() <= tolerance, (pixel, expected)


def test_animated_gif_uses_its_first_frame(tmp_path, cache):
    frames = [solid(RED).convert("P"), solid((0, 0, 255)).convert("P")]
    folder = tmp_path / "anim"
    folder.mkdir()
    frames[0].save(folder / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert tuple(load_images(folder, 8, cache_dir=cache).images[0, 4, 4]) == RED


def test_exif_orientation_is_applied(tmp_path, cache):
    stored = Image.new("RGB", (64, 32), RED)
    stored.paste((0, 0, 255), (0, 16, 64, 32))  # stored: red top half, blue bottom half
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    folder = one_image_folder(tmp_path, "phone.jpg", stored, exif=exif, quality=95)
    image = load_images(folder, 16, cache_dir=cache).images[0].astype(int)
    # displayed upright, the red half is on the right and the blue half on the left
    assert image[8, 13, 0] > 200 and image[8, 13, 2] < 60
    assert image[8, 2, 2] > 200 and image[8, 2, 0] < 60


def test_non_square_images_are_centre_cropped_not_squashed(tmp_path, cache):
    wide = Image.new("RGB", (90, 30), RED)
    wide.paste((0, 255, 0), (30, 0, 60, 30))  # green middle third
    image = load_images(one_image_folder(tmp_path, "wide.png", wide), 8, cache_dir=cache).images[0]
    assert np.abs(image.astype(int) - (0, 255, 0)).max() <= 20  # only LANCZOS fringes at the crop edge


def test_tiny_and_huge_images_are_resized(tmp_path, cache):
    folder = tmp_path / "sizes"
    save(folder / "tiny.png", solid(RED, (3, 3)))
    save(folder / "big.jpg", solid((0, 0, 250), (1200, 900)), quality=95)
    images = load_images(folder, 32, cache_dir=cache).images
    assert images.shape == (2, 32, 32, 3)
    assert np.abs(images[0, 16, 16].astype(int) - (0, 0, 250)).max() <= 6  # big.jpg sorts first
    assert tuple(images[1, 16, 16]) == RED


def test_progress_is_reported_while_decoding(mixed_folder, cache):
    calls = []
    load_images(mixed_folder, 8, cache_dir=cache, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 11) for done in range(1, 12)]


def test_count_keeps_the_first_images_of_a_folder(mixed_folder, cache):
    full = load_images(mixed_folder, 8, cache_dir=cache)
    first = load_images(mixed_folder, 8, count=4, cache_dir=cache)
    np.testing.assert_array_equal(first.images, full.images[:4])


def test_folder_fingerprint_depends_on_pixels_not_on_location(mixed_folder, tmp_path, cache):
    copy = tmp_path / "copy"
    shutil.copytree(mixed_folder, copy)
    original = load_images(mixed_folder, 8, cache_dir=cache)
    copied = load_images(copy, 8, cache_dir=cache)
    assert copied.fingerprint == original.fingerprint
    save(copy / "zz-extra.png", solid((5, 5, 5)))
    assert load_images(copy, 8, cache_dir=cache).fingerprint != original.fingerprint


def test_an_existing_folder_wins_over_a_builtin_name(tmp_path, cache, monkeypatch):
    save(tmp_path / "shapes" / "mine.png", solid(RED))
    monkeypatch.chdir(tmp_path)
    imageset = load_images("shapes", 8, cache_dir=cache)
    assert imageset.kind == "folder" and len(imageset) == 1


# --------------------------------------------------------------------------- folders: errors


def test_empty_folder_says_what_was_looked_for(tmp_path, cache):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(DataError) as error:
        load_images(empty, 16, cache_dir=cache)
    message = str(error.value)
    assert message.startswith(f"No images found in {empty.resolve()}")
    assert ".jpg, .jpeg, .png, .webp, .bmp, .gif" in message and "recursively" in message


def test_missing_path_names_the_builtin_datasets(tmp_path):
    with pytest.raises(DataError) as error:
        load_images(tmp_path / "nope", 16)
    message = str(error.value)
    assert str(tmp_path / "nope") in message and "does not exist" in message
    for name in BUILTINS:
        assert name in message


def test_a_file_is_not_a_folder(tmp_path):
    path = save(tmp_path / "single.png", solid(RED))
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_images(path, 16)


def test_a_folder_of_only_broken_files_is_an_error_with_an_example(tmp_path, cache):
    folder = tmp_path / "broken"
    truncated_png(save(folder / "a.png", solid(RED)))
    (folder / "b.jpg").write_text("text")
    with pytest.raises(DataError) as error:
        load_images(folder, 16, cache_dir=cache)
    message = str(error.value)
    assert "None of the 2 image files" in message and "a.png" in message and "truncated" in message


@pytest.mark.parametrize("resolution", [0, -3, 2.5, True])
def test_nonsense_resolution_is_a_data_error(resolution):
    with pytest.raises(DataError, match="Resolution"):
        load_images("shapes", resolution, count=1)


def test_too_few_images_explains_the_requirement(mixed_folder, cache):
    imageset = load_images(mixed_folder, 8, cache_dir=cache)
    why = "the largest batch (64) plus the held-out split (32). Add images or lower --batch-size/--samples."
    with pytest.raises(DataError) as error:
        require_count(imageset, 96, why)
    assert str(error.value) == (
        f"Only 9 usable images in {mixed_folder.resolve()} (2 skipped); evoart needs at least 96: {why}"
    )
    require_count(imageset, 9, why)  # exactly enough is fine


def test_too_few_builtin_images_names_the_dataset():
    imageset = load_images("shapes", 8, count=1)
    with pytest.raises(DataError, match=r"^Only 1 usable image in the built-in dataset 'shapes'; .*: raise --count\.$"):
        require_count(imageset, 10, "raise --count.")


# --------------------------------------------------------------------------- folders: cache


def test_second_load_reads_the_cache_without_decoding(mixed_folder, cache, monkeypatch):
    first = load_images(mixed_folder, 16, cache_dir=cache)
    assert not first.cached

    def must_not_decode(path, resolution):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(data, "decode_image", must_not_decode)
    calls = []
    second = load_images(mixed_folder, 16, cache_dir=cache, progress=lambda *a: calls.append(a))
    assert second.cached
    np.testing.assert_array_equal(second.images, first.images)
    assert second.skipped == first.skipped
    assert second.fingerprint == first.fingerprint
    assert calls == [(11, 11)]


def test_changed_added_or_removed_files_invalidate_the_cache(tmp_path, cache):
    folder = tmp_path / "live"
    target = save(folder / "a.png", solid(RED))
    save(folder / "b.png", solid((0, 255, 0)))
    assert tuple(load_images(folder, 8, cache_dir=cache).images[0, 4, 4]) == RED

    save(target, solid((0, 0, 255)))
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    changed = load_images(folder, 8, cache_dir=cache)
    assert not changed.cached and tuple(changed.images[0, 4, 4]) == (0, 0, 255)

    save(folder / "c.png", solid((9, 9, 9)))
    assert len(load_images(folder, 8, cache_dir=cache)) == 3
    (folder / "b.png").unlink()
    assert len(load_images(folder, 8, cache_dir=cache)) == 2
    # superseded entries are cleaned up: one file per (folder, resolution)
    assert len(list((cache / "images").glob("*.npz"))) == 1


def test_each_resolution_has_its_own_cache_entry(mixed_folder, cache):
    load_images(mixed_folder, 8, cache_dir=cache)
    other = load_images(mixed_folder, 16, cache_dir=cache)
    assert not other.cached and other.images.shape[1] == 16
    assert load_images(mixed_folder, 8, cache_dir=cache).cached


def test_a_corrupt_cache_file_is_ignored(mixed_folder, cache):
    load_images(mixed_folder, 8, cache_dir=cache)
    (entry,) = (cache / "images").glob("*.npz")
    entry.write_bytes(b"garbage")
    again = load_images(mixed_folder, 8, cache_dir=cache)
    assert not again.cached and len(again) == 9


def test_nothing_is_ever_written_into_the_users_folder(mixed_folder, cache):
    before = snapshot(mixed_folder)
    load_images(mixed_folder, 16, cache_dir=cache)
    load_images(mixed_folder, 16, cache_dir=cache)
    load_images(mixed_folder, 16)  # default cache location
    preview(mixed_folder, 16, n=4, cache_dir=cache)
    assert snapshot(mixed_folder) == before
    assert not list(mixed_folder.rglob("*.npz"))


def test_cache_location_follows_evoart_cache_then_xdg_then_home(tmp_path, mixed_folder, monkeypatch):
    monkeypatch.setenv("EVOART_CACHE", str(tmp_path / "evo"))
    load_images(mixed_folder, 8)
    assert list((tmp_path / "evo" / "images").glob("*.npz"))

    monkeypatch.delenv("EVOART_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_cache_dir() == tmp_path / "xdg" / "evoart"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.default_cache_dir() == tmp_path / "home" / ".cache" / "evoart"


def test_an_unwritable_cache_does_not_stop_loading(mixed_folder, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    assert len(load_images(mixed_folder, 8, cache_dir=blocker)) == 9


# --------------------------------------------------------------------------- holdout split


def test_holdout_split_is_disjoint_complete_and_deterministic():
    train, held = holdout_split(100, 20, seed=1)
    assert len(train) == 80 and len(held) == 20
    assert not set(train) & set(held)
    assert sorted(set(train) | set(held)) == list(range(100))
    again_train, again_held = holdout_split(100, 20, seed=1)
    np.testing.assert_array_equal(train, again_train)
    np.testing.assert_array_equal(held, again_held)
    assert not np.array_equal(holdout_split(100, 20, seed=2)[1], held)


def test_holdout_split_is_a_random_sample_not_the_tail():
    _, held = holdout_split(1000, 100, seed=0)
    assert held.min() < 100 and held.max() > 900


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(0, 2**32))))
def test_holdout_split_partitions_any_size(args):
    n, n_holdout, seed = args
    train, held = holdout_split(n, n_holdout, seed)
    assert len(held) == n_holdout
    assert np.array_equal(np.sort(np.concatenate([train, held])), np.arange(n))


def test_holdout_larger_than_dataset_is_rejected():
    with pytest.raises(ValueError):
        holdout_split(10, 11, seed=0)


# --------------------------------------------------------------------------- preview


def test_preview_of_a_builtin_is_a_readable_grid():
    grid = preview("landscapes", 16, n=16)
    tile = 16 * 6  # small images are scaled up to about 96 px
    assert grid.size == (4 * tile + 5 * 2, 4 * tile + 5 * 2)


def test_preview_of_a_folder_shows_its_images(mixed_folder, cache):
    grid = preview(mixed_folder, 32, n=64, scale=1, cache_dir=cache)
    assert grid.size == (3 * 32 + 4 * 2, 3 * 32 + 4 * 2)  # 9 usable images


def test_imageset_is_a_plain_dataclass():
    imageset = load_images("shapes", 8, count=2)
    assert isinstance(imageset, ImageSet)
    assert set(imageset.__dataclass_fields__) >= {"name", "kind", "source", "fingerprint", "images", "skipped"}


# --------------------------------------------------------------------------- three-way split


def test_three_way_split_is_disjoint_complete_and_deterministic():
    train, fitness, evaluation = data.three_way_split(np.arange(1000), 256, 256, seed=3)
    assert (len(train), len(fitness), len(evaluation)) == (488, 256, 256)
    assert not (set(train) & set(fitness) or set(train) & set(evaluation) or set(fitness) & set(evaluation))
    assert np.array_equal(np.sort(np.concatenate([train, fitness, evaluation])), np.arange(1000))
    again = data.three_way_split(np.arange(1000), 256, 256, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip((train, fitness, evaluation), again))
    assert not np.array_equal(data.three_way_split(np.arange(1000), 256, 256, seed=4)[2], evaluation)


def test_the_evaluation_split_does_not_depend_on_the_fitness_holdout_size():
    small = data.three_way_split(np.arange(1000), 64, 256, seed=0)[2]
    large = data.three_way_split(np.arange(1000), 400, 256, seed=0)[2]
    np.testing.assert_array_equal(small, large)


def test_crops_of_one_photograph_stay_in_one_split():
    sources = np.repeat(np.arange(60), 10)  # 60 photographs, 10 crops each
    parts = data.three_way_split(sources, 100, 100, seed=1)
    for part in parts:
        assert len(part) % 10 == 0
    owners = [set(sources[part]) for part in parts]
    assert not (owners[0] & owners[1] or owners[0] & owners[2] or owners[1] & owners[2])
    assert len(parts[1]) == 100 and len(parts[2]) == 100


def test_folder_files_named_source_at_k_share_a_source():
    assert data.folder_source("crops/harbour@3.png") == "crops/harbour"
    assert data.folder_source("harbour@12.jpg") == "harbour"
    assert data.folder_source("a/harbour@12.jpg") != data.folder_source("b/harbour@12.jpg")
    for separate in ("IMG_0001.jpg", "photo-2.png", "icon@2x.png", "x/y.png"):
        assert data.folder_source(separate) == separate


def test_a_folder_of_crops_splits_by_photograph(tmp_path, cache):
    folder = tmp_path / "crops"
    rng = np.random.default_rng(0)
    for photo in range(40):
        for k in range(4):
            save(folder / "sub" / f"p{photo:02d}@{k}.png", Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)))
    save(folder / "lonely.png", solid(RED))
    imageset = load_images(folder, 8, cache_dir=cache)
    assert len(np.unique(imageset.source_ids())) == 41
    split = data.split_run(imageset, holdout=20, eval_holdout=20, seed=0, batch=64)
    ids = imageset.source_ids()
    groups = [set(ids[getattr(split, part)]) for part in ("train", "fitness", "evaluation")]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    again = load_images(folder, 8, cache_dir=cache)  # from the decode cache: the same sources
    assert again.cached and np.array_equal(again.source_ids(), ids)


def test_the_run_split_needs_batch_plus_both_holdouts():
    imageset = load_images("shapes", 8, count=500)
    with pytest.raises(DataError, match=r"needs at least 576: the largest batch \(64\) plus the fitness holdout "
                                        r"\(256\) plus the evaluation holdout \(256\)"):
        data.split_run(imageset, holdout=256, eval_holdout=256, seed=0, batch=64)


def test_a_recorded_split_is_rebuilt_exactly_and_checked():
    imageset = load_images("shapes", 8, count=700)
    split = data.split_run(imageset, holdout=128, eval_holdout=64, seed=5, batch=64)
    record = split.record()
    # rebuilt from the record alone, whatever the configuration now asks for
    again = data.split_run(imageset, holdout=256, eval_holdout=256, seed=99, batch=64, recorded=record)
    for part in ("train", "fitness", "evaluation"):
        np.testing.assert_array_equal(getattr(again, part), getattr(split, part))
    tampered = {**record, "digests": {**record["digests"], "evaluation": "0" * 16}}
    with pytest.raises(DataError, match="evaluation split of this run cannot be rebuilt"):
        data.split_run(imageset, holdout=128, eval_holdout=64, seed=5, batch=64, recorded=tampered)


def test_runs_recorded_before_evaluation_splits_keep_their_two_way_split():
    from evoart.config import EvolveConfig

    cfg = EvolveConfig(resolution=16, seed=4)
    images, train, held = data.load_run_data(cfg, recorded=data.recorded_split({"evolve": {}}))
    old_train, old_held = holdout_split(len(images), 256, seed=4)  # what such a run trained on
    np.testing.assert_array_equal(train, images.images[old_train])
    np.testing.assert_array_equal(held, images.images[old_held])
    _, split = data.load_run_split(cfg, recorded=data.LEGACY_RECORD)
    assert split.version == 1 and len(split.evaluation) == 0


def test_a_new_run_never_returns_the_evaluation_images_for_training_or_fitness():
    from evoart.config import EvolveConfig

    cfg = EvolveConfig(resolution=16, seed=2)
    images, split = data.load_run_split(cfg)
    _, train, held = data.load_run_data(cfg)
    evaluation = {img.tobytes() for img in images.images[split.evaluation]}
    assert len(evaluation) == 256 and len(held) == 256
    assert not evaluation & {img.tobytes() for img in np.concatenate([train, held])}


def test_shapes_labels_do_not_change_a_pixel():
    from evoart.data.shapes import shapes_with_labels

    from evoart.seeds import array_digest

    images, labels = shapes_with_labels(300, 16, seed=7)
    # the dataset fingerprint of these arguments, as it was before labels existed
    assert array_digest(images) == load_images("shapes", 16, count=300, seed=7).fingerprint == "4f962d5184a59fc0"
    assert set(labels["count"]) == {1, 2, 3} and set(labels["kind"]) == {0, 1, 2}
    assert ((labels["kinds"] >= 0).sum(1) == labels["count"]).all()
