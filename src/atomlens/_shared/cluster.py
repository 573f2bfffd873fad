"""A Dask client from a scheduler address, for the packages that fan work out to a cluster."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["as_client", "dask_client"]


def as_client(
    cluster: Any, /, *, name: str = "cluster", purpose: str | None = None
) -> tuple[Any, bool]:
    """Return a ``dask.distributed.Client`` for ``cluster`` and whether it was made here.

    Parameters
    ----------
    cluster : dask.distributed.Client or str
        A client (returned as it is) or a scheduler address such as ``"tcp://host:8786"``
        (connected to here).
    name : str
        How the caller's user wrote the argument, for the error messages.
    purpose : str, optional
        What needs the cluster, for the message when dask.distributed is missing
        (default: ``name``).

    Returns
    -------
    client : dask.distributed.Client
    owned : bool
        True when the client was made here from an address: the caller closes it.

    Raises
    ------
    ImportError
        dask.distributed is not installed; the message gives the ``pip install``.
    TypeError
        ``cluster`` is neither a client nor an address.
    """
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            f"{purpose or name} needs dask.distributed: pip install 'atomlens[distributed]'"
        ) from exc
    if isinstance(cluster, Client):
        return cluster, False
    if isinstance(cluster, str):
        return Client(cluster), True
    raise TypeError(
        f"{name} must be a dask.distributed Client or a scheduler address, got {cluster!r}."
    )


@contextmanager
def dask_client(
    cluster: Any | None, /, *, name: str = "cluster", purpose: str | None = None
) -> Iterator[Any | None]:
    """:func:`as_client` for a ``with`` block: yields None for None, and closes a client it
    made from an address when the block ends.

    Parameters
    ----------
    cluster : dask.distributed.Client, str or None
        A client, a scheduler address, or None (no cluster: work in-process).
    name, purpose : str
        As for :func:`as_client`.

    Yields
    ------
    dask.distributed.Client or None
    """
    if cluster is None:
        yield None
        return
    client, owned = as_client(cluster, name=name, purpose=purpose)
    try:
        yield client
    finally:
        if owned:
            client.close()
