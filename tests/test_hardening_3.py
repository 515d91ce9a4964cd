"""Hardening, second round: foreign checkpoints refused for what they are, fit-time options on
saved generators, and the hooks of plugins that are not generator methods (a scorer, a selector
by entropy with options of its own, a filter): what they see, what the run records, what the
user is told."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

import pytest
import torch
from helpers import EXAMPLE_PLUGIN, ROOT, invoke, make_distribution
from test_vqvae2_import import BOTTOM, VQ, fill, pixelsnail_shapes, vqvae_shapes

from lagaug import hookimpl
from lagaug.core.errors import ConfigError


def one_line_error(r, message):
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if not ln.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert message in lines[0] and "Traceback" not in r.stderr, r.stderr


# -- 8 and 8b: import-checkpoint ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """Reference (rosinality) files for 32-px images: a VQ-VAE-2 and its bottom prior."""
    d = tmp_path_factory.mktemp("reference")
    vq, bottom = fill(vqvae_shapes(**VQ), seed=1), fill(pixelsnail_shapes([8, 8], **BOTTOM), seed=2)
    torch.save(vq, d / "vq.pt")
    torch.save({"model": bottom, "args": argparse.Namespace(hier="bottom")}, d / "bottom.pt")
    return {"dir": d, "vq": vq, "bottom": bottom}


def imp(*args):
    return invoke("import-checkpoint", *args)


def test_import_checkpoint_refuses_ambiguous_arguments_and_foreign_folders(ref, tmp_path):
    d = ref["dir"]
    one_line_error(imp("--vqvae", d / "vq.pt", "--class-names", "ok,ok", "--out", tmp_path / "g", "--image-size", 32),
                   "--class-names 'ok,ok': 'ok' is given twice; class names must differ")
    shutil.copy(d / "vq.pt", tmp_path / "other.pt")
    one_line_error(imp(d / "vq.pt", "--vqvae", tmp_path / "other.pt", "--out", tmp_path / "g", "--image-size", 32),
                   f"CHECKPOINT {d / 'vq.pt'} and --vqvae {tmp_path / 'other.pt'} name different files")
    assert imp(d / "vq.pt", "--vqvae", d / "vq.pt", "--out", tmp_path / "same", "--image-size", 32).returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("my notes")
    one_line_error(imp("--vqvae", d / "vq.pt", "--out", mine, "--image-size", 32),
                   f"--out {mine}: folder is not empty and holds no lagaug generator (it has notes.txt)")
    one_line_error(invoke("fit", "--method", "vae", "--out", mine, "--quiet"), "folder is not empty and holds no lagaug")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    r = imp(tmp_path, "--out", tmp_path / "g2", "--image-size", 32)  # a folder as CHECKPOINT
    one_line_error(r, f"{tmp_path}: is a folder, not a checkpoint file")
    assert "Usage:" not in r.stderr


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("kind,message", [
    ("legacy", "refused to load: it holds Python objects (posix.system) whose code lagaug will not run"),
    ("pickle", "refused to load: it holds Python objects (posix.system) whose code lagaug will not run"),
    ("empty", "not a readable torch checkpoint (an empty file)"),
    ("text", "not a readable torch checkpoint (neither a zip archive nor a pickle)"),
])
def test_files_that_are_not_checkpoints_are_called_what_they_are(tmp_path, kind, message):
    import pickle

    path = tmp_path / "file.pt"
    if kind == "legacy":  # torch's old (non-zip) format with code in it
        torch.save({"w": torch.zeros(2), "e": Evil()}, path, _use_new_zipfile_serialization=False)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"e": Evil()}, protocol=4))
    elif kind == "text":
        path.write_text("hello\nthis is text\n")
    else:
        path.write_bytes(b"")
    r = imp("--vqvae", path, "--out", tmp_path / "g", "--image-size", 32)
    one_line_error(r, f"{path}: {message}")
    assert "pwned" not in r.stdout + r.stderr


def test_long_library_messages_are_cut_at_a_sentence_end():
    from lagaug.core.foreign import last_line

    text = "First sentence of the error is here. " * 4 + "A last sentence that would be cut in its middle here."
    assert last_line("noise\n" + text + "\n") == ("First sentence of the error is here. " * 4).strip()
    assert last_line("a short error") == "a short error"


def damaged(ref, tmp_path, where, key, value):
    vq, bottom = dict(ref["vq"]), dict(ref["bottom"])
    (vq if where == "vq" else bottom)[key] = value
    torch.save(vq, tmp_path / "vq.pt")
    torch.save({"model": bottom, "args": argparse.Namespace(hier="bottom")}, tmp_path / "bottom.pt")
    return imp("--vqvae", tmp_path / "vq.pt", "--bottom-prior", tmp_path / "bottom.pt", "--out", tmp_path / "g")


@pytest.mark.parametrize("where,key,make,message", [
    ("bottom", "horizontal.conv.conv.weight_v", lambda t: t.flatten(),
     "key 'horizontal.conv.conv.weight_v' has 1 dimension(s)"),
    ("vq", "enc_b.blocks.0.weight", lambda t: t.flatten(), "key 'enc_b.blocks.0.weight' has 1 dimension(s)"),
    ("bottom", "cond_resnet.blocks.0.conv.weight_v", lambda t: t.flatten(1),
     "key 'cond_resnet.blocks.0.conv.weight_v' has 2 dimension(s)"),
    ("vq", "quantize_t.embed", lambda t: t.clone().index_fill_(0, torch.tensor([0]), float("nan")),
     "key 'quantize_t.embed' holds 32 value(s) that are not finite (NaN or infinity)"),
    ("bottom", "blocks.0.resblocks.0.conv2.conv.conv.weight_v", lambda t: (t * 100).long(),
     "key 'blocks.0.resblocks.0.conv2.conv.conv.weight_v' holds torch.int64 values, expected floating-point"),
    ("vq", "quantize_b.embed", lambda t: t.to(torch.complex64), "key 'quantize_b.embed' holds complex numbers"),
])
def test_damaged_reference_tensors_are_named(ref, tmp_path, where, key, make, message):
    r = damaged(ref, tmp_path, where, key, make(ref["vq" if where == "vq" else "bottom"][key]))
    one_line_error(r, message)
    assert "prior_cond_res_kernel" not in r.stderr and not (tmp_path / "g").exists()


def test_fit_time_options_on_a_saved_generator_are_refused(ref, tmp_path):
    from PIL import Image

    d = ref["dir"]
    assert imp("--vqvae", d / "vq.pt", "--bottom-prior", d / "bottom.pt", "--out", tmp_path / "gen",
               "--class-names", "ok").returncode == 0
    img = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (90, 120, 30)).save(img)
    for option, message in (("border=replicate", "--set border=replicate: border is fixed when the generator is "
                             "fitted (this vqvae2 generator has border=zero); fit a new generator to change it"),
                            ("bottom_stride=2", "--set bottom_stride=2: bottom_stride is fixed"),
                            ("preset=sharp64", "--set preset=sharp64: preset is fixed")):
        r = invoke("sample", "--generator", tmp_path / "gen", img, "--set", option, "--out", tmp_path / "out",
                   "--quiet")
        one_line_error(r, message)
        assert ("(options at sampling time: keep, keep_margin, keep_pixels, region, resample_fraction, seam, "
                "temperature, transplant)") in r.stderr
    r = invoke("sample", "--generator", tmp_path / "gen", img, "--set", "border=zero", "--set", "temperature=0.5",
               "--variants", "1", "--out", tmp_path / "out", "--quiet")  # the fitted value is no change
    assert r.returncode == 0, r.stderr


def test_a_dependent_key_is_blamed_on_the_key_the_user_set():
    from lagaug.core.config import resolve_options

    @dataclass
    class Config:
        components: int = 8
        keep: int = 4

        def __post_init__(self):
            if self.keep > self.components:
                raise ConfigError(f"--set keep={self.keep}: must be at most components ({self.components})")

    with pytest.raises(ConfigError) as err:
        resolve_options(Config(), {"components": "3"})
    assert str(err.value) == ("--set components=3: conflicts with keep=4, which was not set (keep=4: must be at "
                              "most components (3)); set keep too, or choose another value")
    with pytest.raises(ConfigError, match=r"^--set keep=9: must be at most components \(8\)$"):
        resolve_options(Config(), {"keep": "9"})


# -- 12 to 18: plugins that are not methods ----------------------------------------------------------


ENTROPY = """
from dataclasses import dataclass

from lagaug import ConfigError, hookimpl

SEEN = []


@dataclass
class Options:
    temperature: float = 1.0

    def __post_init__(self):
        if not self.temperature > 0:
            raise ConfigError(f"--set entropy.temperature={self.temperature}: must be > 0")


lagaug_options = Options


@hookimpl
def lagaug_select(method, scores, dataset, k, classes, include_synthetic, context):
    import torch

    t = context.plugin_options["entropy"].temperature
    SEEN.append((tuple(context.probs.shape), context.ensemble is not None, context.pool is dataset, t))
    p = torch.softmax(torch.log(context.probs.clamp_min(1e-8)) / t, dim=1)
    entropy = -(p * p.clamp_min(1e-8).log()).sum(1)
    rows = torch.nonzero(~dataset.synthetic).flatten()
    return rows[entropy[rows].argsort(descending=True)[:k]]
"""

SCORER = """
from lagaug import hookimpl

SEEN = []


@hookimpl
def lagaug_score(method, ensemble, dataset, context):
    SEEN.append(context.probs is not None and context.ensemble is ensemble)
    return 1 - context.probs.max(1).values
"""

FILTER = """
from lagaug import hookimpl


@hookimpl
def lagaug_filter_synthesized(method, synthesis, context):
    return ["too plain"] + [None] * (len(synthesis) - 1)
"""


@pytest.fixture
def third_party(example_plugin):
    site = example_plugin
    make_distribution(site, "entropy-select", "0.3", {"entropy": "entropy_select"}, {"entropy_select": ENTROPY})
    for name in ("scorea", "scoreb"):
        make_distribution(site, f"{name}-dist", "1.1", {name: f"{name}_mod"}, {f"{name}_mod": SCORER})
    make_distribution(site, "plain-filter", "2.0", {"myfilter": "myfilter_mod"}, {"myfilter_mod": FILTER})
    yield site
    for mod in ("entropy_select", "scorea_mod", "scoreb_mod", "myfilter_mod"):
        sys.modules.pop(mod, None)


def test_a_selector_scorer_and_filter_see_the_ensemble_take_options_and_are_recorded(third_party, learn_npz,
                                                                                      tmp_path):
    from lagaug.core.contract.plugins import make_plugin_manager

    out = tmp_path / "run"
    pm = make_plugin_manager()
    args = ["augment", "--method", "jitter", "--data", learn_npz, "--image-size", "16", "--iterations", "1",
            "--ensemble", "1", "--epochs", "1", "--out", out, "--quiet", "--no-report"]
    one_line_error(invoke(*args, "--set", "entropy.warmth=2", plugins=pm),
                   "--set entropy.warmth: plugin 'entropy' has no option 'warmth'; its options: temperature")
    one_line_error(invoke(*args, "--set", "ghost.x=1", plugins=pm),
                   "--set ghost.x: no plugin named 'ghost' takes options (plugins that do: entropy)")
    one_line_error(invoke(*args, "--set", "entropy.temperature=0", plugins=pm), "entropy.temperature=0.0: must be > 0")
    assert not out.exists()
    r = invoke(*args, "--set", "entropy.temperature=2", "--set", "sigma=0.1", plugins=pm)
    assert r.returncode == 0, r.stderr
    assert ("warning: plugins 'scoreb', 'scorea' all implement lagaug_score; 'scoreb' is asked first and the first "
            "result is used (the run records which answered in plugins.json)") in r.stderr
    seen = sys.modules["entropy_select"].SEEN  # the iteration's probabilities (N, K), ensemble and pool
    classes = json.loads((out / "data.json").read_text())["classes"]
    assert len(seen) == 1 and seen[0][0][1] == len(classes) and seen[0][0][0] > 10 and seen[0][1:] == (True, True, 2.0)
    assert sys.modules["scoreb_mod"].SEEN == [True] and sys.modules["scorea_mod"].SEEN == []
    record = json.loads((out / "plugins.json").read_text())
    stages = {hook: [(e["plugin"], e.get("distribution"), e.get("version")) for e in entries]
              for hook, entries in record["stages"].items()}
    assert stages["lagaug_score"] == [("scoreb", "scoreb-dist", "1.1")]
    assert stages["lagaug_select"] == [("entropy", "entropy-select", "0.3")]
    assert stages["lagaug_filter_synthesized"] == [("myfilter", "plain-filter", "2.0")]
    assert stages["lagaug_encode"][0][0] == "core"
    entropy = next(i for i in record["installed"] if i["name"] == "entropy")
    assert entropy["options"] == ["temperature"] and entropy["version"] == "0.3"
    quality = json.loads((out / "synthetic" / "it001" / "quality.json").read_text())
    assert quality["filters"] == ["myfilter"] and quality["dropped"] == 1
    assert "filter myfilter kept 1, dropped 1 (too plain 1)" in " ".join(r.stdout.split()) and "quality gate" not in r.stdout
    assert json.loads((out / "config.json").read_text())["set"]["entropy.temperature"] == "2"


BROKEN = "raise ImportError('no such thing')"


def test_broken_plugins_are_said_by_every_command_and_fail_the_check(example_plugin):
    make_distribution(example_plugin, "broken-thing", "1.0", {"broken": "broken_x"}, {"broken_x": BROKEN})
    r = invoke("fit", "--method", "nosuch", "--out", example_plugin / "gen")
    assert r.stderr.startswith("warning: plugin 'broken' is broken and left out (failed to import broken_x: "
                               "ImportError: no such thing); see `lagaug list-plugins`")
    listed = invoke("list-plugins")
    assert listed.returncode == 0 and "warning: plugin" not in listed.stderr  # the listing says it itself
    checked = invoke("list-plugins", "--check")
    assert checked.returncode == 1 and "broken" in checked.stdout
    assert checked.stderr.strip().splitlines()[-1] == "Error: 1 plugin(s) failed the check: broken"


# -- 19: writing a method ----------------------------------------------------------------------------


@dataclass
class NoOptions:
    pass


class BadSource:
    """A method that forgets ``ctx.batch_rows`` (sources 0..N-1 instead of the pool rows)."""

    @hookimpl
    def lagaug_register_methods(self, register):
        from lagaug import GeneratorMethod, Latents, Synthesis

        class Copy(GeneratorMethod):
            name = "badsource"
            Config = NoOptions

            def fit(self, train, ctx, unlabeled=None):
                return {}

            def encode(self, images, soft, ctx):
                return Latents(codes={"x": images}, source=torch.arange(len(images)), soft=soft)

            def resample(self, latents, ctx):
                return latents.repeat(ctx.variants)

            def decode(self, latents, ctx):
                return Synthesis(images=latents.codes["x"], soft=latents.soft, source=latents.source)

        register(Copy)


def test_the_contract_says_what_it_expects():
    from lagaug.core.contract.plugins import make_plugin_manager
    from lagaug.testing import MethodContract, learnable_splits

    class Contract(MethodContract):
        method = "badsource"

    pm = make_plugin_manager(extra_plugins=[("bad", BadSource())])
    data = learnable_splits(size=16, train=(12, 12), val=(4, 4), test=(4, 4))
    fitted = pm.get_method("badsource")(NoOptions(), (1, 16, 16), data.train.class_names)
    with pytest.raises(AssertionError, match=r"set source=ctx\.batch_rows\(len\(images\)\) in encode"):
        Contract().test_stages_return_variants_per_source_with_valid_provenance(pm, fitted, data)


def test_lagaug_testing_without_pytest_says_what_to_install():
    r = subprocess.run([sys.executable, "-c", "import sys; sys.modules['pytest'] = None; import lagaug.testing"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == ('ImportError: lagaug.testing needs pytest: install the test extra, '
                                                 'pip install "lagaug[test]"')


def test_the_plugin_docs_name_every_builtin_method_and_the_stages_have_docstrings():
    import tomllib

    from lagaug import GeneratorMethod

    docs = (ROOT / "docs" / "plugins.md").read_text()
    builtin = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["lagaug"]
    from lagaug.core.contract.plugins import make_plugin_manager

    names = [n for n in make_plugin_manager().method_names()
             if make_plugin_manager().methods[n].plugin in builtin]
    assert len(names) == 6 and all(f"`{n}`" in docs.split("## A generator method")[0] for n in names), names
    for stage in ("encode", "resample", "decode"):
        assert "ctx" in (getattr(GeneratorMethod, stage).__doc__ or ""), stage


def test_the_example_plugins_tests_use_the_public_api_only():
    sources = {p.name: p.read_text() for p in (EXAMPLE_PLUGIN / "tests").glob("*.py")}
    assert sources and not [n for n, text in sources.items() if "lagaug.core" in text or "lagaug.plugins" in text]
