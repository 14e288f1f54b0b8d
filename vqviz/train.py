"""One model-agnostic training loop that reports through callbacks.

A model's ``fit`` runs one or more *stages* (SEQ: encoder, k-means, decoder).
Each gradient stage is a call to :meth:`Trainer.run` with the parameters to
optimise and a loss function; the trainer owns batching, the optimiser,
seeding, the NaN guard and progress reports. The command line's progress bar,
the app's ``st.progress`` and the tests all hook in with :meth:`add_callback`.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from . import distributed
from .errors import ConfigError, TrainingError
from .utils import set_seed

EVENTS = ("on_step", "on_epoch", "on_stage")


@dataclass
class TrainConfig:
    """Settings of the optimisation, saved in every checkpoint.

    Attributes
    ----------
    epochs : passes over the training set in each gradient stage.
    batch_size : samples per step, over all processes when training with torchrun.
    lr : Adam's learning rate.
    weight_decay : Adam's L2 penalty.
    seed : seeds python, numpy and torch at the start of every stage.
    device : "auto" (cuda, then mps, then cpu), or a torch device string.
    history_sample : held-out images on which a model with a codebook records its codebook use after every epoch (the checkpoint's codebook history); 0 = none.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    history_sample: int = 2000

    def __post_init__(self):
        for name, (low, high) in TRAIN_INT_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in {low}..{high:,}, got {value!r}")
        for name, (low, high, closed) in TRAIN_FLOAT_RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and \
                (low <= value if closed else low < value) and value <= high
            if not ok:
                bound = "[" if closed else "("
                raise ConfigError(f"{name} must be a number in {bound}{low:g}, {high:g}], got {value!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ConfigError(f"device must be 'auto' or a torch device string, got {self.device!r}")


#: Allowed ranges of TrainConfig's numbers. An Adam step of lr = 1e38 overflows float32, and no
#: model here learns anything above lr = 10, so such values are refused before a run starts.
TRAIN_INT_RANGES = {"epochs": (1, 100_000), "batch_size": (1, 2**20), "seed": (0, 2**63 - 1),
                    "history_sample": (0, 2**20)}
TRAIN_FLOAT_RANGES = {"lr": (0.0, 10.0, False), "weight_decay": (0.0, 10.0, True)}


@dataclass
class Progress:
    """What a callback receives.

    Attributes
    ----------
    stage : name of the current stage, e.g. "encoder".
    stage_index, n_stages : position of the stage in the model's plan.
    epoch, epochs : current epoch (1-based) and the stage's number of epochs.
    step, steps : current step within the epoch (1-based) and steps per epoch.
    terms : loss terms of this step (``on_step``) or their epoch means (``on_epoch``).
    fraction : fraction of the whole fit done, in [0, 1].
    message : a human-readable note (used by stages without steps, such as k-means).
    """

    stage: str
    stage_index: int = 0
    n_stages: int = 1
    epoch: int = 0
    epochs: int = 0
    step: int = 0
    steps: int = 0
    terms: dict = field(default_factory=dict)
    fraction: float = 0.0
    message: str = ""


class StopTraining(Exception):
    """Raised inside a callback (e.g. the app's stop button) to end training early."""


class EndStage(Exception):
    """Raised inside an ``on_epoch`` callback to end the current stage after that epoch, keeping its
    weights, so that the fit goes on with its next stage: a rule the caller keeps, such as a
    wall-clock budget, where :attr:`Trainer.converged` would need the trainer in hand. The
    ``on_epoch`` callbacks added after the one that raised are not called for that epoch. Under
    torchrun, every rank must raise it at the same epoch."""


def plateau(patience: int = 5, min_delta: float = 1e-3, term: str = "loss") -> Callable[[str, list[dict]], bool]:
    """A rule for :attr:`Trainer.converged`: the epoch mean of ``term`` has not improved on
    its best of the earlier epochs by more than ``min_delta`` (relative) for ``patience`` epochs.

    It reads the training loss only, so that no held-out split decides the budget.
    """
    if patience < 1 or not min_delta >= 0:
        raise ConfigError(f"plateau needs patience >= 1 and min_delta >= 0, got {patience}, {min_delta}")

    def converged(stage: str, history: list[dict]) -> bool:
        values = [h[term] for h in history]
        if len(values) <= patience:
            return False
        best = min(values[:-patience])
        return min(values[-patience:]) > best - min_delta * abs(best)

    return converged


class Trainer:
    """Runs the stages of a model's fit.

    Parameters
    ----------
    config : TrainConfig
    callbacks : mapping of event name to callables, or use :meth:`add_callback`.

    Attributes
    ----------
    converged : None, or ``(stage, history) -> bool`` asked after every epoch with the
        stage's per-epoch means so far; True ends the stage there, keeping its weights
        (e.g. :func:`plateau`). The stage's ``epochs`` is then a ceiling.
    """

    def __init__(self, config: TrainConfig | None = None, callbacks: dict | None = None):
        self.config = config or TrainConfig()
        self.device = distributed.device_for(self.config.device)
        self.callbacks: dict[str, list[Callable[[Progress], None]]] = defaultdict(list)
        for event, fns in (callbacks or {}).items():
            for fn in fns if isinstance(fns, (list, tuple)) else [fns]:
                self.add_callback(event, fn)
        self.stages: list[str] = []
        self.history: dict[str, list[dict]] = defaultdict(list)
        self.converged: Callable[[str, list[dict]], bool] | None = None

    def add_callback(self, event: str, fn: Callable[[Progress], None], first: bool = False) -> None:
        """Call ``fn(progress)`` on ``event``: one of "on_step", "on_epoch", "on_stage"; ``first``:
        before the callbacks added so far (so that one which ends the stage cannot skip it)."""
        if event not in EVENTS:
            raise ConfigError(f"unknown event {event!r}; choose one of {', '.join(EVENTS)}")
        self.callbacks[event].insert(0 if first else len(self.callbacks[event]), fn)

    def remove_callback(self, event: str, fn: Callable[[Progress], None]) -> None:
        """Stop calling ``fn`` on ``event``; a callback that is not there is no error."""
        if fn in self.callbacks.get(event, []):
            self.callbacks[event].remove(fn)

    def plan(self, stages: Sequence[str]) -> None:
        """Declare the stages a fit will run, so that ``fraction`` spans all of them."""
        self.stages = list(stages)

    def _emit(self, event: str, progress: Progress) -> None:
        for fn in self.callbacks[event]:
            fn(progress)

    def _position(self, stage: str) -> tuple[int, int]:
        if stage not in self.stages:
            self.stages.append(stage)
        return self.stages.index(stage), len(self.stages)

    def report(self, stage: str, fraction: float, message: str = "", terms: dict | None = None) -> None:
        """Report progress of a stage without gradient steps (``on_stage`` event); ``terms``: what
        it has measured so far, e.g. one point of SEQ's K sweep."""
        i, n = self._position(stage)
        self._emit("on_stage", Progress(stage, i, n, terms=dict(terms or {}), fraction=(i + fraction) / n,
                                        message=message))

    def run(
        self,
        stage: str,
        parameters: Iterable[nn.Parameter],
        loss_fn: Callable[..., dict[str, torch.Tensor]],
        data: Sequence[torch.Tensor],
        modules: Sequence[nn.Module] = (),
        epochs: int | None = None,
        after_epoch: Callable[[int], None] | None = None,
    ) -> list[dict]:
        """Minimise ``loss_fn(*batch)["loss"]`` over ``parameters`` with Adam.

        Parameters
        ----------
        stage : a name for the reports.
        parameters : what to optimise.
        loss_fn : takes one batch (a slice of each tensor in ``data``, on the
            trainer's device) and returns a dict of scalar terms with a "loss" key.
        data : tensors of equal length N (e.g. images and labels), on any device.
        modules : modules to put in train mode (and back to eval mode after), and
            whose state is restored if the loss stops being finite.
        epochs : overrides ``config.epochs``.
        after_epoch : called with the epoch number after each epoch, before the
            ``on_epoch`` callbacks (e.g. the k-means VAE recomputes its centres).

        Returns
        -------
        Per-epoch means of the loss terms.

        Raises
        ------
        TrainingError
            When a loss is NaN or infinite. The modules are first restored to the
            end of the last finished epoch, so the model in memory stays usable.
        """
        cfg = self.config
        epochs = epochs or cfg.epochs
        set_seed(cfg.seed)
        data = [t.to(self.device) for t in data]
        n = len(data[0])
        if n == 0:
            raise ConfigError(f"stage {stage!r} has no training data")
        params = [p for p in parameters if p.requires_grad]
        optimiser = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        orders = _Orders(n, cfg.batch_size, cfg.seed)
        forward = _ddp(modules, loss_fn, self.device) if distributed.active() else loss_fn
        index, n_stages = self._position(stage)
        history = []
        for m in modules:
            m.train()
        try:
            for epoch in range(1, epochs + 1):
                good = [copy.deepcopy(m.state_dict()) for m in modules]
                sums: dict[str, float] = defaultdict(float)
                batches = orders.epoch(epoch, self.device)
                steps = len(batches)
                for step, idx in enumerate(batches, start=1):
                    terms = forward(*(t[idx] for t in data))
                    loss = terms["loss"]
                    if distributed.any_true(not torch.isfinite(loss)):
                        for m, state in zip(modules, good):
                            m.load_state_dict(state)
                        raise TrainingError(
                            f"the loss became {loss.item()} in stage {stage!r} at epoch {epoch}, "
                            f"step {step}; training stopped and the model was restored to the end "
                            f"of epoch {epoch - 1}. Try a lower learning rate (now {cfg.lr}).")
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    values = {k: float(v.detach()) for k, v in terms.items()}
                    for k, v in values.items():
                        sums[k] += v
                    done = ((epoch - 1) * steps + step) / (epochs * steps)
                    self._emit("on_step", Progress(stage, index, n_stages, epoch, epochs, step, steps,
                                                   values, (index + done) / n_stages))
                if after_epoch is not None:
                    after_epoch(epoch)
                means = distributed.all_reduce_mean({k: v / steps for k, v in sums.items()})
                history.append(means)
                self.history[stage].append(means)
                try:
                    self._emit("on_epoch", Progress(stage, index, n_stages, epoch, epochs, steps, steps,
                                                    means, (index + epoch / epochs) / n_stages))
                except EndStage:
                    break
                if self.converged is not None and self.converged(stage, history):
                    break
        finally:
            for m in modules:
                m.eval()
        return history


class _Orders:
    """The batches of each epoch, from a ``DistributedSampler`` in one process too.

    The sampler shuffles with ``seed + epoch`` and deals the permutation out to the ranks
    in turn, so with each rank taking 1/N of the batch (when N divides it) the N local batches
    of a step are together exactly the batch that one process would take: the same command
    trains the same way on 1 or N processes, up to rounding and per-rank batch-norm statistics.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        from torch.utils.data import DistributedSampler

        world = distributed.world_size()
        # Pads the shards to equal length, so every rank takes the same number of steps.
        self.sampler = DistributedSampler(range(n), num_replicas=world, rank=distributed.rank(), shuffle=True,
                                          seed=seed)
        self.batch_size = math.ceil(batch_size / world)

    def epoch(self, epoch: int, device: torch.device) -> list[torch.Tensor]:
        self.sampler.set_epoch(epoch)
        order = torch.tensor(list(self.sampler), dtype=torch.long)
        return list(order.to(device).split(self.batch_size))


class _Stage(nn.Module):
    """A stage's modules with its loss as ``forward``: what DDP wraps, so that its gradient
    hooks cover every parameter the loss uses."""

    def __init__(self, modules: Sequence[nn.Module], loss_fn: Callable[..., dict[str, torch.Tensor]]):
        super().__init__()
        self.parts = nn.ModuleList(modules)
        self.loss_fn = loss_fn

    def forward(self, *batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss_fn(*batch)


def _ddp(modules: Sequence[nn.Module], loss_fn, device: torch.device):
    """Wrap a stage in DistributedDataParallel; gradients are averaged over the ranks in backward."""
    from torch.nn.parallel import DistributedDataParallel

    if not any(p.requires_grad for m in modules for p in m.parameters()):
        raise ConfigError("distributed training needs the stage's modules: pass the modules being trained")
    # static_graph: DDP learns on the first step which parameters the loss leaves unused (a
    # head, a variance branch the config turns off) and skips them from then on.
    return DistributedDataParallel(_Stage(modules, loss_fn), device_ids=[device] if device.type == "cuda" else None,
                                   static_graph=True)
