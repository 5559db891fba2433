"""AS-SMoE's local fits: one small SMoE fitted per segment window, in chunks,
here, in worker processes or on a Dask cluster (Li et al., arXiv 2409.10101;
the readings of the public code in ``docs/paper-readings.md``).

:func:`smoe_gui.core.methods.segment.segment_init.as_smoe_kernels` cuts the
windows and exports the fitted kernels into one model; this module holds the
local trainer (:func:`fit_local_chunk`) and the executor (:class:`LocalFitRunner`).
"""

from __future__ import annotations

import math
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ... import parallel
from ...work import Cancelled

__all__ = [
    "AS_CHUNK",
    "AS_MARGIN",
    "AS_PATCH",
    "CONFLICT_REACH",
    "CONTEXT_REACH",
    "PIECE_KERNELS",
    "LocalFitConfig",
    "LocalFitRunner",
    "LocalTask",
    "default_workers",
    "fit_local_chunk",
    "warm_torch",
]

F64 = NDArray[np.float64]

#: Margin (px) added to a piece's bounding box before cropping (public code: 10).
AS_MARGIN = 10
#: Side of the square patch each window is resized to for its local fit (public code: 32).
AS_PATCH = 32


@dataclass(frozen=True)
class LocalFitConfig:
    """Settings of the per-segment fits (from :class:`~smoe_gui.core.params.Params`)."""

    target_db: float = 30.0
    initial_kernels: int = 4
    doublings: int = 2
    steps: int = 60
    seed: int = 0


#: Hard-concrete L0 gate constants (Louizos et al. 2018; the public code's defaults).
L0_BETA, L0_GAMMA, L0_ZETA = 0.5, -0.1, 1.1
#: Gate logit whose hard-concrete gate is exactly 1 (``sigmoid(p)·(ζ-γ)+γ = 1``).
L0_OPEN = math.log((1.0 - L0_GAMMA) / (L0_ZETA - 1.0))
#: Weight of the L0 penalty per kernel, on once the window MSE is below
#: :data:`L0_START_MSE` (public code: ``0.01/K_init`` once ``1000·MSE < 4``).
L0_WEIGHT, L0_START_MSE = 0.01, 0.004
#: Adam learning rates of the local fits, per step: centres (patch px), steering
#: entries (1/patch px), experts (gray levels), gate logits.
LR_MU, LR_A, LR_M, LR_P = 0.05, 0.02, 0.01, 0.1
#: Largest kernel standard deviation in a local fit, as a share of the patch side.
MAX_WIDTH_SHARE = 0.25
#: Weight of the width penalty (:func:`_width_excess`).
WIDTH_WEIGHT = 10.0
#: Most kernels in one local fit: a segment allocated more is fitted in pieces of
#: consecutive bisection parts (spatially compact), so that a patch keeps enough
#: pixels per kernel.
PIECE_KERNELS = 8
#: Kernels of other pieces whose centres lie within this many px of a window's
#: loss pixels take part in its fit (fixed): the context.
CONTEXT_REACH = 6.0
#: Pieces this close (px) are fitted in different rounds: their loss pixels or
#: context could meet.
CONFLICT_REACH = max(2.0 * AS_MARGIN, AS_MARGIN + CONTEXT_REACH)
#: Local fits per task (fixed, so results do not depend on the worker count).
AS_CHUNK = 4


@dataclass(frozen=True)
class LocalTask:
    """One local fit: a piece of a segment cut out with a margin and resized.

    Patch coordinates: patch pixel ``(c, r)`` (column, row) has its centre at
    image ``x0 + scale·(c, r)``.  Kernels are ``mu`` (k, 2) patch px, ``a``
    (k, 3) the ``a11, a21, a22`` of the lower-triangular steering matrix
    (1/patch px), ``m`` (k,) experts and ``la`` (k,) log weights; the ``ctx_*``
    kernels are the fixed context.
    """

    pixels: NDArray[np.float32]   # (P, P) the window, resized
    weight: NDArray[np.float32]   # (P, P) 1 inside the image, 0 where the window leaves it
    inside: NDArray[np.bool_]     # (P, P) pixels of the piece
    x0: tuple[float, float]
    scale: float
    mu: F64
    a: F64
    m: F64
    la: F64
    ctx_mu: F64
    ctx_a: F64
    ctx_m: F64
    ctx_la: F64
    grow: bool


def _lower3(A: F64) -> F64:
    """(k, 3) ``a11, a21, a22`` of lower-triangular (k, 2, 2) steering matrices."""
    return np.stack([A[:, 0, 0], A[:, 1, 0], A[:, 1, 1]], axis=1)


def _from3(a: F64) -> F64:
    """(k, 2, 2) lower-triangular steering matrices from (k, 3)."""
    out = np.zeros((a.shape[0], 2, 2))
    out[:, 0, 0] = a[:, 0]
    out[:, 1, 0] = a[:, 1]
    out[:, 1, 1] = a[:, 2]
    return out


def _l0_gate(torch: Any, p: Any) -> Any:
    return torch.clamp(torch.sigmoid(p) * (L0_ZETA - L0_GAMMA) + L0_GAMMA, 0.0, 1.0)


def _gate_logit(gate: F64) -> F64:
    """The hard-concrete logit ``p`` of a gate in (0, 1] (1 gives :data:`L0_OPEN`)."""
    s = np.clip((np.asarray(gate) - L0_GAMMA) / (L0_ZETA - L0_GAMMA), 1e-6, 1.0 - 1e-6)
    return np.minimum(np.log(s / (1.0 - s)), L0_OPEN)


def _width_excess(a: Any, act: Any, side: int) -> Any:
    """Σ over kernels of ``relu(λ0 - λ_min(A Aᵀ))/λ0``, ``λ0 = 1/(2·σ_max²)``,
    ``σ_max = side·MAX_WIDTH_SHARE``: how far kernels are wider than a local fit
    can vouch for (a kernel wider than its patch would win the gate far outside
    the window it was fitted in)."""
    q11 = a[..., 0] ** 2
    q12 = a[..., 0] * a[..., 1]
    q22 = a[..., 1] ** 2 + a[..., 2] ** 2
    half_tr = 0.5 * (q11 + q22)
    disc = (0.25 * (q11 - q22) ** 2 + q12**2 + 1e-12).sqrt()
    lam_min = half_tr - disc
    lam0 = 1.0 / (2.0 * (side * MAX_WIDTH_SHARE) ** 2)
    return ((lam0 - lam_min).clamp_min(0.0) / lam0 * act).sum(1)


def fit_local_chunk(
    tasks: Sequence[LocalTask],
    config: LocalFitConfig,
    cancel: Callable[[], bool] | None = None,
) -> list[dict[str, Any]]:
    """Fit the local SMoEs of a chunk of windows (batched; torch, this thread).

    Each window's model is its piece's own kernels (trained: centres,
    steering, experts, L0 gate logits) and its fixed context kernels, under
    one softmax gate.  Loss: ``1000·MSE`` over the window's in-image pixels,
    plus ``L0_WEIGHT/k`` times the expected L0 norm of the gates once the MSE
    is below :data:`L0_START_MSE` (public code), plus a width penalty.
    ``config.steps`` Adam steps per round; a growing window (``grow``) whose
    PSNR over its piece's pixels is below ``config.target_db`` clones its
    kernels after a round (the public code's doubling), ``config.doublings``
    times at most.  A fit is kept only if it lowers the window's MSE (else the
    start kernels are returned): pieces fitted at the same time never share
    pixels or context, so the global MSE falls with every kept fit.

    ``cancel`` is polled before every Adam step (a few ms each); once it
    returns True the fit raises :class:`~smoe_gui.core.work.Cancelled`.

    Returns
    -------
    list of dict
        Per task: ``mu`` (k, 2), ``a`` (k, 3), ``m`` (k,), ``la`` (k,) in
        patch coordinates (kernels whose gate closed are dropped), ``err``
        (k,): gate-weighted squared residual over the piece's pixels (patch
        px), ``kept`` (bool) and ``mse`` (before, after).
    """
    import torch

    torch.manual_seed(config.seed)
    n = len(tasks)
    side = tasks[0].pixels.shape[0]
    grow_rounds = config.doublings if any(t.grow for t in tasks) else 0
    kmax = max(t.mu.shape[0] * (2 ** grow_rounds if t.grow else 1) for t in tasks)
    cmax = max(1, max(t.ctx_mu.shape[0] for t in tasks))
    grid = torch.stack(
        torch.meshgrid(
            torch.arange(side, dtype=torch.float32),
            torch.arange(side, dtype=torch.float32),
            indexing="xy",
        ),
        dim=-1,
    ).reshape(1, 1, side * side, 2)
    target = torch.from_numpy(np.stack([t.pixels.reshape(-1) for t in tasks]).astype(np.float32))
    wpix = torch.from_numpy(np.stack([t.weight.reshape(-1) for t in tasks]).astype(np.float32))
    wpix = wpix / wpix.sum(1, keepdim=True).clamp_min(1.0)
    inside = torch.from_numpy(np.stack([t.inside.reshape(-1) for t in tasks]))
    mu = torch.zeros(n, kmax, 2)
    a = torch.zeros(n, kmax, 3)
    a[..., 0] = a[..., 2] = 1.0
    m = torch.zeros(n, kmax)
    gp = torch.zeros(n, kmax)
    act = torch.zeros(n, kmax, dtype=torch.bool)
    c_mu = torch.zeros(n, cmax, 2)
    c_a = torch.ones(n, cmax, 3)
    c_m = torch.zeros(n, cmax)
    c_la = torch.zeros(n, cmax)
    c_act = torch.zeros(n, cmax, dtype=torch.bool)
    for i, t in enumerate(tasks):
        k, c = t.mu.shape[0], t.ctx_mu.shape[0]
        mu[i, :k] = torch.from_numpy(t.mu).float()
        a[i, :k] = torch.from_numpy(t.a).float()
        m[i, :k] = torch.from_numpy(t.m).float()
        gp[i, :k] = torch.from_numpy(_gate_logit(np.exp(t.la))).float()
        act[i, :k] = True
        c_mu[i, :c] = torch.from_numpy(t.ctx_mu).float()
        c_a[i, :c] = torch.from_numpy(t.ctx_a).float()
        c_m[i, :c] = torch.from_numpy(t.ctx_m).float()
        c_la[i, :c] = torch.from_numpy(t.ctx_la).float()
        c_act[i, :c] = True
    grow = torch.tensor([t.grow for t in tasks])
    all_act = torch.cat([act, c_act], dim=1)

    def forward(mu_: Any, a_: Any, m_: Any, gp_: Any, act_: Any) -> tuple[Any, Any]:
        """Reconstructions (n, P²) and the own kernels' gate weights (n, kmax, P²)."""
        mu_all = torch.cat([mu_, c_mu], dim=1)
        a_all = torch.cat([a_, c_a], dim=1)
        d = grid - mu_all.unsqueeze(2)  # (n, K, P², 2)
        u0 = a_all[..., 0:1] * d[..., 0] + a_all[..., 1:2] * d[..., 1]  # (Aᵀd)_0
        u1 = a_all[..., 2:3] * d[..., 1]  # (Aᵀd)_1
        la_all = torch.cat([torch.log(_l0_gate(torch, gp_).clamp_min(1e-12)), c_la], dim=1)
        logit = -(u0 * u0 + u1 * u1) + la_all.unsqueeze(2)
        logit = logit.masked_fill(~torch.cat([act_, c_act], dim=1).unsqueeze(2), -1e30)
        w = torch.softmax(logit, dim=1)
        recon = (w * torch.cat([m_, c_m], dim=1).unsqueeze(2)).sum(1)
        return recon, w[:, :kmax]

    with torch.no_grad():
        recon0, w0 = forward(mu, a, m, gp, act)
        mse0 = (wpix * (recon0 - target) ** 2).sum(1)
        start = (mu.clone(), a.clone(), m.clone(), gp.clone(), act.clone())
    del all_act
    l0_shift = L0_BETA * math.log(-L0_GAMMA / L0_ZETA)
    for rnd in range(grow_rounds + 1):
        params = [t.clone().requires_grad_() for t in (mu, a, m, gp)]
        opt = torch.optim.Adam(
            [
                {"params": [params[0]], "lr": LR_MU},
                {"params": [params[1]], "lr": LR_A},
                {"params": [params[2]], "lr": LR_M},
                {"params": [params[3]], "lr": LR_P},
            ]
        )
        count = act.sum(1).clamp_min(1).float()
        for _ in range(config.steps):
            if cancel is not None and cancel():
                raise Cancelled("the local fits were cancelled")
            opt.zero_grad()
            recon, _ = forward(params[0], params[1], params[2], params[3], act)
            mse = (wpix * (recon - target) ** 2).sum(1)
            l0 = (torch.sigmoid(params[3] - l0_shift) * act).sum(1)
            on = (mse.detach() < L0_START_MSE).float() * (L0_WEIGHT / count)
            loss = (
                1000.0 * mse + on * l0 + WIDTH_WEIGHT * _width_excess(params[1], act, side)
            ).sum()
            loss.backward()
            opt.step()
        with torch.no_grad():
            mu, a, m, gp = (t.detach() for t in params)
            act = act & (_l0_gate(torch, gp) > 0)
            if rnd == grow_rounds:
                break
            recon, _ = forward(mu, a, m, gp, act)
            own_mse = ((recon - target) ** 2 * inside).sum(1) / inside.sum(1).clamp_min(1)
            psnr = -10.0 * torch.log10(own_mse.clamp_min(1e-12))
            for i in torch.nonzero(grow & (psnr < config.target_db)).flatten().tolist():
                # clone every kernel: the copies a quarter patch px either side of the old
                # centre along the first column of its steering matrix
                idx = torch.nonzero(act[i]).flatten()
                k = idx.numel()
                free = torch.nonzero(~act[i]).flatten()[:k]
                if free.numel() < k:
                    continue
                col = torch.stack([a[i, idx, 0], a[i, idx, 1]], dim=1)
                col = col / col.norm(dim=1, keepdim=True).clamp_min(1e-12)
                mu[i, free] = mu[i, idx] + 0.25 * col
                mu[i, idx] = mu[i, idx] - 0.25 * col
                a[i, free] = a[i, idx]
                m[i, free] = m[i, idx]
                gp[i, free] = gp[i, idx]
                act[i, free] = True
    with torch.no_grad():
        recon1, w1 = forward(mu, a, m, gp, act)
        mse1 = (wpix * (recon1 - target) ** 2).sum(1)
    out: list[dict[str, Any]] = []
    for i in range(n):
        kept = bool(mse1[i] < mse0[i])
        if kept:
            mu_i, a_i, m_i, gp_i, act_i, rec, w = mu[i], a[i], m[i], gp[i], act[i], recon1[i], w1[i]
        else:
            mu_i, a_i, m_i, gp_i, act_i = (t[i] for t in start)
            rec, w = recon0[i], w0[i]
        sel = act_i.clone()
        if not bool(sel.any()):
            sel[0] = True
        ins = inside[i]
        resid = ((rec - target[i]) ** 2 * ins).double()
        err = (w[sel].double() * resid).sum(1)
        gate = _l0_gate(torch, gp_i[sel]).double().clamp_min(1e-12)
        out.append(
            {
                "mu": mu_i[sel].double().numpy(),
                "a": a_i[sel].double().numpy(),
                "m": m_i[sel].double().numpy(),
                "la": torch.log(gate).numpy(),
                "err": err.numpy(),
                "kept": kept,
                "mse": (float(mse0[i]), float(mse1[i])),
            }
        )
    return out


_WARM = False


def warm_torch() -> None:
    """Make torch's first Adam once per process, before the fits: it imports for a
    second or more (several under load) holding the GIL, during which neither a
    cancel nor Ctrl-C is seen; the fits' progress then starts without that pause."""
    global _WARM
    if _WARM:
        return
    import torch

    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    _WARM = True


def _fit_chunk_task(args: tuple[Sequence[LocalTask], LocalFitConfig]) -> list[dict[str, Any]]:
    """Pool / cluster task: one chunk, torch on one thread (the processes that run
    these tasks keep torch on one thread; the result does not depend on where it
    runs)."""
    import torch

    from ...threads import set_threads

    if torch.get_num_threads() != 1:
        set_threads(1)
    return fit_local_chunk(args[0], args[1])


def default_workers() -> int:
    """Worker processes for the local fits: ``SMOE_AS_WORKERS`` if set to a
    positive integer, else 1 (threads in this process)."""
    value = os.environ.get("SMOE_AS_WORKERS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else 1


class LocalFitRunner:
    """Where the local fits' chunks run: the seam between AS-SMoE and a cluster.

    * Inside a Dask task (the experiments' ``--dask-scheduler`` path): each
      round's chunks are submitted to the task's cluster through
      ``distributed.worker_client()`` (the calling task secedes from its
      worker's thread pool while it waits, so a one-thread worker cannot
      deadlock).
    * Else ``workers > 1``: a process pool (spawn) of that many processes.
    * Else a thread pool in this process, one thread per core, torch on one
      thread each (torch releases the GIL inside its operations).

    Every chunk runs :func:`_fit_chunk_task` (torch on one thread, seeded), so
    the results are the same wherever they run.  Use as a context manager;
    ``map(chunks, config)`` returns the chunks' results in order.
    """

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.kind = "threads"
        self._pool: Any = None
        self._client_cm: Any = None
        self._client: Any = None
        self._prefix = f"smoe-as-fit-{uuid.uuid4().hex}"
        self._round = 0

    def __enter__(self) -> LocalFitRunner:
        if parallel.dask_worker() is not None:
            from distributed import worker_client

            self._client_cm = worker_client()
            self._client = self._client_cm.__enter__()
            self.kind = "dask"
        elif self.workers > 1:
            self._pool = parallel.spawn_pool(self.workers)
            self.kind = "processes"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._client_cm is not None:
            self._client_cm.__exit__(*exc)
        if self._pool is not None:
            # after a cancel or an error, do not wait for the chunks still running
            failed = exc[0] is not None
            self._pool.shutdown(wait=not failed, cancel_futures=failed)

    def map(
        self,
        chunks: Sequence[Sequence[LocalTask]],
        config: LocalFitConfig,
        on_done: Callable[[int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """Fit ``chunks``; their results in order.

        Parameters
        ----------
        chunks : sequence of sequences of LocalTask
        config : LocalFitConfig
        on_done : callable ``(n_fits) -> None``, optional
            Called in the calling thread as each chunk ends, with its number of fits.
        cancel : callable ``() -> bool``, optional
            Polled every 0.1 s while waiting (and before every step of a chunk
            fitted in this process); once True, the chunks not started are
            dropped, the running ones in this process stop within a step, and
            :class:`~smoe_gui.core.work.Cancelled` is raised (a chunk running in
            a worker process or on a cluster finishes there, unseen).
        """
        items = [(list(c), config) for c in chunks]
        if not items:
            return []

        def done(index: int) -> None:
            if on_done is not None:
                on_done(len(items[index][0]))

        def poll() -> None:
            if cancel is not None and cancel():
                raise Cancelled("the local fits were cancelled")

        if self._client is not None:
            self._round += 1
            return parallel.dask_map(
                self._client, _fit_chunk_task, items, f"{self._prefix}-{self._round - 1}",
                done, poll,
            )
        if self._pool is not None:
            return parallel.pool_map(self._pool, _fit_chunk_task, items, done, poll)
        import torch

        from ...threads import default_threads, set_threads

        threads = max(1, min(default_threads(), len(items)))
        previous = torch.get_num_threads()
        set_threads(1)  # once, here: the chunks' threads share torch's setting
        abort = threading.Event()

        def stop() -> bool:
            return abort.is_set() or (cancel is not None and bool(cancel()))

        try:
            return parallel.thread_map(
                lambda it: fit_local_chunk(it[0], it[1], stop), items, threads, done, poll, abort
            )
        finally:
            set_threads(previous)
