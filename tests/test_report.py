"""report.html: built from real tiny runs (a mixing method defined here, through the CLI)
and from made-up run directories (lagaug.report.demo) that carry what a newer lagaug may add —
several weighted sources, new per-image metrics, a quality gate's verdicts, unknown records."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch
from click.testing import CliRunner

from lagaug import hookimpl
from lagaug.core.contract.method import GeneratorMethod, Latents, Synthesis
from lagaug.core.contract.plugins import make_plugin_manager
from lagaug.report import build_report, write_report
from lagaug.report.demo import write_augment_run, write_compare_run
from lagaug.report.html import num
from lagaug.report.thumbs import thumbnail_uri
from lagaug.testing import learnable_npz


class Page(HTMLParser):
    """Every start tag with its attributes, the text of each image tile, and the page text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tiles: dict[str, dict] = {}  # data-id -> {"cls", "text", "imgs"}
        self.stack: list[dict] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "figure" and "data-id" in attrs:
            tile = {"cls": attrs.get("class", ""), "text": [], "imgs": []}
            self.tiles[attrs["data-id"]] = tile
            self.stack.append(tile)
        elif tag == "figure":
            self.stack.append({})
        if tag == "img" and self.stack and self.stack[-1]:
            self.stack[-1]["imgs"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "figure" and self.stack:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        for tile in self.stack:
            if tile:
                tile["text"].append(data)

    def tile_text(self, id_: str) -> str:
        return " ".join("".join(self.tiles[id_]["text"]).split())

    def all_text(self) -> str:
        return " ".join("".join(self.text).split())

    def of(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]


def read_page(root: Path) -> Page:
    return Page((root / "report.html").read_text(encoding="utf-8"))


def rendered(root: Path) -> Page:
    """Write the run's report and read it back, checked to be self-contained."""
    write_report(root)
    page = read_page(root)
    assert_self_contained(page, root)
    return page


def assert_self_contained(page: Page, root: Path) -> None:
    """No script, no external resource; every link stays inside the run directory and exists;
    every image has alt text."""
    assert not page.of("script") and not page.of("link") and not page.of("iframe")
    for attrs in page.of("img"):
        assert attrs.get("alt", "").strip(), attrs
        assert attrs["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,")), attrs["src"][:40]
    for attrs in page.of("a"):
        href = attrs["href"]
        if href.startswith("#"):
            assert any(a.get("id") == href[1:] for _, a in page.tags), href
            continue
        assert "://" not in href and not href.startswith(("/", "data:", "javascript:")), href
        target = (root / unquote(href)).resolve()
        assert target.is_relative_to(root.resolve()) and target.is_file(), href


def cli(plugins, *args):
    from lagaug.cli.main import make_cli

    return CliRunner().invoke(make_cli(plugins), obj=plugins, args=list(args))


@dataclass
class BlendConfig:
    share: float = 0.3


class BlendMethod(GeneratorMethod):
    """A mixing method: each image blended with another image of the pool — two weighted sources,
    a soft label, and a per-image figure (``blend_share``)."""

    name = "blend"
    Config = BlendConfig

    def fit(self, train, ctx, unlabeled=None):
        return {"images": len(train)}

    def encode(self, images, soft, ctx):
        return Latents({"x": images}, ctx.batch_rows(len(images)), soft)

    def resample(self, latents, ctx):
        rows = latents.repeat(ctx.variants)
        partner = torch.randint(len(ctx.pool), (len(rows.source),), generator=ctx.generator)
        a = self.config.share
        x = (1 - a) * rows.codes["x"] + a * ctx.pool.float_images(partner)
        soft = (1 - a) * rows.soft + a * ctx.pool.targets()[partner]
        source = torch.stack([rows.source.reshape(-1), partner], 1)
        weight = torch.tensor([[1 - a, a]]).repeat(len(partner), 1)
        return Latents({"x": x}, source, soft, weight=weight)

    def decode(self, latents, ctx):
        share = torch.full((len(latents.source),), self.config.share)
        return Synthesis(latents.codes["x"], latents.soft, latents.source, {"blend_share": share}, latents.weight)


class BlendPlugin:
    @hookimpl
    def lagaug_register_methods(self, register):
        register(BlendMethod)


@pytest.fixture(scope="module")
def pm():
    return make_plugin_manager(extra_plugins=[("blend", BlendPlugin())])


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return learnable_npz(tmp_path_factory.mktemp("data") / "learn.npz", counts=(24, 8, 8), test=(18, 6, 6))


@pytest.fixture(scope="module")
def augment_run(pm, data, tmp_path_factory):
    """One real augment run through the CLI (blend method, a tiny classifier), shared."""
    out = tmp_path_factory.mktemp("augment") / "run"
    result = cli(pm, "augment", "--method", "blend", *TINY_AUGMENT, "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    return out


TINY_AUGMENT = ("--image-size", "16", "--hard-k", "2", "--iterations", "2", "--variants", "2", "--ensemble", "1",
                "--epochs", "1", "--classifier", "garay_cnn_small", "--quiet")


def test_augment_report_shows_every_image_with_its_label_sources_and_hard_image(augment_run):
    root = augment_run
    page = read_page(root)
    assert_self_contained(page, root)
    lines = [json.loads(x) for x in (root / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    for line in lines:
        tile = page.tiles[line["id"]]
        text = page.tile_text(line["id"])
        assert "synthetic" in tile["cls"] and f"label: {line['label']}" in text
        for sid, w in zip(line["source"], line["source_weight"]):
            assert sid in text and f"weight {num(w, 3)}" in text
        (img,) = tile["imgs"]
        assert line["source"][0] in img["alt"] and f"class {line['label']}" in img["alt"]
        assert base64.b64decode(img["src"].split(",", 1)[1]) == (root / line["file"]).read_bytes()
    for it in (1, 2):  # each hard image, saved by the loop, shown with its class and score
        sources = [json.loads(x) for x in (root / f"synthetic/it{it:03d}/sources/sources.jsonl").read_text().splitlines()]
        assert sum(s["chosen"] for s in sources) == 2
        links = {a["href"] for a in page.of("a")}
        for s in sources:
            assert f"synthetic/it{it:03d}/sources/{s['file']}" in links  # every source image, linked
            if s["chosen"]:
                tile = page.tiles[s["id"]]
                assert "source" in tile["cls"] and f"hard image {s['id']}" in tile["imgs"][0]["alt"]
                assert f"class: {s['label']}" in page.tile_text(s["id"])
                assert f"hardness: {num(s['score'])}" in page.tile_text(s["id"])
    plots = [a for a in page.of("svg") if a.get("role") == "img"]
    assert {p["id"] for p in plots} == {"plot-auc", "plot-f1", "plot-accuracy"}
    assert page.of("table") and all(a.get("scope") in ("col", "row") for a in page.of("th"))
    text = page.all_text()
    assert "Images per class and split" in text and "Test metrics per iteration" in text


def test_no_report_option_and_the_report_command(augment_run, pm, data):
    (augment_run / "report.html").unlink()
    resumed = cli(pm, "augment", "--method", "blend", *TINY_AUGMENT, "--data", str(data), "--out", str(augment_run),
                  "--resume", "--no-report")
    assert resumed.exit_code == 0, resumed.output
    assert not (augment_run / "report.html").exists() and "report:" not in resumed.output
    result = cli(pm, "report", str(augment_run))
    assert result.exit_code == 0 and (augment_run / "report.html").is_file()
    assert result.output == f"wrote {augment_run / 'report.html'}\n"


def test_report_errors_are_one_line(pm, tmp_path):
    result = cli(pm, "report", str(tmp_path / "no-run"))
    assert result.exit_code == 1
    assert result.output.strip() == (f"Error: {tmp_path / 'no-run'}: no such folder; give the run directory that "
                                      "`lagaug augment` or `lagaug compare` wrote (its --out)")
    (tmp_path / "empty").mkdir()
    result = cli(pm, "report", str(tmp_path / "empty"))
    assert result.exit_code == 1 and "holds no lagaug run (no readable config.json)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_compare_report_from_a_real_run(pm, data, tmp_path):
    out = tmp_path / "cmp"
    result = cli(pm, "compare", "--method", "blend", "--data", str(data), "--image-size", "16", "--quiet",
                 "--arms", "real,method,duplicate", "--repeats", "2", "--classifier", "garay_cnn_small",
                 "--epochs", "1", "--members", "1", "--synthetic-per-image", "0.5", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = read_page(out)
    assert_self_contained(page, out)
    results = json.loads((out / "results.json").read_text())
    text = page.all_text()
    for row in results["rows"]:
        assert f"{row['f1_mean']:.3f} [" in text
    for c in results["comparisons"]:
        assert f"{c['arm']} vs {c['baseline']}" in text
    assert "p (Holm)" in text and {"plot-auc", "plot-f1", "plot-accuracy"} <= {a.get("id") for a in page.of("svg")}
    # the data as the run used it: the loader's validation split (a fifth of each class, rounded), not --val-fraction
    said = ("Training images: the source's training split, 31 per repeat; validation: the source's validation split, "
            "9 images, carved from the data's training images by the data loader (split seed 0), 5 of 24 ok, 2 of 8 "
            "spot, 2 of 8 line (--val-fraction 0.15 was not applied: it carves only from data without a validation "
            "split, or with --train-size).")
    md = (out / "results.md").read_text()
    assert said in text and said in md and "15%" not in text + md
    for r in (0, 1):
        lines = [json.loads(x) for x in (out / f"repeats/r{r:03d}/synthetic/manifest.jsonl").read_text().splitlines()]
        shown = [line for line in lines if line["id"] in page.tiles]
        assert shown and {line["label"] for line in shown} == {line["label"] for line in lines}
        for line in shown:
            assert page.tiles[line["id"]]["imgs"] and line["source"][0] in page.tile_text(line["id"])


def test_what_a_newer_lagaug_adds_is_shown_without_code_changes(tmp_path):
    root = write_augment_run(tmp_path / "run", images=12, sources=3)
    page = rendered(root)
    for it in (1, 2):
        for line in map(json.loads, (root / f"synthetic/it{it:03d}/manifest.jsonl").read_text().splitlines()):
            text = page.tile_text(line["id"])
            assert len(line["source"]) == 3
            for sid, label, w in zip(line["source"], line["source_label"], line["source_weight"]):
                assert f"{sid} (class {label}, weight {num(w, 3)}" in text
            for key in ("structure_error", "codes_changed", "label_fidelity"):
                assert f"{key}: {num(line[key])}" in text
            assert ("dropped" in text and line["reason"] in text) if line["dropped"] else "gate: kept" in text
            assert ("dropped" in page.tiles[line["id"]]["cls"]) == line["dropped"]
    text = page.all_text()
    assert "member 2 scored at chance level" in text  # a warning in metrics.json
    assert "stage_seconds.train" in text  # an unknown figure of metrics.json
    assert "timings.json" in text and "fit_generator" in text  # an unknown record of the run
    assert "fit.train_loss.defect" in text  # the generator's fit diagnostics


def test_a_killed_run_still_gets_a_page(tmp_path):
    root = write_augment_run(tmp_path / "run", finished=False)
    text = Page(build_report(root)).all_text()
    assert "This run is incomplete: 2 of 3 iterations" in text
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"method": "vae", "iterations": 2}))
    text = Page(build_report(bare)).all_text()
    assert "No iteration has finished yet" in text and "data.json is missing" in text
    assert "No synthetic images yet" in text


def test_a_run_without_saved_hard_images_shows_the_grid(tmp_path):
    root = write_augment_run(tmp_path / "run")
    for it in (1, 2):
        shutil.rmtree(root / f"synthetic/it{it:03d}/sources")
    (root / "grids").mkdir()
    (root / "grids/it001.png").write_bytes((root / "synthetic/it001/00000.png").read_bytes())
    page = Page(build_report(root))
    assert "did not save its hard images" in page.all_text()
    assert any("round 1: hard images" in a.get("alt", "") for a in page.of("img"))


def test_compare_report_from_files_samples_both_classes(tmp_path):
    root = write_compare_run(tmp_path / "cmp", images=60, repeats=2)
    page = rendered(root)
    for r in (0, 1):
        shown = [k for k in page.tiles if k.startswith(f"synthetic/r{r:03d}/")]
        assert len(shown) == 24
        assert {re.search(r"label: (\S+)", page.tile_text(k)).group(1) for k in shown} == {"ok", "defect"}
    text = page.all_text()
    assert "mix vs duplicate" in text and "classic+mix" in text
    assert "majority class 0.75" in text  # accuracy of always saying "ok" on 90 ok + 30 defect test images


def test_text_from_the_run_is_escaped(tmp_path):
    root = write_compare_run(tmp_path / "cmp", images=4, repeats=1)
    manifest = root / "repeats/r000/synthetic/manifest.jsonl"
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    lines[0]["label"] = "<script>alert(1)</script>"
    lines[0]["note"] = '"><img src=x onerror=alert(1)>'
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    html_text = build_report(root)
    assert "<script" not in html_text and "onerror=alert" not in html_text.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;" in html_text


def test_thumbnails_are_small_and_small_images_embedded_as_they_are(tmp_path):
    from PIL import Image

    big = tmp_path / "big.png"
    Image.new("L", (512, 300), 128).save(big)
    uri = thumbnail_uri(big)
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as im:
        assert max(im.size) == 128 and im.size[0] > im.size[1]
    small = tmp_path / "small.png"
    Image.new("L", (32, 32), 7).save(small)
    assert base64.b64decode(thumbnail_uri(small).split(",", 1)[1]) == small.read_bytes()
    assert thumbnail_uri(tmp_path / "missing.png") is None
    (tmp_path / "broken.png").write_bytes(b"not a png")
    assert thumbnail_uri(tmp_path / "broken.png") is None


def test_report_command_does_not_import_torch(tmp_path):
    root = write_compare_run(tmp_path / "cmp", images=4, repeats=1)
    code = ("import sys; from lagaug.cli.main import main; main(['report', sys.argv[1]], standalone_mode=False); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
    assert (root / "report.html").is_file()


def table_rows(html_text: str, caption: str) -> list[list[str]]:
    """The body rows of the table with ``caption``, each a list of cell texts."""
    body = html_text.split(f"<caption>{caption}</caption>", 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return [[" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
            for row in body.split("<tr>")[1:]]


def test_the_report_shows_label_fidelity_per_class_and_the_ensemble_size(augment_run):
    html_text = (augment_run / "report.html").read_text(encoding="utf-8")
    text = Page(html_text).all_text()
    assert "ensemble of 1 member(s), preset cpu" in text
    assert "members[0]" not in html_text and "synthetic_quality" not in html_text  # no column dump
    rows = table_rows(html_text, "Label fidelity per round and class")
    expected = []
    for n in (1, 2):
        q = json.loads((augment_run / f"synthetic/it{n:03d}/quality.json").read_text())
        assert q["by_class"]
        for name, c in q["by_class"].items():
            few = " (too few to be a reference)" if c["val_too_few"] else ""
            expected.append([str(n), name, str(c["made"]), "no gate", f"{100 * c['class_wins_mean']:.0f}%",
                             f"{100 * c['val_class_wins_mean']:.0f}% of {c['val_images']}{few}",
                             f"{100 * c['src_class_wins_mean']:.0f}%", f"{c['label_fidelity_mean']:.2f}",
                             f"{c['val_label_fidelity_mean']:.2f}", f"{c['src_label_fidelity_mean']:.2f}"])
    assert rows == expected
    assert "too few to be a reference" in rows[0][5]  # 2 or 3 validation images per class in this data
    assert html_text.index('id="fidelity"') < html_text.index('id="images"')  # near the top
    record = json.loads((augment_run / "iterations/it000/metrics.json").read_text())["members"][0]
    members = table_rows(html_text, "Every ensemble member: test metrics and how it was trained")
    assert members[0][:2] == ["0", "0"] and members[0][5:8] == [str(record["seed"]), str(record["kept_epoch"]),
                                                                record["kept_because"]]


def test_a_round_whose_images_the_gate_dropped_says_so(pm, data, tmp_path):
    out = tmp_path / "run"  # share 0: every image a copy of its source, a near-duplicate
    result = cli(pm, "augment", "--method", "blend", *TINY_AUGMENT, "--data", str(data), "--set", "share=0",
                 "--quality-gate", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = read_page(out)
    text = page.all_text()
    for n in (1, 2):
        assert (f"Round {n}: the quality gate dropped all 4 image(s) made, so none joined the training set: "
                f"iteration {n} trained on the same images as iteration {n - 1}.") in text
        assert (f"Round {n}: 2 hard image(s) chosen after iteration {n - 1}, 4 image(s) made — the quality gate "
                f"dropped every one: none joins iteration {n}") in text
    assert "the others join" not in text and "they join" not in text
    rows = table_rows((out / "report.html").read_text(encoding="utf-8"), "Label fidelity per round and class")
    assert {r[3] for r in rows} == {"0"}  # passed the gate


def test_a_generator_given_with_generator_shows_its_fit_diagnostics_and_history(pm, data, tmp_path):
    from lagaug.core.data.sources import load_data
    from lagaug.core.run.generators import fit_generator

    gen = tmp_path / "gen"
    tiny = dict(latent_dim=2, width=4, disc_hidden=8, epochs=6, min_steps=6, batch_size=8, restarts=0)
    fit_generator("aae-mixup", load_data(data, image_size=16), overrides=tiny, out=gen, plugins=pm)
    meta = json.loads((gen / "generator.json").read_text())
    history = meta["extra"]["fit"]["val_history"]
    assert len(history) == 6
    out = tmp_path / "run"
    result = cli(pm, "augment", "--method", "aae-mixup", "--generator", str(gen), *TINY_AUGMENT, "--data", str(data),
                 "--iterations", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = rendered(out)
    html_text = (out / "report.html").read_text(encoding="utf-8")
    text = page.all_text()
    assert f"Fitted before this run and given with --generator {gen}; read from there." in text
    assert "fit diagnostics (generator.json extra)" in text
    assert ["fit.recon", num(meta["extra"]["fit"]["recon"])] in table_rows(html_text, "fit diagnostics")
    plot = next(a for a in page.of("svg") if a.get("id") == "fit-0")
    assert plot["role"] == "img"
    svg = html_text.split('id="fit-0"', 1)[1].split("</svg>", 1)[0]
    assert "fit history: fit.val_history" in svg
    (points,) = re.findall(r'<polyline class="series" points="([^"]+)"', svg)
    assert len(points.split()) == 6  # one point per epoch
    assert "val_history[0]" not in text and "val_recon: 6 values, first " in text  # no row per epoch
    # the generator moved away: the page says so instead of failing
    gen.rename(tmp_path / "moved")
    text = Page(build_report(out)).all_text()
    assert f"This run used the generator in {gen} (--generator), which is not there any more" in text


def test_fit_histories_are_found_in_each_method_s_shape_and_summed_up_in_the_tables():
    from lagaug.report.history import histories, history_plots, summarized

    extra = {"vqvae": {"pretrain_loss": [], "train_loss": [0.5, 0.3, 0.2, 0.25], "recon_l1_train": 0.1},
             "priors": {"bottom": {"train_loss": [3.0, 2.0, 1.5], "val_nll": [3.1, 2.4, 2.2], "chosen_epoch": 3}},
             "fit": {"val_history": [{"epoch": e, "val_recon": 0.1 / e} for e in (1, 2, 3)],
                     "pca_explained": [0.5, 0.3, 0.2], "per_class": [1, 2, 3]}}
    found = {where: [(s.name, s.xs, s.ys) for s in series] for where, series in histories(extra)}
    assert found == {
        "vqvae": [("train_loss", [1.0, 2.0, 3.0, 4.0], [0.5, 0.3, 0.2, 0.25])],
        "priors.bottom": [("train_loss", [1.0, 2.0, 3.0], [3.0, 2.0, 1.5]), ("val_nll", [1.0, 2.0, 3.0], [3.1, 2.4, 2.2])],
        "fit.val_history": [("val_recon", [1.0, 2.0, 3.0], [0.1, 0.05, 0.1 / 3])],
    }  # lists that are no history (pca_explained, per_class) and empty ones are left alone
    short = summarized(extra)
    assert short["vqvae"]["train_loss"] == "train_loss: 4 values, first 0.5, last 0.25, lowest 0.2 (plotted)"
    assert short["fit"]["pca_explained"] == [0.5, 0.3, 0.2] and short["vqvae"]["pretrain_loss"] == []
    html_text = history_plots(extra, "fit")
    assert html_text.count("<svg") == 3 and html_text.count('class="series"') == 4
    assert history_plots({"fit": {"seconds": 3}}, "fit") == ""


def test_compare_wording_comes_from_the_numbers_the_run_used():
    from lagaug.report.datatext import compare_split_text

    data = {"counts": {"train": {"ok": 160, "defect": 16}, "val": {"ok": 40, "defect": 4}, "test": {"ok": 40}},
            "carved": ["test", "val"], "split_seed": 3}
    cells = [{"real": 176, "val_size": 44}] * 2
    assert compare_split_text({"val_fraction": 0.15}, data, cells) == (
        "Training images: the source's training split, 176 per repeat; validation: the source's validation split, 44 "
        "images, carved from the data's training images by the data loader (split seed 3), 20% of each class "
        "(--val-fraction 0.15 was not applied: it carves only from data without a validation split, or with "
        "--train-size).")
    given = {**data, "carved": []}
    assert "validation split, 44 images, as the data provided it (" in compare_split_text({"val_fraction": 0.15},
                                                                                          given, cells)
    drawn = [{"real": 21, "val_size": 3}, {"real": 22, "val_size": 2}]
    assert compare_split_text({"train_size": 24, "val_fraction": 0.1, "balanced": False}, data, drawn) == (
        "Training images: a fresh draw of 24 images per repeat from the source's training and validation images, "
        "in the classes' proportions (21 or 22 per repeat after validation was carved: 2 or 3 validation images, "
        "10% of each class, at least one).")
    assert compare_split_text({"train_size": 24, "val_fraction": 0, "balanced": True}, data, drawn).endswith(
        "the same number per class (21 or 22 per repeat); no validation images (--val-fraction 0).")


def test_the_report_shows_where_the_time_went(augment_run):
    html_text = (augment_run / "report.html").read_text(encoding="utf-8")
    rows = table_rows(html_text, "Wall seconds per stage")
    metrics = [json.loads((augment_run / f"iterations/it{n:03d}/metrics.json").read_text())["seconds"]
               for n in range(len(rows))]
    assert [r[0] for r in rows] == [str(n) for n in range(len(rows))] and len(rows) >= 2
    assert rows[0][1].split()[0] == f"{metrics[0]['generator_fit']:.1f}" and rows[1][1] == "—"
    assert rows[1][2].split()[0] == f"{metrics[1]['ensemble']:.1f}"
    assert rows[1][5].startswith(f"{metrics[1]['synthesis']['total']:.1f} (") and "decode" in rows[1][5]
    assert "'seconds'" not in html_text and "seconds.ensemble" not in html_text  # not also in the column dump
