"""Every hook is documented and tested; the stage hooks can be overridden and wrapped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import ROOT, make_distribution

from lagaug import hookimpl
from lagaug.core.contract.method import StageContext
from lagaug.core.contract.plugins import hook_names, make_plugin_manager
from lagaug.core.data.dataset import ImageSet
from lagaug.core.defaults.hardness import true_label_confidence
from lagaug.core.errors import ConfigError, PluginError
from lagaug.core.run.pipeline import synthesize

TESTS = Path(__file__).parent


def documented_signatures() -> dict[str, list[str]]:
    """``### lagaug_x`` sections of docs/plugins.md -> the parameters of the signature they show."""
    docs = (ROOT / "docs" / "plugins.md").read_text()
    out = {}
    for name, body in re.findall(r"^### (lagaug_\w+)\n(.*?)(?=^### |\Z)", docs, re.M | re.S):
        sig = re.search(rf"`{name}\(([^)]*)\)`", body)
        out[name] = [] if sig is None else [p.strip() for p in sig.group(1).split(",") if p.strip()]
    return out


def test_every_hook_is_documented_with_its_signature():
    from lagaug.core.contract import hookspecs

    documented = documented_signatures()
    assert set(documented) == set(hook_names())
    for name in hook_names():
        fn = getattr(hookspecs, name)
        params = list(fn.__code__.co_varnames[: fn.__code__.co_argcount])
        assert documented[name] == params, f"docs/plugins.md shows {name}({', '.join(documented[name])})"


def test_every_hookspec_docstring_documents_every_parameter():
    from lagaug.core.contract import hookspecs

    for name in hook_names():
        fn = getattr(hookspecs, name)
        params = fn.__code__.co_varnames[: fn.__code__.co_argcount]
        for p in params:
            assert f":param {p}:" in fn.__doc__, f"{name} does not document {p}"


class EveryHook:
    """Implements every hook (wrappers for the stages), recording what it was called with."""

    def __init__(self):
        self.calls: dict[str, dict] = {}

    def seen(self, name, **kwargs):
        self.calls.setdefault(name, kwargs)

    @hookimpl
    def lagaug_register_methods(self, register):
        self.seen("lagaug_register_methods", register=register)

    @hookimpl
    def lagaug_register_commands(self, cli):
        self.seen("lagaug_register_commands", cli=cli)

    @hookimpl(wrapper=True)
    def lagaug_find_region(self, method, images, soft, context):
        self.seen("lagaug_find_region", method=method, images=images)
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_encode(self, method, images, soft, context):
        self.seen("lagaug_encode", method=method, images=images)
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_resample(self, method, latents, context):
        self.seen("lagaug_resample", method=method, latents=latents)
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_decode(self, method, latents, context):
        self.seen("lagaug_decode", method=method, latents=latents)
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_score(self, method, ensemble, dataset, context):
        self.seen("lagaug_score", method=method, dataset=dataset)
        return (yield)

    @hookimpl(wrapper=True)
    def lagaug_select(self, method, scores, dataset, k, classes, include_synthetic, context):
        self.seen("lagaug_select", method=method, scores=scores, k=k)
        return (yield)

    @hookimpl
    def lagaug_filter_synthesized(self, method, synthesis, context):
        self.seen("lagaug_filter_synthesized", synthesis=synthesis)

    @hookimpl
    def lagaug_iteration_end(self, iteration, metrics, added, run_dir):
        self.seen("lagaug_iteration_end", iteration=iteration, metrics=metrics)


def test_every_hook_is_called_by_lagaug(example_plugin, learn_npz, tmp_path):
    """One real run of the CLI with a plugin implementing every hook: each is called."""
    from lagaug.cli.main import main

    every = EveryHook()
    pm = make_plugin_manager(extra_plugins=[("every", every)])
    main(["augment", "--method", "jitter", "--data", str(learn_npz), "--iterations", "1", "--ensemble", "1",
          "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet"], plugins=pm, standalone_mode=False)
    assert sorted(every.calls) == hook_names()
    assert every.calls["lagaug_select"]["k"] == 2 and every.calls["lagaug_score"]["method"].name == "jitter"
    assert every.calls["lagaug_iteration_end"]["iteration"] == 0


# -- behaviour --------------------------------------------------------------------------------

@pytest.fixture
def jitter(example_plugin):
    """The example plugin's method, and ``run(*extra_plugins)`` that synthesizes with it."""
    pm = make_plugin_manager()
    method = pm.get_method("jitter")(pm.get_method("jitter").Config(sigma=0.1), (1, 8, 8), ["a", "b"])
    images = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    soft = torch.eye(2)[[0, 1, 1]]

    def run(*extra, seed=0):
        manager = make_plugin_manager(extra_plugins=[(f"extra{i}", p) for i, p in enumerate(extra)])
        ctx = StageContext(generator=torch.Generator().manual_seed(seed), variants=2)
        return synthesize(manager, method, images, soft, ctx)

    return SimpleNamespace(run=run, method=method, images=images, soft=soft)


def test_stages_default_to_the_method(jitter):
    out = jitter.run()
    assert out.images.shape == (6, 1, 8, 8)
    assert out.primary.tolist() == [0, 0, 1, 1, 2, 2] and out.weight.tolist() == [[1.0]] * 6
    assert torch.equal(out.soft, jitter.soft.repeat_interleave(2, 0))
    assert torch.equal(out.images, jitter.run().images)  # same seed, same images
    assert not torch.equal(out.images, jitter.run(seed=1).images)


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
    out = jitter.run(rec)
    assert rec.calls == ["encode", "resample", "decode"]
    assert torch.all(out.images == 0.5)


class NoResample:
    @hookimpl
    def lagaug_resample(self, method, latents, context):
        if method.name == "jitter":
            return latents.repeat(context.variants)  # override: copies, no noise


def test_a_plugin_can_override_a_stage_for_one_method(jitter):
    out = jitter.run(NoResample())
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
    out = jitter.run(DropOdd(), NoOpinion())
    assert out.primary.tolist() == [0, 1, 2] and len(out.images) == 3


class Passes:
    @hookimpl(tryfirst=True)
    def lagaug_decode(self, method, latents, context):
        return None


class Swallows:
    """A broken override: it takes the stage and returns nothing."""

    @hookimpl(wrapper=True)
    def lagaug_decode(self, method, latents, context):
        yield
        return None


def test_a_stage_that_ends_with_none_is_a_plugin_error(jitter):
    assert len(jitter.run(Passes())) == 6  # None from one implementation passes to the next
    with pytest.raises(PluginError, match=r"no plugin gave a result for lagaug_decode"):
        jitter.run(Swallows())


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
    pm = make_plugin_manager()
    data = small_set()
    p1 = torch.tensor([[.9, .1], [.6, .4], [.5, .5], [.2, .8], [.7, .3], [.1, .9]])
    p2 = torch.tensor([[.7, .3], [.4, .6], [.5, .5], [.4, .6], [.9, .1], [.3, .7]])
    scores = pm.hook.lagaug_score(method=None, ensemble=FakeEnsemble(torch.stack([p1, p2])), dataset=data,
                                  context=StageContext(generator=torch.Generator()))
    assert torch.allclose(scores, torch.tensor([.8, .5, .5, .7, .2, .8]))
    soft = torch.tensor([[0.25, 0.75]])
    assert torch.allclose(true_label_confidence(torch.tensor([[[0.6, 0.4]]]), soft), torch.tensor([0.45]))


def test_default_select_picks_the_k_hardest_candidates(plugin_site):
    pm = make_plugin_manager()
    data = small_set()
    scores = torch.tensor([.8, .5, .1, .7, .2, .05])
    ctx = StageContext(generator=torch.Generator())
    pick = lambda **kw: pm.hook.lagaug_select(method=None, scores=scores, dataset=data, context=ctx, **kw).tolist()  # noqa: E731
    assert pick(k=2, classes=None, include_synthetic=False) == [4, 1]
    assert pick(k=2, classes=None, include_synthetic=True) == [5, 2]
    assert pick(k=1, classes=[0], include_synthetic=False) == [1]
    with pytest.raises(ConfigError, match=r"--hard-k 3 is larger than the 2 candidate images"):
        pick(k=3, classes=[1], include_synthetic=False)


class ScoreByIndexForJitter:
    @hookimpl
    def lagaug_score(self, method, ensemble, dataset, context):
        if method.name == "jitter":
            return torch.arange(len(dataset), dtype=torch.float32)


def test_a_plugin_can_replace_the_scorer_for_one_method(plugin_site):
    pm = make_plugin_manager(extra_plugins=[("byindex", ScoreByIndexForJitter())])
    data = small_set()
    ensemble = FakeEnsemble(torch.full((1, 6, 2), 0.5))
    jitter, other = SimpleNamespace(name="jitter"), SimpleNamespace(name="vae")
    ctx = StageContext(generator=torch.Generator())
    assert pm.hook.lagaug_score(method=jitter, ensemble=ensemble, dataset=data, context=ctx).tolist() == [0, 1, 2, 3, 4, 5]
    assert pm.hook.lagaug_score(method=other, ensemble=ensemble, dataset=data, context=ctx).tolist() == [0.5] * 6


COMMAND_PLUGIN = """
from lagaug import hookimpl

@hookimpl
def lagaug_register_commands(cli):
    @cli.command("hello")
    def hello():
        '''Say hello.'''
        print("hello from a plugin")
"""


BROKEN_COMMAND = """
from lagaug import hookimpl

@hookimpl
def lagaug_register_commands(cli):
    raise RuntimeError("no commands today")
"""


def test_plugins_can_add_cli_commands_and_a_broken_one_is_reported(plugin_site):
    make_distribution(plugin_site, "hello-plugin", "1.0", {"hello": "hello_cmd"}, {"hello_cmd": COMMAND_PLUGIN})
    make_distribution(plugin_site, "broken-cmd", "1.0", {"brokencmd": "broken_cmd"}, {"broken_cmd": BROKEN_COMMAND})
    out = subprocess.run([sys.executable, "-m", "lagaug.cli", "hello"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello from a plugin"
    assert "warning: plugin 'brokencmd' failed to add commands: RuntimeError: no commands today" in out.stderr
    helptext = subprocess.run([sys.executable, "-m", "lagaug.cli", "--help"], capture_output=True, text=True).stdout
    assert "hello" in helptext and "Say hello." in helptext
