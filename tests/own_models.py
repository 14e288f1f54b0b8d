"""Your own model, as the tests make it: a plug-in distribution written into a folder on ``sys.path``
(a module and a ``<name>.dist-info/`` with ``METADATA`` and ``entry_points.txt``, which is all that
``importlib.metadata`` reads), and a module of plain torch networks to wrap.

Use the fixtures ``plugin`` (the family ``mine`` of the distribution ``vqviz-mine`` 0.1.0 installed)
and ``own_factory`` (the module ``own_nets``, importable, with its factory ``own_nets:build`` allowed); each
undoes itself, modules, ``sys.path`` and the registry's entry-point cache included.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from vqviz.models import registry

FAMILY = '''
"""A model family of another package: a VQ autoencoder on vqviz's networks."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vqviz.cluster import nearest
from vqviz.models import Model, QuantizerOutput
from vqviz.models.common import reconstruction_loss
from vqviz.models.config import ModelConfig
from vqviz.nets import build_decoder, build_encoder


@dataclass
class MineConfig(ModelConfig):
    """Settings of the plug-in's model.

    Attributes
    ----------
    k : codewords in its codebook.
    """

    encoder: str = "lae2"
    k: int = 16
    K_FIELD = "k"


class Mine(Model):
    """A VQ autoencoder from a plug-in package."""

    Config = MineConfig
    name = "mine"

    def __init__(self, config):
        super().__init__(config)
        c = config
        self.encoder = build_encoder(c.encoder, c.in_shape, c.latent_dim)
        self.decoder = build_decoder(c.encoder, c.in_shape, c.latent_dim, logits=True)
        self.codebook = nn.Parameter(torch.randn(c.k, c.latent_dim) * 0.1)
        self.register_buffer("started", torch.tensor(False))

    @property
    def n_codes(self):
        return self.config.k

    def quantize(self, z):
        # on the unit sphere (as ViT-VQGAN's l2-normalised codes): the latents cannot outgrow the codewords
        z, book = F.normalize(z, dim=1), F.normalize(self.codebook, dim=1)
        idx = nearest(z, book)
        c = book[idx]
        loss = F.mse_loss(c, z.detach()) + 0.25 * F.mse_loss(z, c.detach())
        return QuantizerOutput(z + (c - z).detach(), idx, F.one_hot(idx, self.config.k).float(), loss, {})

    def codes(self, indices):
        return F.normalize(self.codebook, dim=1)[indices]

    def reconstruct(self, x):
        return self.decode(self.quantize(self.encode(x)).quantized)

    def training_loss(self, x, y):
        z = self.encode(x)
        if not self.started:  # the codewords start on the first batch's latents: none is dead from the start
            self.codebook.data.copy_(z.detach()[torch.arange(self.config.k) % len(z)])
            self.started.fill_(True)
        q = self.quantize(z)
        recon = reconstruction_loss(self.decode_logits(q.quantized), x, "bce").mean()
        return {"loss": recon + q.loss, "recon": recon.detach()}


def helper():
    """Not a model family: an entry point that names it is left out with a warning."""
'''

NETS = '''
"""Plain torch networks, as a user has them: no vqviz anywhere."""

import math

import torch
from torch import nn


class Codebook(nn.Module):
    """The nearest of K codewords: returns (quantized, indices), the quantizer protocol's short form."""

    def __init__(self, n_codes, dim):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(n_codes, dim))

    def forward(self, z):
        idx = torch.cdist(z, self.codebook).argmin(1)
        return self.codebook[idx], idx


def build(in_shape, latent_dim=8, hidden=32, n_codes=0, decoder=True):
    n = math.prod(in_shape)
    parts = {"encoder": nn.Sequential(nn.Flatten(), nn.Linear(n, hidden), nn.Tanh(), nn.Linear(hidden, latent_dim))}
    if decoder:
        parts["decoder"] = nn.Sequential(nn.Linear(latent_dim, hidden), nn.Tanh(), nn.Linear(hidden, n), nn.Sigmoid())
    if n_codes:
        parts["quantizer"] = Codebook(n_codes, latent_dim)
    return parts
'''

#: A module that must never be imported: importing it leaves a file named by the MARKER variable.
EVIL = '''
import os
from pathlib import Path

Path(os.environ["OWN_MODELS_MARKER"]).write_text("imported")


def build(**kwargs):
    raise AssertionError("never called")
'''


def write_distribution(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]],
                       modules: dict[str, str]) -> Path:
    """Write modules and ``<name>-<version>.dist-info`` (METADATA, entry_points.txt) into ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    for module, text in modules.items():
        path = site.joinpath(*module.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(site).parents:  # packages
            if parent != Path("."):
                (site / parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(text))
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) + "\n" for group, eps in entry_points.items()))
    return info


def _forget(prefixes: tuple[str, ...]) -> None:
    for module in [m for m in sys.modules if m.split(".")[0] in prefixes]:
        del sys.modules[module]


@pytest.fixture
def site(tmp_path, monkeypatch):
    """An empty folder on ``sys.path``; on the way out, the modules imported from it and the registry's
    entry points are forgotten."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    registry.forget_plugins()
    yield folder
    if str(folder) in sys.path:  # before the registry reads the entry points again
        sys.path.remove(str(folder))
    _forget(("vqviz_mine", "own_nets", "evil_nets"))
    registry.forget_plugins()


@pytest.fixture
def plugin(site):
    """The distribution ``vqviz-mine`` 0.1.0 installed: the family ``mine`` through ``vqviz.models``."""
    write_distribution(site, "vqviz-mine", "0.1.0", {"vqviz.models": {"mine": "vqviz_mine.model:Mine"}},
                       {"vqviz_mine.model": FAMILY})
    registry.forget_plugins()
    return site


@pytest.fixture
def own_factory(site, monkeypatch, tmp_path):
    """The module ``own_nets`` on ``sys.path`` (its factory ``own_nets:build``) and ``evil_nets``, which
    must never be imported (it would write the file ``tmp_path / "imported"``); the setting
    ``VQVIZ_ALLOWED_FACTORIES`` lists ``own_nets``. Returns the marker file's path."""
    (site / "own_nets.py").write_text(textwrap.dedent(NETS))
    (site / "evil_nets.py").write_text(textwrap.dedent(EVIL))
    marker = tmp_path / "imported"
    monkeypatch.setenv("OWN_MODELS_MARKER", str(marker))
    monkeypatch.setenv("VQVIZ_ALLOWED_FACTORIES", "own_nets")
    return marker
