"""The versioned zoo store: Zarr v3 through xarray.

- :class:`ZarrZooWriter` writes a zoo (the trainer's ``ZooWriter``);
- :func:`open_zoo` reads one from a directory, published zips or a URL;
- :func:`verify_zoo`, :func:`zoo_summary`, :func:`publish_zoo`, :func:`download_zoo`
  back the ``rnnzoo-train verify / info / publish / download`` commands.

The layout is specified in ``docs/zoo-format.md`` (and :mod:`rnnzoo_train.zoo.layout`).
"""

from .errors import (
    ZooArchitectureError,
    ZooDownloadError,
    ZooError,
    ZooIntegrityError,
    ZooKeyError,
    ZooLocationError,
    ZooPlanError,
    ZooSchemaError,
)
from .layout import SCHEMA_VERSION
from .reader import Network, Zoo, open_zoo
from .writer import ZarrZooWriter

__all__ = [
    "SCHEMA_VERSION",
    "Network",
    "ZarrZooWriter",
    "Zoo",
    "ZooArchitectureError",
    "ZooDownloadError",
    "ZooError",
    "ZooIntegrityError",
    "ZooKeyError",
    "ZooLocationError",
    "ZooPlanError",
    "ZooSchemaError",
    "open_zoo",
]
