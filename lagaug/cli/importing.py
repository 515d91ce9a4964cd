"""``lagaug import-checkpoint``: turn another implementation's checkpoint into a lagaug generator.

The command belongs to the core and dispatches to the chosen method's
:meth:`~lagaug.GeneratorMethod.import_checkpoint` (``vqvae2`` reads rosinality/vq-vae-2-pytorch
files, ``stylegan2`` rosinality/stylegan2-pytorch files; a third-party method may implement it
too). Files load with ``torch.load(weights_only=True)`` and an allow-list (docs/compat.md).
"""

from __future__ import annotations

import click

from lagaug.cli.options import friendly_errors, pass_plugins


@click.command("import-checkpoint")
@click.argument("checkpoint", required=False)
@click.option("--method", default="vqvae2", show_default=True,
              help="The method whose format CHECKPOINT is in: vqvae2 or stylegan2 (or a plugin's).")
@click.option("--vqvae", "vqvae_path", default=None,
              help="vqvae2: the VQ-VAE-2 state dict (.pt); the same as CHECKPOINT.")
@click.option("--bottom-prior", default=None,
              help="vqvae2: the bottom PixelSNAIL checkpoint ({'model', 'args'}); needed to resample.")
@click.option("--top-prior", default=None,
              help="vqvae2: the top PixelSNAIL checkpoint (optional; for unconditional sampling).")
@click.option("--channel-multiplier", type=int, default=None,
              help="stylegan2: the multiplier the generator was trained with (checked against the file).")
@click.option("--out", required=True, help="Directory to write the lagaug generator to (new or empty).")
@click.option("--class-names", default="", help="Comma-separated class names of the data the generator is used with.")
@click.option("--image-size", type=int, default=None,
              help="Image side in pixels (checked against the file, or needed where the file does not store it).")
@pass_plugins
@friendly_errors
def import_checkpoint(plugins, checkpoint, method, vqvae_path, bottom_prior, top_prior, channel_multiplier, out,
                      class_names, image_size) -> None:
    """Import a checkpoint of a reference implementation as a lagaug generator.

    \b
    lagaug import-checkpoint --vqvae vqvae_560.pt --bottom-prior pixelsnail_bottom.pt --out gen/
    lagaug import-checkpoint --method stylegan2 550000.pt --out gen/ --class-names ok,defect
    """
    from pathlib import Path

    from lagaug.core.errors import ConfigError
    from lagaug.core.run.generators import check_generator_out

    check_generator_out(out)
    cls = plugins.get_method(method)
    if checkpoint is not None and vqvae_path is not None:
        if Path(checkpoint).resolve() != Path(vqvae_path).resolve():
            raise ConfigError(f"CHECKPOINT {checkpoint} and --vqvae {vqvae_path} name different files; give the "
                              "VQ-VAE file once")
        checkpoint = None
    files = {k: v for k, v in (("checkpoint", checkpoint), ("vqvae", vqvae_path), ("bottom_prior", bottom_prior),
                               ("top_prior", top_prior)) if v is not None}
    options = {} if channel_multiplier is None else {"channel_multiplier": channel_multiplier}
    names = [n.strip() for n in class_names.split(",")] if class_names.strip() else []
    if any(not n for n in names):
        raise ConfigError(f"--class-names {class_names!r}: an empty class name; give names separated by commas")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"--class-names {class_names!r}: {twice[0]!r} is given twice; class names must differ")
    gen = cls.import_checkpoint(files, out=out, class_names=names, image_size=image_size, **options)
    c, h, w = gen.image_shape
    click.echo(f"wrote {out}: {gen.name} generator for {c}x{h}x{w} images ({gen.describe_import()})")
