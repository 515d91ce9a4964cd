"""Import checkpoints of the reference implementation (rosinality/vq-vae-2-pytorch) as a lagaug
``vqvae2`` generator directory (``generator.json`` + ``weights.safetensors``).

Formats (``docs/compat.md``):

* VQ-VAE file: a raw state dict, every key possibly prefixed ``module.`` (multi-GPU training).
* PixelSNAIL file: ``{"model": state_dict, "args": argparse.Namespace}`` (a raw state dict is
  accepted too).

Files are read with ``torch.load(weights_only=True)`` and an allow-list of exactly
``argparse.Namespace``: a file holding any other pickled object is refused. What the files do not
store is inferred from tensor shapes (sizes, block counts, map shape from ``background``). Saved
causal convs carry non-zero ``weight_v`` values in their masked taps, so the causal mask is
applied to ``weight_v`` again before anything folds the weight norm.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from lagaug.core.contract.plugins import registered_method
from lagaug.core.errors import CheckpointError, ConfigError
from lagaug.core.foreign import ALLOWED_GLOBALS, check_tensor, count_indexed, load_checkpoint_file, need_tensor
from lagaug.plugins.vqvae2.pixelsnail import CausalConv2d


def load_reference_file(path: str | os.PathLike) -> Any:
    """``torch.load`` a reference file safely (CPU, ``weights_only``, Namespace allowed)."""
    return load_checkpoint_file(path, allowed=ALLOWED_GLOBALS)


def _state_dict(obj: Any, path: Path, kind: str) -> tuple[dict[str, torch.Tensor], Any]:
    """The state dict (``module.`` stripped, float32) and the stored args (or None)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict or {{'model': ..., 'args': ...}}, "
                              f"found a {type(obj).__name__}")
    args = None
    if "model" in obj:
        if kind == "vqvae":
            raise CheckpointError(f"{path}: this is a PixelSNAIL checkpoint ({{'model', 'args'}}), "
                                  "not a VQ-VAE state dict; pass it as --bottom-prior or --top-prior")
        args = obj.get("args")
        if args is not None and not isinstance(args, argparse.Namespace):
            raise CheckpointError(f"{path}: 'args' holds a {type(args).__name__}, expected an "
                                  "argparse.Namespace")
        obj = obj["model"]
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{path}: 'model' holds a {type(obj).__name__}, expected a state dict")
    state = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: key {key!r} holds a {type(value).__name__}, expected a "
                                  "tensor; not a reference checkpoint")
        name = key[len("module."):] if key.startswith("module.") else key
        check_tensor(path, key, value)  # real, finite numbers
        state[name] = value.float() if value.is_floating_point() else value
    looks_vqvae = any(k.startswith("enc_b.") for k in state)
    if kind == "vqvae" and not looks_vqvae:
        raise CheckpointError(f"{path}: no 'enc_b.*' keys: not a VQ-VAE-2 checkpoint of the reference "
                              "implementation")
    if kind != "vqvae" and looks_vqvae:
        raise CheckpointError(f"{path}: this is a VQ-VAE checkpoint; pass it as --vqvae")
    return state, args


def _need(state: Mapping[str, torch.Tensor], key: str, path: Path, dims: int = 4) -> torch.Tensor:
    """``state[key]`` with ``dims`` dimensions (checked before its shape is read)."""
    return need_tensor(state, key, path, dims, "not a checkpoint of the reference implementation (or of another "
                                               "architecture)")


def infer_vqvae(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, int]:
    """VQ-VAE-2 sizes from tensor shapes."""
    n_res = count_indexed(state, r"enc_b\.blocks\.(\d+)\.conv\.1\.weight$")
    embed_t = _need(state, "quantize_t.embed", path, 2)
    embed_b = _need(state, "quantize_b.embed", path, 2)
    if embed_b.shape != embed_t.shape:
        raise CheckpointError(f"{path}: key 'quantize_b.embed' has shape {tuple(embed_b.shape)}, "
                              f"expected {tuple(embed_t.shape)} like 'quantize_t.embed'")
    return {
        "in_channel": int(_need(state, "enc_b.blocks.0.weight", path).shape[1]),
        "channel": int(_need(state, "enc_b.blocks.2.weight", path).shape[0]),
        "n_res_block": n_res,
        "n_res_channel": int(_need(state, "enc_b.blocks.5.conv.1.weight", path).shape[0]) if n_res else 32,
        "embed_dim": int(embed_t.shape[0]),
        "n_embed": int(embed_t.shape[1]),
    }


def infer_prior(state: Mapping[str, torch.Tensor], args: Any, path: Path) -> dict[str, Any]:
    """PixelSNAIL constructor arguments from tensor shapes (and ``args.dropout`` when stored)."""
    stem = _need(state, "horizontal.conv.conv.weight_v", path)
    conv1 = _need(state, "blocks.0.resblocks.0.conv1.conv.conv.weight_v", path)
    if "background" in state and state["background"].dim() != 4:
        raise CheckpointError(f"{path}: 'background' has shape {tuple(state['background'].shape)}, expected "
                              "(1, 2, height, width); is this a PixelSNAIL checkpoint?")
    background = _need(state, "background", path)
    out = {
        "shape": tuple(int(v) for v in background.shape[2:]),
        "n_class": int(stem.shape[1]),
        "channel": int(stem.shape[0]),
        "kernel_size": int(conv1.shape[-1]),
        "n_block": count_indexed(state, r"blocks\.(\d+)\."),
        "n_res_block": count_indexed(state, r"blocks\.0\.resblocks\.(\d+)\.conv1\."),
        "res_channel": int(conv1.shape[0]),
        "attention": "blocks.0.causal_attention.query.weight_v" in state,
        "dropout": float(getattr(args, "dropout", 0.1)),
        "n_cond_res_block": 0,
        "cond_res_channel": 0,
        "cond_res_kernel": 3,
        "n_out_res_block": count_indexed(state, r"out\.(\d+)\.conv1\."),
    }
    if "cond_resnet.blocks.0.conv.weight_v" in state:
        first = _need(state, "cond_resnet.blocks.0.conv.weight_v", path)
        out.update(n_cond_res_block=count_indexed(state, r"cond_resnet\.blocks\.(\d+)\.conv1\."),
                   cond_res_channel=int(first.shape[0]), cond_res_kernel=int(first.shape[-1]))
    for key, kernel in (("blocks.0.resblocks.0.conv1.conv.conv.weight_v", out["kernel_size"]),
                        ("cond_resnet.blocks.0.conv.weight_v", out["cond_res_kernel"])):
        if kernel % 2 == 0:
            raise CheckpointError(f"{path}: key {key!r} has an even kernel {tuple(state[key].shape[-2:])}; only "
                                  "odd kernels are supported")
    return out


def _load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path,
                  what: str) -> None:
    """``load_state_dict`` with one-line errors naming the key and expected vs found shape."""
    expected = module.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: missing key {key!r} (expected shape "
                                  f"{tuple(value.shape)}) for the {what} inferred from its shapes")
        check_tensor(path, key, state[key], value)
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(f"{path}: key {key!r} has shape {tuple(state[key].shape)}, "
                                  f"expected {tuple(value.shape)} for the {what} inferred from its shapes")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected key {extra[0]!r} for the {what}; not a "
                              "checkpoint of the reference implementation")
    module.load_state_dict(state, strict=True)


def mask_causal_weights(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Zero the masked taps of every causal conv's ``weight_v`` in ``state`` (in place); returns
    how many non-zero values were removed."""
    removed = 0
    for name, sub in module.named_modules():
        mask = sub.conv.conv.mask if isinstance(sub, CausalConv2d) else None
        key = f"{name}.conv.conv.weight_v"
        if mask is not None and key in state and state[key].shape == mask.shape and state[key].is_floating_point():
            removed += int(((state[key] != 0) & (mask == 0)).sum())
            state[key] = state[key] * mask
    return removed


def _prior_config(prefix: str, p: dict[str, Any]) -> dict[str, Any]:
    keys = {"channel": "channel", "res_channel": "res_channel", "kernel_size": "kernel",
            "n_block": "n_block", "n_res_block": "n_res_block", "n_out_res_block": "n_out_res_block",
            "dropout": "dropout", "attention": "attention"}
    out = {f"{prefix}_{ours}": p[theirs] for theirs, ours in keys.items()}
    if prefix == "prior":
        out.update(prior_n_cond_res_block=p["n_cond_res_block"],
                   prior_cond_res_channel=p["cond_res_channel"],
                   prior_cond_res_kernel=p["cond_res_kernel"])
    return out


def _args_record(args: Any) -> dict[str, Any]:
    """The JSON-safe part of a stored Namespace (for provenance)."""
    if args is None:
        return {}
    return {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}


def import_reference(
    vqvae: str | os.PathLike,
    *,
    bottom_prior: str | os.PathLike | None = None,
    top_prior: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    class_names: list[str] | None = None,
    image_size: int | tuple[int, int] | None = None,
    method_cls: type | None = None,
):
    """Build a ``VQVAE2Method`` from reference checkpoints; save it to ``out`` when given.
    ``method_cls``: the method class to build (``VQVAE2Method.import_checkpoint`` passes itself;
    default: the method registered as ``vqvae2``), so that this module never imports the method's.

    The image size comes from the bottom prior's map (x4) or the top prior's (x8); without a prior
    pass ``image_size``. Without a bottom prior the generator can encode and decode but not
    resample (it says so when asked).
    """
    vq_path = Path(vqvae)
    vq_state, _ = _state_dict(load_reference_file(vq_path), vq_path, "vqvae")
    vq = infer_vqvae(vq_state, vq_path)

    priors: dict[str, tuple[Path, dict, dict, Any]] = {}
    for level, given in (("bottom", bottom_prior), ("top", top_prior)):
        if given is None:
            continue
        path = Path(given)
        state, args = _state_dict(load_reference_file(path), path, level)
        info = infer_prior(state, args, path)
        conditioned = info["n_cond_res_block"] > 0
        if level == "bottom" and not conditioned:
            raise CheckpointError(f"{path}: no 'cond_resnet.*' keys: this looks like a top prior; pass "
                                  "it as --top-prior")
        if level == "top" and conditioned:
            raise CheckpointError(f"{path}: it has 'cond_resnet.*' keys: this looks like a bottom "
                                  "prior; pass it as --bottom-prior")
        if info["n_class"] != vq["n_embed"]:
            raise CheckpointError(f"{path}: key 'horizontal.conv.conv.weight_v' models "
                                  f"{info['n_class']} codes, expected {vq['n_embed']} (the VQ-VAE's "
                                  "codebook size)")
        priors[level] = (path, state, info, args)

    sizes = []
    if "bottom" in priors:
        sizes.append(("bottom prior", tuple(4 * v for v in priors["bottom"][2]["shape"])))
    if "top" in priors:
        sizes.append(("top prior", tuple(8 * v for v in priors["top"][2]["shape"])))
    if image_size is not None:
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        sizes.insert(0, ("--image-size", tuple(int(v) for v in size)))
    if not sizes:
        raise ConfigError("import-checkpoint: the VQ-VAE file does not store the image size; give "
                          "--image-size or a prior (--bottom-prior / --top-prior)")
    for what, size in sizes[1:]:
        if size != sizes[0][1]:
            raise CheckpointError(f"{what} is for {size[0]}x{size[1]} images but {sizes[0][0]} "
                                  f"says {sizes[0][1][0]}x{sizes[0][1][1]}")
    height, width = sizes[0][1]

    fields: dict[str, Any] = {k: vq[k] for k in ("channel", "n_res_block", "n_res_channel",
                                                 "embed_dim", "n_embed")}
    fields.update(border="zero", bottom_stride=4)  # the reference: zero padding, bottom map at 1/4
    if "bottom" in priors:
        fields.update(_prior_config("prior", priors["bottom"][2]))
    if "top" in priors:
        fields.update(_prior_config("top_prior", priors["top"][2]), top_prior=True)
    try:
        method_cls = method_cls or registered_method("vqvae2")
        config = method_cls.Config(**fields)
    except ConfigError as exc:  # worded for --set, but the values come from the files' shapes
        raise CheckpointError(f"{vq_path}: the files' tensor shapes give an unsupported VQ-VAE-2 "
                              f"({str(exc).removeprefix('--set ')})") from None
    method = method_cls(config, (vq["in_channel"], height, width), list(class_names or []))

    _load_checked(method.vqvae, vq_state, vq_path, "VQ-VAE-2")
    method.state = {"vqvae": {"imported_from": str(vq_path)}}
    for level, (path, state, info, args) in priors.items():
        module = method.bottom_prior if level == "bottom" else method.top_prior
        removed = mask_causal_weights(module, state)
        _load_checked(module, state, path, f"{level} prior")
        method.state[f"{level}_prior"] = {"imported_from": str(path), "args": _args_record(args),
                                          "masked_nonzero_weights": removed,
                                          "criterion": "imported checkpoint"}
    if out is not None:
        method.save(out)
    return method
