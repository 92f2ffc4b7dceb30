"""Stimuli loaded from files: image folders, .npz archives, zarr arrays with a CSV table."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
import zarr
from PIL import Image, ImageFile

import neurorecord
from neurorecord.cli.main import main
from neurorecord.errors import StimulusError
from neurorecord.protocol import protocol_from_text
from neurorecord.stimuli import build_stimulus_sets
from neurorecord.stimuli.arrays import NpySet, NpzSet, ZarrSet, read_table
from neurorecord.stimuli.loaded import ImageFolderSet
from neurorecord.subjects import load_zoo_subject

RNG = np.random.default_rng(0)


def protocol_text(entry: str) -> str:
    """A digits-mlp protocol whose one stimulus set is ``entry`` (YAML lines of the list item)."""
    lines = entry.strip().splitlines()
    item = "  - " + lines[0] + "".join("\n    " + line for line in lines[1:])
    return f"neurorecord: 1\nname: t\nsubject:\n  zoo: digits-mlp\nstimuli:\n{item}\nrecord:\n  regions: [fc1]\n  batch_size: 4\n"


def build(tmp_path, entry: str):
    protocol = protocol_from_text(protocol_text(entry), path=tmp_path / "protocol.yaml")
    return build_stimulus_sets(protocol)[0]


def build_error(tmp_path, entry: str) -> str:
    with pytest.raises(StimulusError) as info:
        build(tmp_path, entry)
    return str(info.value)


def save(path, pixels, **kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **kwargs)


@pytest.fixture
def grey_folder(tmp_path):
    """Three classes of 5x7 8-bit grey png images, one nested, plus hidden files to ignore."""
    root = tmp_path / "photos"
    pixels = {}
    for rel in ["zebra/b.png", "zebra/a.png", "ant/sub/x.png", "ant/w.png", "mouse/m.PNG"]:
        pixels[rel] = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
        save(root / rel, pixels[rel])
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "ant" / ".hidden.txt").write_text("junk")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "t.txt").write_text("junk")
    return root, pixels


def test_image_folder_labels_ids_and_exact_pixels(grey_folder, tmp_path):
    root, pixels = grey_folder
    s = build(tmp_path, "name: photos\nkind: image_folder\npath: photos")
    order = ["ant/sub/x.png", "ant/w.png", "mouse/m.PNG", "zebra/a.png", "zebra/b.png"]
    params = s.parameters()
    assert len(s) == 5 and s.image_shape == (1, 5, 7)
    assert params["stimulus_id"].tolist() == order
    assert params["category"].tolist() == ["ant", "ant", "mouse", "zebra", "zebra"]
    assert params["label"].tolist() == [0, 0, 1, 2, 2] and params["label"].dtype == np.int64
    got = s.images(np.array([4, 0, 2]))
    assert got.dtype == np.float32 and got.shape == (3, 1, 5, 7)
    for k, rel in zip([4, 0, 2], got):
        assert np.array_equal(rel[0], pixels[order[k]].astype(np.float32) / 255)


def test_rgb_png_exact_and_jpg_as_pillow_decodes_it(tmp_path):
    y, x = np.mgrid[0:6, 0:4]
    rgb = np.stack([y * 40, x * 60, 200 - y * 20], axis=-1).astype(np.uint8)  # smooth, so jpeg keeps it close
    save(tmp_path / "f" / "a" / "p.png", rgb)
    save(tmp_path / "f" / "b" / "q.JPEG", rgb, quality=95, subsampling=0)
    s = ImageFolderSet("f", tmp_path / "f")
    assert s.image_shape == (3, 6, 4)
    got = s.images(np.arange(2))
    assert np.array_equal(got[0], rgb.transpose(2, 0, 1).astype(np.float32) / 255)
    decoded = np.asarray(Image.open(tmp_path / "f" / "b" / "q.JPEG")).transpose(2, 0, 1).astype(np.float32) / 255
    assert np.array_equal(got[1], decoded)
    assert np.abs(got[1] - got[0]).max() < 0.05  # lossy, but the same picture


def test_sixteen_bit_alpha_palette_and_bilevel_images(tmp_path):
    deep = RNG.integers(0, 65536, (3, 3), dtype=np.uint16)
    save(tmp_path / "f" / "a" / "deep.png", deep)
    save(tmp_path / "f" / "b" / "deep.tif", deep)
    s = ImageFolderSet("f", tmp_path / "f")
    want = deep.astype(np.float32) / 65535
    assert np.array_equal(s.images(np.arange(2))[:, 0], np.stack([want, want]))

    rgba = RNG.integers(0, 256, (3, 3, 4), dtype=np.uint8)
    save(tmp_path / "g" / "a" / "rgba.png", rgba)
    palette = Image.fromarray(np.array([[[255, 0, 0], [0, 0, 255], [0, 255, 0]]] * 3, dtype=np.uint8)).convert("P")
    (tmp_path / "g" / "b").mkdir()
    palette.save(tmp_path / "g" / "b" / "pal.gif")
    bits = Image.fromarray(np.eye(3, dtype=bool))
    bits.save(tmp_path / "g" / "b" / "z.bmp")
    s = ImageFolderSet("g", tmp_path / "g", channels=3)
    got = s.images(np.arange(3))
    colour = rgba[..., :3].astype(np.float32) / 255
    opacity = rgba[..., 3:].astype(np.float32) / 255
    np.testing.assert_allclose(got[0], (colour * opacity).transpose(2, 0, 1), rtol=1e-6)
    assert got[1][:, 0, 0].tolist() == [1, 0, 0] and got[1][:, 0, 1].tolist() == [0, 0, 1]
    assert np.array_equal(got[2], np.repeat(np.eye(3, dtype=np.float32)[None], 3, axis=0))


def test_pixels_are_decoded_only_when_asked(grey_folder, monkeypatch):
    root, _ = grey_folder
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.filename) or load(self))
    s = ImageFolderSet("photos", root)
    assert decoded == []
    s.images(np.array([1, 3]))
    assert [str(p) for p in decoded] == [str(root / "ant" / "w.png"), str(root / "zebra" / "a.png")]


def test_sizes_differ(tmp_path):
    ramp = np.tile(np.arange(12, dtype=np.uint8) * 20, (8, 1))
    save(tmp_path / "photos" / "a" / "big.png", ramp)
    save(tmp_path / "photos" / "b" / "small.png", ramp[:4, :6])
    msg = build_error(tmp_path, "name: photos\nkind: image_folder\npath: photos")
    assert "photos: stimuli 'photos': images differ in size (height x width): a/big.png is 8x12, b/small.png is 4x6; give preprocess.resize" in msg
    s = build(tmp_path, "name: photos\nkind: image_folder\npath: photos\npreprocess: {resize: [4, 6]}")
    got = s.images(np.arange(2))
    assert got.shape == (2, 1, 4, 6)
    want = np.asarray(Image.fromarray(ramp.astype(np.float32) / 255).resize((6, 4), Image.BILINEAR))
    np.testing.assert_allclose(got[0, 0], want, atol=1e-6)
    assert np.array_equal(got[1, 0], ramp[:4, :6].astype(np.float32) / 255)  # already that size: untouched


def test_grey_and_colour_mixed(tmp_path):
    rgb = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    save(tmp_path / "photos" / "a" / "grey.png", rgb[..., 0])
    save(tmp_path / "photos" / "b" / "colour.png", rgb)
    msg = build_error(tmp_path, "name: photos\nkind: image_folder\npath: photos")
    assert "mixes grey and colour images: a/grey.png is grey (mode L), b/colour.png is colour (mode RGB); give preprocess.channels" in msg
    s = build(tmp_path, "name: photos\nkind: image_folder\npath: photos\npreprocess: {channels: 1}")
    got = s.images(np.arange(2))
    assert s.image_shape == (1, 4, 4)
    assert np.array_equal(got[0, 0], rgb[..., 0].astype(np.float32) / 255)
    x = rgb.astype(np.float64) / 255
    np.testing.assert_allclose(got[1, 0], 0.299 * x[..., 0] + 0.587 * x[..., 1] + 0.114 * x[..., 2], atol=1e-6)


def _broken_folder(root, case):
    ok = np.zeros((2, 2), np.uint8)
    if case == "empty":
        root.mkdir()
    elif case == "files only":
        save(root / "a.png", ok)
        save(root / "b.png", ok)
    elif case == "stray file":
        save(root / "cat" / "a.png", ok)
        (root / "notes.txt").write_text("x")
    elif case == "empty class":
        save(root / "cat" / "a.png", ok)
        (root / "dog").mkdir()
    elif case == "not an image":
        save(root / "cat" / "a.png", ok)
        (root / "cat" / "readme.txt").write_text("x")
    elif case == "unreadable":
        save(root / "cat" / "a.png", ok)
        (root / "cat" / "b.png").write_bytes(b"not a png at all")
    elif case == "a file":
        root.write_text("x")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing", "photos: stimuli 'photos': path: folder not found, expected a folder with one sub-folder of images per class"),
        ("a file", "photos: stimuli 'photos': path: is a file, expected a folder with one sub-folder of images per class"),
        ("empty", "photos: stimuli 'photos': the folder is empty; expected one sub-folder of images per class"),
        ("files only", "photos: stimuli 'photos': expected one sub-folder of images per class, found only files: a.png, b.png"),
        ("stray file", "expected one sub-folder of images per class, found files next to the class sub-folders: notes.txt"),
        ("empty class", "photos: stimuli 'photos': class folder 'dog' holds no images"),
        ("not an image", "photos: stimuli 'photos': cat/readme.txt: not an image file; expected .png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff"),
        ("unreadable", "photos/cat/b.png: stimuli 'photos': cannot read the image (cannot identify image file"),
    ],
)
def test_image_folder_errors(tmp_path, case, expected):
    _broken_folder(tmp_path / "photos", case)
    msg = build_error(tmp_path, "name: photos\nkind: image_folder\npath: photos")
    assert expected in msg


def test_validate_reports_folder_error_with_position(tmp_path, capsys):
    _broken_folder(tmp_path / "photos", "empty class")
    path = tmp_path / "p.yaml"
    path.write_text(protocol_text("name: photos\nkind: image_folder\npath: photos"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {path}:6:5: {tmp_path / 'photos'}: stimuli 'photos': class folder 'dog' holds no images" in err


def test_unreadable_pixels_named_when_decoded(tmp_path):
    save(tmp_path / "f" / "a" / "ok.png", RNG.integers(0, 256, (32, 32), dtype=np.uint8))
    whole = (tmp_path / "f" / "a" / "ok.png").read_bytes()
    (tmp_path / "f" / "a" / "cut.png").write_bytes(whole[: len(whole) // 2])  # the header survives, the pixels do not
    s = ImageFolderSet("f", tmp_path / "f")
    with pytest.raises(StimulusError, match=r"f/a/cut.png: stimuli 'f': cannot read the image"):
        s.images(np.arange(2))


def test_folder_provenance_hash(grey_folder, tmp_path):
    root, pixels = grey_folder
    described = ImageFolderSet("photos", root).describe()
    assert described["path"] == str(root) and described["categories"] == ["ant", "mouse", "zebra"]
    assert described["n"] == 5 and described["image_shape"] == [1, 5, 7] and len(described["sha256"]) == 64
    copy = shutil.copytree(root, tmp_path / "copy")
    assert ImageFolderSet("photos", copy).describe()["sha256"] == described["sha256"]
    changed = pixels["zebra/a.png"].copy()
    changed[0, 0] ^= 1
    save(copy / "zebra" / "a.png", changed)
    assert ImageFolderSet("photos", copy).describe()["sha256"] != described["sha256"]


def test_npz_set(tmp_path):
    images = RNG.integers(0, 256, (4, 3, 2, 2), dtype=np.uint8)
    np.savez(
        tmp_path / "set.npz",
        images=images,
        y=np.array([1, 0, 1, 0]),
        contrast=np.array([0.1, 0.2, 0.3, 0.4]),
        animal=np.array(["cat", "dog", "cat", "emu"]),
        stimulus_id=np.array([10, 11, 12, 13]),
        mean_image=np.zeros((3, 2, 2)),
    )
    s = build(tmp_path, "name: toys\nkind: npz\npath: set.npz\nlabels: y")
    params = s.parameters()
    assert s.image_shape == (3, 2, 2) and len(s) == 4
    assert params["stimulus_id"].tolist() == ["10", "11", "12", "13"]
    assert params["label"].tolist() == [1, 0, 1, 0] and params["contrast"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert params["animal"].tolist() == ["cat", "dog", "cat", "emu"] and "mean_image" not in params
    assert np.array_equal(s.images(np.array([3, 1])), images[[3, 1]].astype(np.float32))  # unscaled
    described = s.describe()
    assert described["ignored"] == ["mean_image"] and described["coords"] == ["animal", "contrast", "label", "stimulus_id"]
    assert len(described["sha256"]) == 64
    np.savez(tmp_path / "plain.npz", images=images[:, 0])
    plain = NpzSet("plain", tmp_path / "plain.npz")
    assert plain.image_shape == (1, 2, 2) and plain.parameters()["stimulus_id"].tolist() == ["plain-0", "plain-1", "plain-2", "plain-3"]


@pytest.mark.parametrize(
    ("arrays", "entry", "expected"),
    [
        ({"imgs": np.zeros((2, 3, 3))}, "", "set.npz: stimuli 'toys': images: no array 'images' in the archive (did you mean 'imgs'?); its arrays: imgs"),
        ({"images": np.zeros((2, 3, 3))}, "labels: y", "stimuli 'toys': labels: no array 'y' in the archive; its arrays: images"),
        ({"images": np.zeros((2, 3, 3)), "y": np.array([0.5, 1.0])}, "labels: y", "labels: array 'y' must hold 2 integers (one per image), found dtype float64 and shape (2,)"),
        ({"images": np.zeros((2, 3))}, "", "stimuli 'toys': array 'images' expected a real numeric array of shape (n, C, H, W) or (n, H, W), found dtype float64 and shape (2, 3)"),
        ({"images": np.zeros((2, 3, 3), dtype=complex)}, "", "expected a real numeric array of shape (n, C, H, W) or (n, H, W), found dtype complex128"),
        ({"images": np.zeros((2, 3, 3)), "repetition": np.array([1, 2])}, "", "'repetition' is a coordinate the recorder adds itself; rename it"),
        ({"images": np.zeros((2, 3, 3)), "label": np.array(["a", "b"])}, "", "set.npz: stimuli 'toys': label: expected integers (class indices), found text values such as 'a'"),
        ({"images": np.zeros((2, 3, 3)), "stimulus_id": np.array(["a", "a"])}, "", "stimulus_id: values must be unique, found repeated: 'a'"),
        ({"images": np.zeros((2, 3, 3)), "when": np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[D]")}, "", "array 'when' (one value per image, so a coordinate) has dtype datetime64[D]; expected numbers, booleans or strings"),
        ({"images": np.zeros((2, 3, 3)), "notes": np.array(["a", None], dtype=object)}, "", "array 'notes' cannot be read without pickle"),
        ({"images": np.zeros((2, 3, 3)), "y": np.array([0, 1]), "label": np.array([1, 0])}, "labels: y", "array 'label' and labels 'y' would both be the 'label' coordinate; rename one"),
    ],
)
def test_npz_errors(tmp_path, arrays, entry, expected):
    np.savez(tmp_path / "set.npz", **arrays)
    assert expected in build_error(tmp_path, "name: toys\nkind: npz\npath: set.npz\n" + entry)


def test_npz_file_errors(tmp_path):
    assert "missing.npz: stimuli 'toys': path: file not found, expected a .npz archive" in build_error(tmp_path, "name: toys\nkind: npz\npath: missing.npz")
    np.save(tmp_path / "one.npy", np.zeros((2, 3, 3)))
    (tmp_path / "one.npy").rename(tmp_path / "one.npz")
    assert "one.npz: stimuli 'toys': path: is a single .npy array, not a .npz archive; use kind: npy" in build_error(tmp_path, "name: toys\nkind: npz\npath: one.npz")
    (tmp_path / "text.npz").write_text("hello")
    assert "text.npz: stimuli 'toys': path: not a readable .npz archive" in build_error(tmp_path, "name: toys\nkind: npz\npath: text.npz")


@pytest.fixture(params=[3, 2], ids=["zarr-v3", "zarr-v2"])
def zarr_images(request, tmp_path):
    images = RNG.integers(0, 1000, (6, 2, 3, 3)).astype(np.uint16)
    array = zarr.create_array(tmp_path / "frames.zarr", shape=images.shape, chunks=(2, 2, 3, 3), dtype="uint16", zarr_format=request.param)
    array[:] = images
    return images


def test_zarr_set_with_table(tmp_path, zarr_images):
    (tmp_path / "frames.csv").write_text(
        "stimulus_id,label,contrast,animal,mixed\n"
        "f0,0,0.5,cat,1\nf1,1,,dog,x\nf2,1,1e-1,cat,2\nf3,0,1,\"emu, big\",3\nf4,2,2,cat,4\nf5,2,3,cat,5\n"
    )
    s = build(tmp_path, "name: movie\nkind: zarr\npath: frames.zarr\ntable: frames.csv")
    params = s.parameters()
    assert s.image_shape == (2, 3, 3) and len(s) == 6
    assert params["stimulus_id"].tolist() == ["f0", "f1", "f2", "f3", "f4", "f5"]
    assert params["label"].dtype == np.int64 and params["label"].tolist() == [0, 1, 1, 0, 2, 2]
    assert params["contrast"].dtype == np.float64 and np.isnan(params["contrast"][1]) and params["contrast"][2] == 0.1
    assert params["animal"].tolist()[3] == "emu, big" and params["mixed"].tolist()[:2] == ["1", "x"]
    for index in (np.array([1, 2, 3]), np.array([5, 0, 2])):
        assert np.array_equal(s.images(index), zarr_images[index].astype(np.float32))
    described = s.describe()
    assert described["zarr_format"] in (2, 3) and len(described["sha256"]) == 64 and len(described["table_sha256"]) == 64


def test_zarr_reads_at_each_batch(tmp_path, zarr_images):
    s = ZarrSet("movie", tmp_path / "frames.zarr")
    before = s.describe()["sha256"]
    zarr.open_array(tmp_path / "frames.zarr", mode="r+")[4] = 7  # written after the set was built
    assert np.all(s.images(np.array([4])) == 7) and np.array_equal(s.images(np.array([3]))[0], zarr_images[3])
    assert s.describe()["sha256"] != before
    assert s.parameters()["stimulus_id"].tolist()[:2] == ["movie-0", "movie-1"]


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("label\n0\n1\n", "frames.csv: stimuli 'movie': table: 2 rows, but the array "),
        ("stimulus_id\na\nb\na\nc\nb\nd\n", "frames.csv: stimuli 'movie': table: stimulus_id: values must be unique, found repeated: 'a', 'b'"),
        ("label\n0\n1\n2\n3\n4\n4.5\n", "frames.csv: stimuli 'movie': table: label: expected integers (class indices), found float64 values such as 4.5"),
        ("label\n0\n1\n2\n3\n4\n\n", "table: 5 rows, but the array"),
        ("stimulus_set\n0\n1\n2\n3\n4\n5\n", "'stimulus_set' is a coordinate the recorder adds itself"),
        ("a,b\n1,2\n3\n", "frames.csv: stimuli 'movie': table: data row 2 has 1 cells, the header has 2"),
        ("a,a\n1,2\n", "table: column 'a' appears twice in the header"),
        ("", "table: the file is empty; expected a header row naming the columns, then one row per image"),
    ],
)
def test_zarr_table_errors(tmp_path, zarr_images, table, expected):
    (tmp_path / "frames.csv").write_text(table)
    assert expected in build_error(tmp_path, "name: movie\nkind: zarr\npath: frames.zarr\ntable: frames.csv")


def test_zarr_row_count_message_names_both_counts(tmp_path, zarr_images):
    (tmp_path / "frames.csv").write_text("label\n0\n1\n")
    msg = build_error(tmp_path, "name: movie\nkind: zarr\npath: frames.zarr\ntable: frames.csv")
    assert f"table: 2 rows, but the array {tmp_path / 'frames.zarr'} holds 6 images; expected one row per image" in msg


def test_zarr_path_errors(tmp_path):
    entry = "name: movie\nkind: zarr\npath: frames.zarr"
    assert "frames.zarr: stimuli 'movie': path: not found, expected the folder of a zarr array" in build_error(tmp_path, entry)
    group = zarr.open_group(tmp_path / "frames.zarr", mode="w")
    group.create_array("left", shape=(2, 3, 3), dtype="uint8")
    msg = build_error(tmp_path, entry)
    assert f"path: is a zarr group, not an array; give the array's folder, one of: {tmp_path / 'frames.zarr' / 'left'}" in msg
    zarr.create_array(tmp_path / "names.zarr", shape=(2, 3, 3), dtype=str)
    assert "stimuli 'movie': expected a real numeric array of shape (n, C, H, W) or (n, H, W), found dtype" in build_error(tmp_path, entry.replace("frames", "names"))
    (tmp_path / "plain").mkdir()
    assert "plain: stimuli 'movie': path: not a zarr array" in build_error(tmp_path, entry.replace("frames.zarr", "plain"))
    zarr.create_array(tmp_path / "ok.zarr", shape=(2, 3, 3), dtype="uint8")
    assert "missing.csv: stimuli 'movie': table: file not found, expected a CSV file" in build_error(tmp_path, entry.replace("frames", "ok") + "\ntable: missing.csv")


def test_read_table_column_types(tmp_path):
    (tmp_path / "t.csv").write_text("\ufeffstimulus_id, n ,x,word,empty\n007,+3,-1.5e2,nan,\n8,-4,.5,inf,\n")
    columns = read_table(tmp_path / "t.csv")
    assert list(columns) == ["stimulus_id", "n", "x", "word", "empty"]  # BOM and spaces stripped
    assert columns["stimulus_id"].tolist() == ["007", "8"] and columns["n"].tolist() == [3, -4]
    assert columns["x"].tolist() == [-150.0, 0.5] and columns["word"].tolist() == ["nan", "inf"]
    assert columns["empty"].tolist() == ["", ""]


def test_npy_set_describes_its_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 2, 2)))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2]))
    described = NpySet("n", tmp_path / "x.npy", tmp_path / "y.npy").describe()
    assert described["path"] == str(tmp_path / "x.npy") and described["labels"] == str(tmp_path / "y.npy")
    assert described["sha256"] != described["labels_sha256"] and len(described["sha256"]) == 64


def test_recording_a_preprocessed_image_folder(tmp_path):
    """Colour 16x16 images, resized to 8x8 and made grey, recorded from digits-mlp."""
    pictures = RNG.integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    for k, rel in enumerate(["circle/a.png", "circle/b.png", "square/a.jpg", "square/b.png"]):
        save(tmp_path / "shapes" / rel, pictures[k])
    text = protocol_text("name: shapes\nkind: image_folder\npath: shapes\npreprocess:\n  resize: [8, 8]\n  channels: 1")
    path = tmp_path / "protocol.yaml"
    path.write_text(text)
    tree = neurorecord.run(path, tmp_path / "out", quiet=True)
    ds = tree["fc1"].to_dataset()
    assert {"stimulus_id", "category", "label", "stimulus_set", "repetition"} <= set(ds.coords)
    assert ds["stimulus_id"].values.tolist() == ["circle/a.png", "circle/b.png", "square/a.jpg", "square/b.png"]
    assert ds["category"].values.tolist() == ["circle", "circle", "square", "square"]
    assert ds["label"].values.tolist() == [0, 0, 1, 1]
    shown = tree.attrs["stimulus_sets"][0]
    assert shown["path"] == str(tmp_path / "shapes") and shown["sha256"] == ImageFolderSet("s", tmp_path / "shapes").sha256
    assert [step["step"] for step in shown["preprocess"]] == ["resize", "channels"] and shown["image_shape"] == [1, 8, 8]
    images = build_stimulus_sets(neurorecord.load_protocol(path))[0].images(np.arange(4))
    want = load_zoo_subject("digits-mlp").model.fc1(torch.from_numpy(images).flatten(1)).detach().numpy()
    np.testing.assert_allclose(ds["activity"].values, want, rtol=1e-5, atol=1e-6)
