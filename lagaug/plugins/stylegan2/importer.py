"""Import generators of rosinality/stylegan2-pytorch as a lagaug ``stylegan2`` generator
directory (``generator.json`` + ``weights.safetensors``). The format is described in
``docs/compat.md``.

Accepted files:

* converted official weights (its ``convert_weight.py``): ``{"g_ema": state_dict, "latent_avg":
  tensor}``, sometimes with ``g`` and ``d``;
* its training checkpoints (``train.py``): ``{"g", "d", "g_ema", "g_optim", "d_optim", "args",
  "ada_aug_p"}`` with ``args`` an ``argparse.Namespace``.

Files are read with ``torch.load(weights_only=True)`` and an allow-list of exactly
``argparse.Namespace``; anything else pickled in them is refused. NVIDIA's own ``.pkl`` files are
pickles of code and are never opened. What the files do not store is inferred from tensor shapes
(image size, style dimension, mapping depth, channels per resolution, channel multiplier) or fixed
(the mapping network's learning-rate multiplier 0.01, which scales the stored weights at run time:
loading with 1.0 gives a different generator).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from lagaug.core.contract.plugins import registered_method
from lagaug.core.errors import CheckpointError
from lagaug.core.foreign import ALLOWED_GLOBALS, check_tensor, count_indexed, load_checkpoint_file, need_tensor
from lagaug.plugins.stylegan2.networks import resolutions

REFERENCE_LR_MLP = 0.01
_NVIDIA_MODULES = ("dnnlib", "torch_utils", "training.networks", "legacy")


def _refuse_nvidia(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: refused: {why}; NVIDIA's StyleGAN .pkl files are pickles of Python code that "
        "could run anything when loaded. Convert it with rosinality/stylegan2-pytorch's "
        "convert_weight.py and import the .pt it writes")


def _nvidia(path: Path, name: str) -> CheckpointError | None:
    return _refuse_nvidia(path, f"it is an NVIDIA pickle (it holds {name!r})") if name.startswith(_NVIDIA_MODULES) else None


def load_reference_file(path: str | os.PathLike) -> Any:
    """``torch.load`` a reference file safely: CPU, ``weights_only``, Namespace allowed; NVIDIA's
    ``.pkl`` files are refused by name and by content."""
    path = Path(path)
    if path.suffix.lower() == ".pkl":
        raise _refuse_nvidia(path, "a .pkl file")
    return load_checkpoint_file(path, allowed=ALLOWED_GLOBALS, what="a rosinality checkpoint", refuse=_nvidia)


def _tensors(obj: Any, path: Path, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: {what!r} holds a {type(obj).__name__}, expected a state dict")
    out = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: {what}[{key!r}] holds a {type(value).__name__}, expected a tensor")
        name = key[len("module."):] if key.startswith("module.") else key
        check_tensor(path, f"{what}.{key}", value)  # real, finite numbers
        out[name] = value.float() if value.is_floating_point() else value
    return out


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The parts of a rosinality file: ``g_ema`` (state dict), optional ``d``, ``args``,
    ``latent_avg`` and the file's kind."""
    path = Path(path)
    obj = load_reference_file(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict with a 'g_ema' generator, found a {type(obj).__name__}")
    if "g_ema" not in obj:
        found = ", ".join(sorted(map(str, obj))[:8]) or "nothing"
        hint = (" (it looks like a bare state dict; save it as {'g_ema': state_dict})"
                if any(str(k).startswith("style.") for k in obj) else "")
        raise CheckpointError(f"{path}: no 'g_ema' generator in this file (found {found}){hint}; give a "
                              "checkpoint of rosinality/stylegan2-pytorch's train.py or convert_weight.py")
    args = obj.get("args")
    if args is not None and not isinstance(args, argparse.Namespace):
        raise CheckpointError(f"{path}: 'args' holds a {type(args).__name__}, expected an argparse.Namespace")
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{path}: 'latent_avg' holds a {type(latent_avg).__name__}, expected a tensor")
    if latent_avg is not None:
        check_tensor(path, "latent_avg", latent_avg)
    return {
        "g_ema": _tensors(obj["g_ema"], path, "g_ema"),
        "d": _tensors(obj["d"], path, "d") if obj.get("d") is not None else None,
        "args": args,
        "latent_avg": None if latent_avg is None else latent_avg.float().reshape(-1),
        "kind": "training checkpoint" if "g_optim" in obj or args is not None else "converted weights",
    }


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path, dims: int) -> torch.Tensor:
    """``g_ema[key]`` with ``dims`` dimensions (checked before its shape is read)."""
    if key not in state:
        raise CheckpointError(f"{path}: g_ema has no key {key!r}; not a StyleGAN2 generator of "
                              "rosinality/stylegan2-pytorch")
    return need_tensor(state, key, path, dims, "")


def infer_generator(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """Size, style dimension, mapping depth, image channels, channels per resolution and (for 64 px
    and up) the channel multiplier, from the shapes of a ``g_ema`` state dict."""
    style = _need(state, "style.1.weight", path, 2)
    n_rgbs = count_indexed(state, r"to_rgbs\.(\d+)\.conv\.weight$")
    size = 2 ** (n_rgbs + 2)
    if n_rgbs < 1:
        raise CheckpointError(f"{path}: g_ema has no 'to_rgbs.N' layers; lagaug needs a generator of "
                              "at least 8x8 images")
    channels = {4: int(_need(state, "input.input", path, 4).shape[1])}
    for j, res in enumerate(resolutions(size)[1:]):
        channels[res] = int(_need(state, f"convs.{2 * j}.conv.weight", path, 5).shape[1])
    base = channels[4]
    multiplier = None
    if size >= 64 and base % 2 == 0 and channels[64] % (base // 2) == 0:
        cm = channels[64] // (base // 2)
        if all(channels[r] == (base if r <= 32 else base * 32 // r * cm) for r in channels):
            multiplier = cm
    return {
        "size": size,
        "style_dim": int(style.shape[1]),
        "n_mlp": count_indexed(state, r"style\.(\d+)\.weight$"),
        "img_channels": int(_need(state, "to_rgb1.conv.weight", path, 5).shape[1]),
        "channels": channels,
        "channel_multiplier": multiplier,
    }


def _load_checked(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path, what: str) -> None:
    """``load_state_dict`` with one-line errors naming the key, found and expected shapes."""
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: {what} has no key {key!r} (expected shape {tuple(value.shape)}); "
                                  "not a StyleGAN2 of rosinality/stylegan2-pytorch")
        check_tensor(path, f"{what}.{key}", state[key], value)
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: {what} key {key!r} has shape {tuple(state[key].shape)}, expected "
                                  f"{tuple(value.shape)} for the generator inferred from its shapes")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: {what} has an unexpected key {extra[0]!r}; not a StyleGAN2 of "
                              "rosinality/stylegan2-pytorch (or a modified one)")
    module.load_state_dict(dict(state), strict=True)


def _args_record(args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}


def import_reference(path: str | os.PathLike, *, out: str | os.PathLike | None = None,
                     class_names: list[str] | None = None, image_size: int | None = None,
                     channel_multiplier: int | None = None, seed: int = 0, method_cls: type | None = None):
    """Build a ``StyleGAN2Method`` from a rosinality/stylegan2-pytorch file; save it to
    ``out`` when given. ``method_cls``: the method class to build (``StyleGAN2Method.import_checkpoint``
    passes itself; default: the method registered as ``stylegan2``), so that this module never
    imports the method's.

    ``image_size`` (``--image-size``) and ``channel_multiplier``, when given, must agree with the
    file. W's statistics (mean, spread, principal directions) are measured from mapping samples
    drawn with ``seed``. Class directions need training images: fit them later with
    ``method.fit_class_directions(train, ctx)``, or use the ``random`` or ``pca`` directions.
    """
    path = Path(path)
    parts = read_checkpoint(path)
    info = infer_generator(parts["g_ema"], path)
    size, cm = info["size"], info["channel_multiplier"]
    if image_size is not None and int(image_size) != size:
        raise CheckpointError(f"{path}: this generator makes {size}x{size} images but --image-size is "
                              f"{image_size}; pass --image-size {size} (or import a {image_size}-px generator)")
    args = parts["args"]
    stored_cm = getattr(args, "channel_multiplier", None)
    for given, source in ((channel_multiplier, "--channel-multiplier"), (stored_cm, "its args")):
        if given is None or size < 64 or (cm is not None and int(given) == cm):
            continue  # below 64 px every multiplier gives the same shapes
        found = f"channel multiplier {cm}" if cm is not None else "no channel multiplier of the reference's table"
        if source == "--channel-multiplier":
            todo = f"pass --channel-multiplier {cm} or leave it out" if cm else "leave --channel-multiplier out"
        else:
            todo = "the file is inconsistent; re-save it from the model it was trained with"
        raise CheckpointError(
            f"{path}: {source} says channel_multiplier {given} but the tensor shapes give {found} "
            f"(4-px layers have {info['channels'][4]} channels, 64-px layers {info['channels'][64]}); {todo}")
    stored_size = getattr(args, "size", None)
    if stored_size is not None and int(stored_size) != size:
        raise CheckpointError(f"{path}: its args say size {stored_size} but g_ema's layers make "
                              f"{size}x{size} images; the file is inconsistent")
    has_d = parts["d"] is not None
    method_cls = method_cls or registered_method("stylegan2")
    config = method_cls.Config(
        style_dim=info["style_dim"], n_mlp=info["n_mlp"], lr_mlp=REFERENCE_LR_MLP,
        channels=tuple(info["channels"][r] for r in resolutions(size)), discriminator=has_d,
        channel_max=max(info["channels"].values()),
    )
    method = method_cls(config, (info["img_channels"], size, size), list(class_names or []))
    _load_checked(method.generator, parts["g_ema"], path, "g_ema")
    if has_d:
        _load_checked(method.discriminator, parts["d"], path, "d")
    method.generator.eval()
    method.measure_w(torch.Generator().manual_seed(seed), "cpu")
    record: dict[str, Any] = {
        "file": str(path), "kind": parts["kind"], "size": size, "style_dim": info["style_dim"],
        "n_mlp": info["n_mlp"], "channel_multiplier": cm, "lr_mlp": REFERENCE_LR_MLP,
        "discriminator": has_d, "args": _args_record(args),
    }
    if parts["latent_avg"] is not None and parts["latent_avg"].numel() == info["style_dim"]:
        gap = float((parts["latent_avg"] - method.stats.w_avg).norm())
        record["latent_avg_distance"] = gap  # the file's mean w against ours (small if all agrees)
    method.state["imported"] = record
    if out is not None:
        method.save(out)
    return method
