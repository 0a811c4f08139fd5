"""Executors: what runs the trials of a run. In process (the default: ``executor=None`` in
:func:`metaplastic.lab.run_experiment`), or spread over a Ray cluster by :class:`RayExecutor`.

Ray (the optional extra ``metaplastic[ray]``) gets one task per trial batch (``--trial-batch``:
the trials a worker stacks into one model). Each task builds the lab
on its worker from the driver's :class:`~metaplastic.lab.LabSpec` (once per worker process),
checks that its MNIST and backbone have the driver's fingerprints, reads the features from the
shared cache or extracts them, trains the trials and writes their files into the run folder itself
(:mod:`metaplastic.results`: atomic, one file per trial, locks against double work). The driver
only submits tasks and shows trials done of trials asked, counted from the run folder. With no
``address``, ``ray.init`` starts a local cluster, so the same command runs on a laptop and on a
cluster (docs/cluster.md).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import warnings

from metaplastic.lab import Job, Lab, LabSpec, work
from metaplastic.results import RunStore

EXECUTORS = ("local", "ray")

#: Seconds to wait for a Ray cluster at ``--address`` to accept a connection; ``ray.init`` itself
#: retries an address that does not answer for minutes.
CONNECT_TIMEOUT_S = 10.0


class ExecutorError(RuntimeError):
    """The executor cannot run the trials (Ray missing, cluster unreachable, a worker lost)."""


def make_executor(name: str, *, address: str | None = None, workers: int | None = None,
                  gpus_per_task: float | None = None):
    """The executor named on the command line, its options checked; None for ``local``."""
    if name not in EXECUTORS:
        raise ValueError(f"--executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    if name == "local":
        for option, value in (("--address", address), ("--workers", workers),
                              ("--gpus-per-task", gpus_per_task)):
            if value is not None:
                raise ValueError(f"{option} applies to --executor ray only (got {option} {value})")
        return None
    return RayExecutor(address=address, workers=workers, gpus_per_task=gpus_per_task)


class RayExecutor:
    """Trials as Ray tasks. ``address``: a running cluster ("auto", "HOST:6379" or
    "ray://HOST:10001"); None starts a local cluster of ``workers`` CPUs (default: all).
    ``gpus_per_task``: the GPU share of each task when the run's device is CUDA (default 1;
    0.25 puts four trials on one GPU)."""

    def __init__(self, address: str | None = None, workers: int | None = None,
                 gpus_per_task: float | None = None):
        if address is not None and not address.strip():
            raise ValueError("--address must name a Ray cluster (auto, HOST:PORT or ray://HOST:PORT), "
                             "got an empty string")
        if workers is not None:
            if address is not None:
                raise ValueError("--workers sizes a local Ray cluster; a cluster at --address has its own")
            if not 1 <= workers <= 4096:
                raise ValueError(f"--workers must be between 1 and 4096, got {workers}")
        if gpus_per_task is not None and not (0 < gpus_per_task <= 1 and math.isfinite(gpus_per_task)):
            raise ValueError(f"--gpus-per-task must be in (0, 1] (a share of one GPU), got {gpus_per_task}")
        self.address, self.workers, self.gpus_per_task = address, workers, gpus_per_task

    def run(self, job: Job, lab: Lab, bar=None) -> list[int]:
        """Train the job's unfinished trials on the cluster; returns those trained there."""
        ray = _import_ray()
        spec = getattr(lab, "spec", None)
        if spec is None:
            raise ExecutorError("this lab cannot be rebuilt on a Ray worker (it has no spec)")
        device = job.config.device
        if device.startswith("cuda:"):
            raise ExecutorError(f"--device {device}: with --executor ray, give --device cuda; Ray "
                                "gives each task its own GPU")
        store = RunStore(job.out, job.config, job.provenance, create=False)
        todo = [t for t in job.trials if t not in store.finished_trials()]
        if not todo:
            return []
        started_here = not ray.is_initialized()
        if started_here:
            self._init(ray)
        try:
            gpus = (self.gpus_per_task or 1.0) if device.startswith("cuda") else 0
            task = ray.remote(_train_on_worker).options(num_cpus=1, num_gpus=gpus, max_retries=2)
            size = job.trial_batch   # one task per trial batch, stacked on its worker
            pending = [task.remote(job, spec, todo[i:i + size]) for i in range(0, len(todo), size)]
            shown = bar.add_task(f"{job.config.experiment} trials (ray)", total=len(job.trials)) \
                if bar is not None else None
            trained, seen = [], set()
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=1.0)
                for ref in done:
                    got, messages = _result(ray, ref)
                    trained += got
                    for message in messages:
                        if message not in seen:   # one line per distinct warning of the workers
                            seen.add(message)
                            warnings.warn(message, RuntimeWarning, stacklevel=2)
                if bar is not None:
                    bar.update(shown, completed=len(store.finished_trials() & set(job.trials)))
            return trained
        finally:
            if started_here:
                ray.shutdown()

    def _init(self, ray) -> None:
        if self.address is not None:
            _check_answers(self.address)
        try:
            ray.init(address=self.address,
                     num_cpus=self.workers if self.address is None else None,
                     include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                     configure_logging=True)
        except Exception as error:   # unreachable address, malformed address, no local resources
            where = f"at {self.address}" if self.address else "(local)"
            text = str(error).strip().splitlines()
            raise ExecutorError(f"cannot start or reach the Ray cluster {where}: "
                                f"{type(error).__name__}: {text[0][:200] if text else ''}") from None


def _check_answers(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within ``timeout`` seconds, in one line, if nothing accepts a connection at ``address``
    (``auto``: the cluster Ray finds on this machine; ``HOST:PORT``; ``ray://HOST:PORT``)."""
    target = address
    if address == "auto":
        target = _local_cluster_address()
        if target is None:
            return   # Ray's own lookup is not available: let ray.init answer
    host, _, port = target.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ExecutorError(f"--address {address!r} is not auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        reason = "timed out" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        raise ExecutorError(f"the Ray cluster at {address} does not answer ({target}: {reason} "
                            f"within {timeout:g} s); start it (ray start --head) or give another "
                            "--address") from None


def _local_cluster_address() -> str | None:
    """The address ``--address auto`` means here (Ray's lookup: RAY_ADDRESS, then the cluster
    started last on this machine), or None if this Ray version does not expose it."""
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:
        return None
    try:
        return canonicalize_bootstrap_address("auto")
    except ConnectionError:
        raise ExecutorError("--address auto: no running Ray cluster found on this machine; start one "
                            "(ray start --head), give HOST:PORT, or leave out --address") from None


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray: pip install 'metaplastic[lab,ray]'") from None
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    return ray


def _result(ray, ref):
    """A task's result; errors of the lab come back as themselves, other failures as one line."""
    from ray.exceptions import RayError, RayTaskError

    try:
        return ray.get(ref)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, Exception) and type(cause).__module__.startswith("metaplastic"):
            raise cause from None
        raise ExecutorError(f"a Ray task failed: {type(cause or error).__name__}: "
                            f"{str(cause or error).strip().splitlines()[-1][:200]}") from None
    except RayError as error:   # a worker or node died and the retries ran out
        raise ExecutorError(f"a Ray worker was lost ({type(error).__name__}); run the same command "
                            "again to resume: finished trials are saved") from None


def _train_on_worker(job: Job, spec: LabSpec, trials: list[int]) -> tuple[list[int], list[str]]:
    """One Ray task: build (or reuse) this worker's lab, train ``trials``, write their files."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore")   # the lab's own warnings (fallbacks) the driver has shown
        lab = spec.build()
        warnings.simplefilter("always")
        trained = work(job, lab, trials=trials, wait=False)
    return trained, [str(w.message) for w in caught]
