"""Loading data: image folders, .npz arrays, unlabelled pools, and every kind of bad input."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lagaug.core.data import load_data, load_unlabeled, pools, sources
from lagaug.core.data.sources import BadImageWarning, FolderPool
from lagaug.core.data.splits import stratified_split
from lagaug.core.data.synthetic import SyntheticPool
from lagaug.core.errors import ConfigError, DataError

# -- helpers that make tiny data sets ---------------------------------------------------------------


def _png(path: Path, value: int = 128, size=(20, 24), rgb: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((size[1], size[0], 3) if rgb else (size[1], size[0]), value, np.uint8)
    Image.fromarray(arr).save(path)
    return path


def _class_folder(root: Path, counts: dict[str, int], **kw) -> Path:
    for name, n in counts.items():
        for i in range(n):
            _png(root / name / f"{i:03d}.png", value=10 * i, **kw)
    return root


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _mnist_like(n_train=20, n_test=6, k=2, shape=(28, 28)) -> dict:
    rng = np.random.default_rng(0)
    return dict(
        x_train=rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        y_train=np.arange(n_train, dtype=np.uint8) % k,
        x_test=rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        y_test=np.arange(n_test, dtype=np.uint8) % k,
    )


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


@contextmanager
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BadImageWarning)
        yield


# -- image folders ----------------------------------------------------------------------------------


def test_class_folders_are_split_stratified(tmp_path):
    root = _class_folder(tmp_path / "data", {"scratch": 10, "good": 10})
    splits = load_data(root, image_size=32)
    assert splits.class_names == ["good", "scratch"]  # sorted folder names
    assert splits.train.class_counts() == [6, 6]
    assert splits.val.class_counts() == [2, 2]
    assert splits.test.class_counts() == [2, 2]
    assert splits.train.images.shape[1:] == (1, 32, 32)  # gray, resized from 20x24
    assert splits.train.labels.dtype == torch.int64
    all_ids = splits.train.ids + splits.val.ids + splits.test.ids
    assert sorted(all_ids) == sorted(f"{c}/{i:03d}.png" for c in ("good", "scratch") for i in range(10))
    assert splits.extra["carved"] == ["test", "val"]
    assert splits.unlabeled is None


def test_split_folders_are_kept_and_missing_val_is_carved(tmp_path):
    _class_folder(tmp_path / "d" / "train", {"a": 10, "b": 5})
    _class_folder(tmp_path / "d" / "test", {"a": 3, "b": 2})
    splits = load_data(tmp_path / "d", val_fraction=0.2)
    assert splits.test.class_counts() == [3, 2]
    assert all(i.startswith("test/") for i in splits.test.ids)
    assert splits.val.class_counts() == [2, 1] and splits.train.class_counts() == [8, 4]
    assert all(i.startswith("train/") for i in splits.val.ids)
    assert splits.extra["carved"] == ["val"]


def test_all_three_split_folders_carve_nothing(tmp_path):
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        _class_folder(tmp_path / split, {"x": n, "y": n})
    splits = load_data(tmp_path)
    assert [len(splits.train), len(splits.val), len(splits.test)] == [8, 4, 6]
    assert splits.extra["carved"] == []


def test_extensions_any_case_and_hidden_files_ignored(tmp_path):
    _png(tmp_path / "a" / "one.PNG")
    _png(tmp_path / "a" / "two.JpEg")
    _png(tmp_path / "a" / "three.tif")
    _png(tmp_path / "b" / "four.bmp")
    _png(tmp_path / "b" / "five.webp")
    _png(tmp_path / "b" / "six.jpg")
    _png(tmp_path / "b" / ".hidden.png")
    (tmp_path / "b" / ".DS_Store").write_bytes(b"\0junk")
    _png(tmp_path / ".cache" / "x.png")  # a hidden folder is no class
    (tmp_path / "README.txt").write_text("loose files at the top are ignored")
    with _no_warnings():
        splits = load_data(tmp_path, val_fraction=0.3, test_fraction=0.3)
    assert splits.class_names == ["a", "b"]
    assert len(splits.train) + len(splits.val) + len(splits.test) == 6


def test_gray_folder_is_one_channel_and_one_rgb_image_makes_three(tmp_path):
    root = _class_folder(tmp_path, {"a": 4, "b": 4})
    assert load_data(root, val_fraction=0.25, test_fraction=0.25).train.channels == 1
    _png(root / "b" / "color.png", rgb=True, value=90)
    splits = load_data(root, val_fraction=0.25, test_fraction=0.25)
    everything = splits.train.concat(splits.val).concat(splits.test)
    assert everything.channels == 3
    gray = everything.images[everything.ids.index("a/001.png")]
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])  # gray copied to RGB
    assert int(everything.images[everything.ids.index("b/color.png")].float().mean()) == 90


def test_odd_modes_become_gray_or_rgb(tmp_path):
    deep = np.full((10, 10), 65535, np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")  # 16-bit gray
    rgba = Image.new("RGBA", (10, 10), (200, 100, 50, 0))
    rgba.save(tmp_path / "rgba.png")
    pal = Image.new("P", (10, 10), 3)
    pal.save(tmp_path / "pal.png")
    assert sources.read_image_file(tmp_path / "deep.png", size=8, channels=1).tolist() == np.full((1, 8, 8), 255).tolist()
    assert sources._read_image(tmp_path / "rgba.png", 8)[0, 0].tolist() == [200, 100, 50]
    assert sources._read_image(tmp_path / "pal.png", 8).shape == (8, 8, 3)


def _gray16(path: Path, values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values.astype(np.uint16)).save(path)
    return path


def test_16_bit_images_are_scaled_by_one_rule_for_the_data_set_not_by_each_maximum(tmp_path):
    # two nearly identical 16-bit images, maxima 255 and 256: they must load nearly alike
    base = np.full((8, 8), 200)
    a = base.copy()
    a[0, 0] = 255
    b = base.copy()
    b[0, 0] = 256
    for cls, img in (("x", a), ("y", b)):
        for i in range(3):
            _gray16(tmp_path / "d16" / cls / f"{i}.png", img)
    splits = load_data(tmp_path / "d16", image_size=8, val_fraction=0.2, test_fraction=0.2)
    everything = splits.train.concat(splits.val).concat(splits.test)
    means = [float(everything.images[everything.labels == c].float().mean()) for c in (0, 1)]
    assert abs(means[0] - means[1]) < 1.0
    assert means[0] == pytest.approx(200 * 255 / 1023, abs=1.0)  # the data fit in 10 bits: full scale 1023
    assert splits.extra["full_scale"] == 1023


def test_12_bit_data_in_16_bit_files_is_not_nearly_black(tmp_path):
    for cls, value in (("dark", 1000), ("bright", 4000)):
        for i in range(3):
            _gray16(tmp_path / "d12" / cls / f"{i}.png", np.full((8, 8), value))
    splits = load_data(tmp_path / "d12", image_size=8, val_fraction=0.2, test_fraction=0.2)
    assert splits.extra["full_scale"] == 4095
    everything = splits.train.concat(splits.val).concat(splits.test)
    bright = everything.images[everything.labels == splits.class_names.index("bright")]
    assert int(bright.max()) == round(4000 * 255 / 4095)  # 249, not 15 (4000 / 65535 * 255)


def test_wide_npz_arrays_nan_and_alpha_follow_the_documented_rules(tmp_path):
    x16 = np.full((6, 8, 8), 65535, np.uint16)
    path = _npz(tmp_path / "w.npz", x_train=x16, y_train=np.array([0, 1] * 3), x_test=x16[:2] // 2,
                y_test=np.array([0, 1]))
    splits = load_data(path, image_size=8)
    assert int(splits.train.images.max()) == 255 and int(splits.test.images.max()) == 127  # 32767 of 65535
    xf = np.full((6, 8, 8), 0.5, np.float32)
    xf[0, 0, 0] = np.nan
    path = _npz(tmp_path / "f.npz", x_train=xf, y_train=np.array([0, 1] * 3), x_test=xf[:2], y_test=np.array([0, 1]))
    with pytest.warns(UserWarning, match=r"x_train: 1 image\(s\) hold NaN values; they are read as 0"):
        splits = load_data(path, image_size=8)
    assert int(splits.test.images[1, 0, 3, 3]) == 128
    rgba = Image.new("RGBA", (8, 8), (200, 100, 50, 0))
    for cls in ("a", "b"):
        for i in range(3):
            (tmp_path / "alpha" / cls).mkdir(parents=True, exist_ok=True)
            rgba.save(tmp_path / "alpha" / cls / f"{i}.png")
    with pytest.warns(UserWarning, match=r"6 image\(s\) in .*alpha have an alpha channel"):
        load_data(tmp_path / "alpha", image_size=8)


def test_resizing_is_bilinear_and_antialiased(tmp_path):
    arr = np.zeros((64, 64), np.uint8)
    arr[:, 32:] = 255
    arr[::2, :32] = 255  # fine stripes: antialiasing averages them to mid-gray
    Image.fromarray(arr).save(tmp_path / "x.png")
    small = sources._read_image(tmp_path / "x.png", 16)
    assert small.shape == (16, 16)
    assert abs(int(small[:, :6].mean()) - 128) < 10
    assert small[:, 10:].min() == 255
    assert sources._read_image(tmp_path / "x.png", 128).shape == (128, 128)


def test_progress_bar_counts_every_file(tmp_path):
    root = _class_folder(tmp_path, {"a": 5, "b": 4})
    seen = []

    class FakeProgress:
        @contextmanager
        def task(self, description, total):
            seen.append(total)
            yield type("T", (), {"advance": lambda self, n=1, status=None: seen.append(n)})()

    load_data(root, progress=FakeProgress())
    assert seen[0] == 9 and sum(seen[1:]) == 9


def test_same_seed_same_split_other_seed_other_split(tmp_path):
    root = _class_folder(tmp_path, {"a": 20, "b": 20})
    first, again, other = (load_data(root, seed=s) for s in (4, 4, 5))
    assert first.val.ids == again.val.ids and first.test.ids == again.test.ids
    assert torch.equal(first.train.images, again.train.images)
    assert first.val.ids != other.val.ids


# -- .npz arrays ------------------------------------------------------------------------------------


def test_npz_like_mnist(tmp_path):
    arrays = _mnist_like(n_train=20, n_test=6)
    path = _npz(tmp_path / "m.npz", **arrays, class_names=np.array(["ok", "bad"]))
    splits = load_data(path, image_size=16, val_fraction=0.2)
    assert splits.class_names == ["ok", "bad"]
    assert splits.train.class_counts() == [8, 8] and splits.val.class_counts() == [2, 2]
    assert len(splits.test) == 6 and splits.test.ids[5] == "npz:test/5"
    assert all(i.startswith("npz:train/") for i in splits.val.ids)
    assert splits.train.images.shape[1:] == (1, 16, 16)
    same = load_data(path, image_size=28)  # no resize: the pixels come through unchanged
    assert torch.equal(same.test.images[:, 0], torch.from_numpy(arrays["x_test"]))


def test_npz_rgb_float_and_default_class_names(tmp_path):
    arrays = _mnist_like(n_train=10, n_test=4, k=3, shape=(8, 8))
    arrays["x_train"] = np.repeat(arrays["x_train"][..., None], 3, axis=3)  # (N, H, W, 3)
    arrays["x_test"] = arrays["x_test"].astype(np.float32) / 255  # floats in [0, 1]
    splits = load_data(_npz(tmp_path / "c.npz", **arrays), image_size=8, val_fraction=0.3)
    assert splits.class_names == ["0", "1", "2"]
    assert splits.train.channels == 3 and splits.test.channels == 3
    assert torch.equal(splits.test.images[:, 1], torch.from_numpy(_mnist_like(10, 4, 3, (8, 8))["x_test"]))


def test_stratified_split_puts_every_class_in_every_part_it_can():
    labels = torch.tensor([0] * 50 + [1] * 10 + [2] * 4 + [3] * 2 + [4])
    rest, val, test = stratified_split(labels, [0.2, 0.1], seed=0)
    # round half up, at least one per part while the class keeps one for training
    assert torch.bincount(labels[val], minlength=5).tolist() == [10, 2, 1, 1, 0]
    assert torch.bincount(labels[test], minlength=5).tolist() == [5, 1, 1, 0, 0]
    assert torch.bincount(labels[rest], minlength=5).tolist() == [35, 7, 2, 1, 1]
    assert sorted(torch.cat([rest, val, test]).tolist()) == list(range(len(labels)))
    tiny = stratified_split(torch.tensor([0, 0, 1]), [0.5, 0.5], seed=0)
    assert torch.bincount(torch.tensor([0, 0, 1])[tiny[0]], minlength=2).tolist()[1] == 1
    assert torch.equal(stratified_split(labels, [0.2], 1)[1], stratified_split(labels, [0.2], 1)[1])


# -- unlabelled pools -------------------------------------------------------------------------------


def test_folder_pool_streams_each_file_once_reading_per_batch(tmp_path, monkeypatch):
    for i in range(23):  # nested folders, no labels; every image a distinct gray level
        _png(tmp_path / "pool" / f"part{i % 3}" / "deeper" / f"{i}.png", value=10 * i)
    reads = []
    real = sources._read_image
    monkeypatch.setattr(pools, "_read_image", lambda *a, **k: reads.append(a[0]) or real(*a, **k))
    pool = load_unlabeled(tmp_path / "pool", image_size=8)
    assert isinstance(pool, FolderPool) and len(pool) == 23 and reads == []
    batches = pool.iter_batches(5, torch.Generator().manual_seed(0))
    first = next(batches)
    assert first.shape == (5, 1, 8, 8) and first.dtype == torch.float32 and len(reads) == 5
    values = [round(float(v) * 255) for b in [first, *batches] for v in b[:, 0, 0, 0]]
    assert sorted(values) == [10 * i for i in range(23)]
    again = next(pool.iter_batches(5, torch.Generator().manual_seed(0)))
    other = next(pool.iter_batches(5, torch.Generator().manual_seed(1)))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_unlabeled_pool_matches_the_labelled_channels(tmp_path):
    root = _class_folder(tmp_path / "rgb", {"a": 5, "b": 5}, rgb=True)
    _png(tmp_path / "gray_pool" / "0.png")
    splits = load_data(root, unlabeled=tmp_path / "gray_pool", image_size=16)
    assert splits.unlabeled.channels == 3
    assert next(splits.unlabeled.iter_batches(4, torch.Generator())).shape == (1, 3, 16, 16)
    synthetic = load_data(root, unlabeled="default", image_size=16).unlabeled
    assert isinstance(synthetic, SyntheticPool) and synthetic.channels == 3


def test_unlabeled_npz_and_default_replacement(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (7, 12, 12), dtype=np.uint8)
    pool = load_unlabeled(_npz(tmp_path / "u.npz", x=x), image_size=16)
    assert len(pool) == 7
    assert sum(len(b) for b in pool.iter_batches(3, torch.Generator())) == 7
    pool2 = load_unlabeled(_npz(tmp_path / "v.npz", x_train=x, y_train=np.zeros(7)), image_size=16)
    assert len(pool2) == 7
    splits = load_data(unlabeled=tmp_path / "u.npz", image_size=16)
    assert len(splits.unlabeled) == 7  # the default's own pool is replaced
    with pytest.raises(DataError, match=r"no array 'x', 'x_pool' or 'x_train' \(it has: y\); store the unlabeled images as x, or name the array: .*w\.npz:KEY$") as exc:
        load_unlabeled(_npz(tmp_path / "w.npz", y=np.zeros(3)))
    _one_line(exc)


def test_unlabeled_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="unlabeled data path .* does not exist"):
        load_unlabeled(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="holds no image files"):
        load_unlabeled(tmp_path / "empty")
    _png(tmp_path / "mixed" / "good.png")
    (tmp_path / "mixed" / "broken.png").write_bytes(b"not a png at all")
    (tmp_path / "mixed" / "notes.txt").write_text("x")
    with pytest.warns(BadImageWarning, match=r"ignoring 1 non-image file.*notes\.txt"):
        pool = load_unlabeled(tmp_path / "mixed", image_size=8)
    with pytest.warns(BadImageWarning, match=r"skipping .*broken\.png"):
        assert sum(len(b) for b in pool.iter_batches(4, torch.Generator())) == 1
    with pytest.warns(BadImageWarning, match="ignoring 1 non-image file"):
        strict = load_unlabeled(tmp_path / "mixed", image_size=8, bad_images="error")
    with pytest.raises(DataError, match=r"broken\.png"):
        list(strict.iter_batches(4, torch.Generator()))


# -- bad input: one clear line each -----------------------------------------------------------------


def test_missing_path_and_wrong_kind_of_file(tmp_path):
    with pytest.raises(DataError, match=r"data path .*nowhere does not exist") as exc:
        load_data(tmp_path / "nowhere")
    _one_line(exc)
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=r"data\.csv is neither a folder nor an \.npz file"):
        load_data(tmp_path / "data.csv")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="has no sub-folders; put each class") as exc:
        load_data(tmp_path)
    _one_line(exc)


def test_empty_class_folder(tmp_path):
    _class_folder(tmp_path, {"a": 3})
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=r"class folder .*b is empty"):
        load_data(tmp_path)


def test_only_one_class(tmp_path):
    _class_folder(tmp_path, {"only": 5})
    with pytest.raises(DataError, match=r"only one class \(only\); a classifier needs at least two") as exc:
        load_data(tmp_path)
    _one_line(exc)


def _truncated_png(path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (32, 32), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path


@pytest.mark.parametrize(
    "name, make, reason",
    [
        ("cut.png", _truncated_png, "cannot be decoded, it may be truncated or corrupt"),
        ("zero.png", lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)"),
        ("text.jpg", lambda p: p.write_text("hello, not an image"), "is not an image Pillow can identify"),
        ("notes.txt", lambda p: p.write_text("a note"), r"is not an image file \(extension \.txt\)"),
    ],
)
def test_bad_files_are_skipped_with_a_warning_or_fail(tmp_path, name, make, reason):
    root = _class_folder(tmp_path, {"a": 5, "b": 5})
    make(root / "b" / name)
    with pytest.warns(BadImageWarning, match=rf"skipping .*{name.replace('.', '[.]')}: it {reason}"):
        splits = load_data(root)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10
    with pytest.raises(DataError, match=rf"{name.replace('.', '[.]')} {reason}.*fix or remove it") as exc:
        load_data(root, bad_images="error")
    _one_line(exc)


def test_class_folder_with_no_readable_images(tmp_path):
    root = _class_folder(tmp_path, {"a": 5})
    (root / "b").mkdir()
    (root / "b" / "x.png").write_bytes(b"")
    (root / "b" / "y.png").write_bytes(b"garbage")
    with pytest.warns(BadImageWarning), pytest.raises(DataError, match=r"class folder .*b has no readable images"):
        load_data(root)


def test_split_layout_mistakes(tmp_path):
    _class_folder(tmp_path / "a" / "val", {"x": 2, "y": 2})
    with pytest.raises(DataError, match=r"has val/ but no train/ folder"):
        load_data(tmp_path / "a")
    _class_folder(tmp_path / "b" / "train", {"x": 2, "y": 2})
    (tmp_path / "b" / "test").mkdir()
    with pytest.raises(DataError, match=r"split folder .*test has no class folders"):
        load_data(tmp_path / "b")
    _class_folder(tmp_path / "c" / "train", {"x": 5, "y": 5})
    _class_folder(tmp_path / "c" / "test", {"x": 1, "z": 1})
    with pytest.raises(DataError, match=r"class 'z' is in test/ but not in train/"):
        load_data(tmp_path / "c")
    _class_folder(tmp_path / "d" / "train", {"x": 5, "y": 5})
    _class_folder(tmp_path / "d", {"stray": 1})
    with pytest.raises(DataError, match=r"mixes split folders .* \(stray/\)"):
        load_data(tmp_path / "d")


def test_too_few_images_to_carve_a_split(tmp_path):
    _class_folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(DataError, match=r"too few training images \(2\) to carve a (val|test) split") as exc:
        load_data(tmp_path)
    _one_line(exc)


def test_npz_missing_key_lists_what_is_there(tmp_path):
    arrays = _mnist_like()
    del arrays["y_test"]
    with pytest.raises(DataError, match=r"has no array 'y_test' \(it has: x_test, x_train, y_train\)") as exc:
        load_data(_npz(tmp_path / "m.npz", **arrays))
    _one_line(exc)


def test_npz_bad_labels(tmp_path):
    arrays = _mnist_like()
    arrays["y_train"] = arrays["y_train"].astype(np.int64)
    arrays["y_train"][3] = -1
    with pytest.raises(DataError, match=r"y_train holds label -1; labels must be class indices"):
        load_data(_npz(tmp_path / "neg.npz", **arrays))
    arrays = _mnist_like()
    arrays["y_test"][0] = 2
    with pytest.raises(DataError, match=r"labels go up to 2 but class_names lists 2 classes"):
        load_data(_npz(tmp_path / "range.npz", **arrays, class_names=np.array(["a", "b"])))
    arrays = _mnist_like()
    arrays["y_train"] = np.zeros_like(arrays["y_train"])
    with pytest.raises(DataError, match=r"y_train holds only one class"):
        load_data(_npz(tmp_path / "one.npz", **arrays))
    arrays = _mnist_like()
    arrays["y_train"] = arrays["y_train"] + 0.5
    with pytest.raises(DataError, match=r"y_train must be a 1-D array of integer class indices"):
        load_data(_npz(tmp_path / "float.npz", **arrays))


def test_npz_length_mismatch_and_empty_split(tmp_path):
    arrays = _mnist_like(n_train=10)
    arrays["y_train"] = arrays["y_train"][:9]
    with pytest.raises(DataError, match=r"x_train has 10 images but y_train has 9 labels") as exc:
        load_data(_npz(tmp_path / "len.npz", **arrays))
    _one_line(exc)
    arrays = _mnist_like()
    arrays["x_test"], arrays["y_test"] = arrays["x_test"][:0], arrays["y_test"][:0]
    with pytest.raises(DataError, match=r"x_test holds no images"):
        load_data(_npz(tmp_path / "empty.npz", **arrays))


def test_npz_unreadable_or_pickled(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(DataError, match=r"junk\.npz cannot be read as an \.npz file") as exc:
        load_data(tmp_path / "junk.npz")
    _one_line(exc)
    arrays = _mnist_like()
    arrays["class_names"] = np.array([{"a": 1}, None], dtype=object)
    with pytest.raises(DataError, match=r"holds pickled objects"):
        load_data(_npz(tmp_path / "pickled.npz", **arrays))
    arrays = _mnist_like()
    arrays["x_train"] = arrays["x_train"][:, :, :, None, None]
    with pytest.raises(DataError, match=r"x_train has shape .*; images must be"):
        load_data(_npz(tmp_path / "shape.npz", **arrays))


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(bad_images="skip"), "--bad-images must be 'warn' or 'error', got 'skip'"),
        (dict(val_fraction=0), "val_fraction must be a number between 0 and 1"),
        (dict(test_fraction=1.5), "test_fraction must be a number between 0 and 1"),
        (dict(val_fraction=0.6, test_fraction=0.4), r"val_fraction \+ test_fraction must be below 1"),
        (dict(image_size=4), "--image-size must be a whole number from 8 to 1024, got 4"),
        (dict(image_size=32.0), "--image-size must be a whole number"),
        (dict(seed=-1), "--split-seed must be a whole number of 0 or more"),
    ],
)
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message) as exc:
        load_data("default", **options)
    _one_line(exc)


def test_read_image_file_for_single_images(tmp_path):
    path = _png(tmp_path / "one.png", value=77, size=(10, 12))
    img = sources.read_image_file(path, size=16, channels=3)
    assert img.shape == (3, 16, 16) and img.dtype == torch.uint8 and int(img.float().mean()) == 77
    assert sources.read_image_file(path, size=8, channels=1).shape == (1, 8, 8)
    with pytest.raises(DataError, match=r"image .*missing\.png does not exist"):
        sources.read_image_file(tmp_path / "missing.png", size=8, channels=1)
    (tmp_path / "bad.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"bad\.png is empty \(0 bytes\)"):
        sources.read_image_file(tmp_path / "bad.png", size=8, channels=1)
