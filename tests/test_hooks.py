"""Every hook is documented and tested; the stage hooks can be overridden and wrapped."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import lagaug.core.plugins as plugins
from conftest import ROOT, make_distribution
from lagaug import hookimpl
from lagaug.core.data.dataset import ImageSet
from lagaug.core.errors import ConfigError
from lagaug.core.generators import synthesize
from lagaug.core.method import StageContext
from lagaug.core.plugins import build_plugin_manager, hook_names
from lagaug.plugins.hardness import true_label_confidence

TESTS = Path(__file__).parent


def test_every_hook_is_documented():
    docs = (ROOT / "docs" / "plugins.md").read_text()
    documented = set(re.findall(r"^### (lagaug_\w+)$", docs, re.M))
    assert documented == set(hook_names())


def test_every_hook_has_a_test():
    sources = "".join(p.read_text() for p in TESTS.glob("test_*.py") if p.name != "test_hooks.py")
    sources += Path(__file__).read_text().split("# -- behaviour --", 1)[1]
    untested = [h for h in hook_names() if not any(f in sources for f in (f"def {h}(", f"hook.{h}("))]
    assert untested == []


def test_every_hookspec_docstring_documents_every_parameter():
    from lagaug.core import hookspecs

    for name in hook_names():
        fn = getattr(hookspecs, name)
        params = fn.__code__.co_varnames[: fn.__code__.co_argcount]
        for p in params:
            assert f":param {p}:" in fn.__doc__, f"{name} does not document {p}"


# -- behaviour --------------------------------------------------------------------------------

@pytest.fixture
def jitter(example_plugin, monkeypatch):
    """The example plugin's method, with a manager we can add test plugins to."""
    def use(*extra):
        pm = build_plugin_manager(extra_plugins=[(f"extra{i}", p) for i, p in enumerate(extra)])
        monkeypatch.setattr(plugins, "_PM", pm)
        return pm

    pm = use()
    method = pm.get_method("jitter")(pm.get_method("jitter").Config(sigma=0.1), (1, 8, 8), ["a", "b"])
    images = torch.rand(3, 1, 8, 8)
    soft = torch.eye(2)[[0, 1, 1]]
    ctx = lambda seed=0: StageContext(generator=torch.Generator().manual_seed(seed), variants=2)  # noqa: E731
    return SimpleNamespace(use=use, method=method, images=images, soft=soft, ctx=ctx)


def test_stages_default_to_the_method(jitter):
    out = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx())
    assert out.images.shape == (6, 1, 8, 8)
    assert out.source.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(out.soft, jitter.soft.repeat_interleave(2, 0))
    again = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx())
    assert torch.equal(out.images, again.images)  # same seed, same images
    other = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx(1))
    assert not torch.equal(out.images, other.images)


class Recorder:
    def __init__(self):
        self.calls = []

    @hookimpl(wrapper=True)
    def lagaug_encode(self, method, images, soft, context):
        self.calls.append("encode")
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_resample(self, method, latents, context):
        self.calls.append("resample")
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_decode(self, method, latents, context):
        synthesis = yield
        self.calls.append("decode")
        synthesis.images = synthesis.images * 0 + 0.5
        return synthesis


def test_wrappers_see_every_stage_and_can_post_process(jitter):
    rec = Recorder()
    jitter.use(rec)
    out = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx())
    assert rec.calls == ["encode", "resample", "decode"]
    assert torch.all(out.images == 0.5)


class NoResample:
    @hookimpl
    def lagaug_resample(self, method, latents, context):
        if method.name == "jitter":
            return latents.repeat(context.variants)  # override: copies, no noise


def test_a_plugin_can_override_a_stage_for_one_method(jitter):
    jitter.use(NoResample())
    out = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx())
    assert torch.allclose(out.images, jitter.images.repeat_interleave(2, 0))


class DropOdd:
    @hookimpl
    def lagaug_filter_synthesized(self, method, synthesis, context):
        return torch.arange(len(synthesis)) % 2 == 0


class NoOpinion:
    @hookimpl
    def lagaug_filter_synthesized(self, method, synthesis, context):
        return None


def test_filter_keeps_only_what_no_plugin_rejects(jitter):
    jitter.use(DropOdd(), NoOpinion())
    out = synthesize(jitter.method, jitter.images, jitter.soft, jitter.ctx())
    assert out.source.tolist() == [0, 1, 2] and len(out.images) == 3


def small_set():
    return ImageSet(images=torch.zeros(6, 1, 4, 4, dtype=torch.uint8), labels=torch.tensor([0, 0, 0, 1, 1, 1]),
                    class_names=["ok", "defect"], ids=[f"i{i}" for i in range(6)],
                    synthetic=torch.tensor([False, False, True, False, False, True]))


class FakeEnsemble:
    def __init__(self, probs):
        self.probs = probs

    def predict_proba(self, images, progress=None):
        return self.probs


def test_default_score_is_mean_true_label_confidence(plugin_site):
    pm = build_plugin_manager()
    data = small_set()
    p1 = torch.tensor([[.9, .1], [.6, .4], [.5, .5], [.2, .8], [.7, .3], [.1, .9]])
    p2 = torch.tensor([[.7, .3], [.4, .6], [.5, .5], [.4, .6], [.9, .1], [.3, .7]])
    scores = pm.hook.lagaug_score(ensemble=FakeEnsemble(torch.stack([p1, p2])), dataset=data,
                                  context=StageContext(generator=torch.Generator()))
    assert torch.allclose(scores, torch.tensor([.8, .5, .5, .7, .2, .8]))
    soft = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(true_label_confidence(torch.tensor([[[0.6, 0.4]]]), soft), torch.tensor([0.45]))


def test_default_select_picks_the_k_hardest_candidates(plugin_site):
    pm = build_plugin_manager()
    data = small_set()
    scores = torch.tensor([.8, .5, .1, .7, .2, .05])
    ctx = StageContext(generator=torch.Generator())
    pick = lambda **kw: pm.hook.lagaug_select(scores=scores, dataset=data, context=ctx, **kw).tolist()  # noqa: E731
    assert pick(k=2, classes=None, include_synthetic=False) == [4, 1]
    assert pick(k=2, classes=None, include_synthetic=True) == [5, 2]
    assert pick(k=1, classes=[0], include_synthetic=False) == [1]
    with pytest.raises(ConfigError, match=r"--hard-k 3 is larger than the 2 candidate images"):
        pick(k=3, classes=[1], include_synthetic=False)


class ScoreByIndex:
    @hookimpl
    def lagaug_score(self, ensemble, dataset, context):
        return torch.arange(len(dataset), dtype=torch.float32)


def test_a_plugin_can_replace_the_scorer(plugin_site):
    pm = build_plugin_manager(extra_plugins=[("byindex", ScoreByIndex())])
    scores = pm.hook.lagaug_score(ensemble=None, dataset=small_set(), context=None)
    assert scores.tolist() == [0, 1, 2, 3, 4, 5]


COMMAND_PLUGIN = """
from lagaug import hookimpl

@hookimpl
def lagaug_register_commands(cli):
    @cli.command("hello")
    def hello():
        '''Say hello.'''
        print("hello from a plugin")
"""


def test_plugins_can_add_cli_commands(plugin_site):
    make_distribution(plugin_site, "hello-plugin", "1.0", {"hello": "hello_cmd"}, {"hello_cmd": COMMAND_PLUGIN})
    out = subprocess.run([sys.executable, "-m", "lagaug.cli", "hello"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello from a plugin"
    helptext = subprocess.run([sys.executable, "-m", "lagaug.cli", "--help"], capture_output=True, text=True).stdout
    assert "hello" in helptext and "Say hello." in helptext
