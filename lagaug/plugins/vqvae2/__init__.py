"""The ``vqvae2`` plugin: VQ-VAE-2 + PixelSNAIL latent augmentation (Høj & Møgelmoose 2023).

Registers the method lazily (``lagaug.plugins.vqvae2.method:VQVAE2Method``) and adds the
``lagaug import-checkpoint`` command, which turns checkpoints of the reference implementation
(rosinality/vq-vae-2-pytorch) into a lagaug generator directory. Importing this module does not
import torch.

Modules: ``vqvae`` (the VQ-VAE-2), ``pixelsnail`` (the priors), ``sampler`` (the cached sampler
and the naive one), ``training``, ``metrics``, ``method`` (config + method), ``importer``.
"""

from __future__ import annotations

from lagaug import hookimpl


@hookimpl
def lagaug_register_methods(register):
    register(
        "lagaug.plugins.vqvae2.method:VQVAE2Method",
        name="vqvae2",
        description="VQ-VAE-2 + PixelSNAIL: keep an image's structural codes, resample its local "
        "detail codes (Høj & Møgelmoose 2023)",
    )


@hookimpl
def lagaug_register_commands(cli):
    import click

    from lagaug.cli.main import friendly_errors

    @cli.command("import-checkpoint")
    @click.option("--vqvae", "vqvae_path", required=True, type=click.Path(dir_okay=False),
                  help="VQ-VAE-2 state dict (.pt) of rosinality/vq-vae-2-pytorch.")
    @click.option("--bottom-prior", type=click.Path(dir_okay=False), default=None,
                  help="Bottom PixelSNAIL checkpoint ({'model', 'args'}); needed to resample.")
    @click.option("--top-prior", type=click.Path(dir_okay=False), default=None,
                  help="Top PixelSNAIL checkpoint (optional; for unconditional sampling).")
    @click.option("--out", required=True, type=click.Path(file_okay=False),
                  help="Directory to write the lagaug generator to.")
    @click.option("--class-names", default="",
                  help="Comma-separated class names of the data the generator is used with.")
    @click.option("--image-size", type=int, default=None,
                  help="Image side in pixels (only when no prior gives it).")
    @friendly_errors
    def import_checkpoint(vqvae_path, bottom_prior, top_prior, out, class_names, image_size):
        """Import reference VQ-VAE-2 / PixelSNAIL checkpoints as a vqvae2 generator.

        Files load with torch.load(weights_only=True), allowing only argparse.Namespace besides
        tensors; sizes are inferred from the tensor shapes.
        """
        from lagaug.core.store import check_output_dir
        from lagaug.plugins.vqvae2.importer import import_reference

        check_output_dir(out)
        names = [n.strip() for n in class_names.split(",") if n.strip()]
        method = import_reference(vqvae_path, bottom_prior=bottom_prior, top_prior=top_prior,
                                  out=out, class_names=names, image_size=image_size)
        c, h, w = method.image_shape
        parts = ["VQ-VAE-2"] + [f"{lvl} prior" for lvl in ("bottom", "top")
                                if f"{lvl}_prior" in method.state]
        click.echo(f"wrote {out}: vqvae2 generator for {c}x{h}x{w} images ({', '.join(parts)}; "
                   f"{method.config.n_embed} codes)")
