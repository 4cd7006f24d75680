"""Ray, for the roles that run their work on a cluster (``verifier/ray_backend.py``: scoring jobs;
``miner/ray_backend.py``: synthesis shards): connecting, and what one job asks for.

``ray`` is an optional extra (``pip install 'codream-network[ray]'``) and is imported here, inside
:func:`connect`, only when a backend is made: without ``--ray-address`` nothing imports it.
"""
from __future__ import annotations

RAY_MISSING = "--ray-address needs Ray: pip install 'codream-network[ray]' (ray==2.60.0)"


def connect(address: str = "auto", init_kwargs: dict | None = None):
    """The ``ray`` module, connected to ``address``: a cluster (``ray://host:10001``,
    ``host:6379``), ``auto`` (the cluster this machine belongs to) or ``local`` (start one in this
    process: tests, a single big machine). If Ray is already initialised in this process it is used
    as it is. ``RuntimeError`` when Ray is not installed."""
    try:
        import ray  # lazily: the only import of ray outside the benches
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, include_dashboard=False, **(init_kwargs or {}))
    return ray


def slots(ray, resources: dict) -> int:
    """How many jobs asking for ``resources`` (:func:`job_resources`) the cluster can run at once:
    its GPUs, or its CPUs over one job's share."""
    total = ray.cluster_resources()
    if resources["num_gpus"]:
        return int(total.get("GPU", 0))
    return int(total.get("CPU", 0) // resources["num_cpus"])


def job_resources(threads: int | None, device: str) -> dict:
    """What one job asks the cluster for: ``threads`` CPUs (at least 1), and one GPU on cuda."""
    return {"num_cpus": threads or 1, "num_gpus": 1 if str(device).startswith("cuda") else 0}
