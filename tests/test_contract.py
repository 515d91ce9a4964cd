"""Every built-in method keeps the method contract (lagaug.testing.MethodContract)."""

from lagaug.testing import MethodContract


class TestVAE(MethodContract):
    method = "vae"
    overrides = {"latent_dim": 2, "epochs": 2, "min_steps": 4, "channels": 8, "hidden": 16, "batch_size": 8}


class TestVQVAE2(MethodContract):
    method = "vqvae2"
    overrides = {"channel": 16, "n_res_block": 1, "n_res_channel": 8, "embed_dim": 4, "n_embed": 16, "epochs": 2,
                 "prior_channel": 8, "prior_res_channel": 8, "prior_n_block": 1, "prior_n_res_block": 1,
                 "prior_n_cond_res_block": 1, "prior_epochs": 2}


class TestStyleGAN2(MethodContract):
    method = "stylegan2"
    overrides = {"style_dim": 16, "n_mlp": 2, "channel_base": 256, "channel_max": 16, "steps": 20, "batch_size": 8,
                 "class_proj_steps": 10, "proj_steps": 10}
