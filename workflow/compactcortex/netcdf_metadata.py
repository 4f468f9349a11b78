"""CF-style metadata for NetCDF outputs: a long_name (and UDUNITS units where a unit exists) on every variable,
and the global Conventions, title and history.

The text must be deterministic (no dates, hosts or absolute paths): outputs are compared byte for byte.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

CONVENTIONS = "CF-1.10"


@dataclass(frozen=True)
class VariableMetadata:
    """long_name; units as UDUNITS text ("count", "1" for dimensionless), None for ids, labels and indices;
    extra CF attributes (comment, flag_values, ...)."""

    long_name: str
    units: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def attrs(self) -> dict[str, Any]:
        units = {} if self.units is None else {"units": self.units}
        return {"long_name": self.long_name, **units, **self.extra}


def with_cf_metadata(
    dataset: xr.Dataset, variables: Mapping[str, VariableMetadata], *, title: str, history: str
) -> xr.Dataset:
    """Set each variable's and coordinate's attributes and the global ones, in place; returns `dataset`.

    Every variable of the dataset must be described (a new variable without metadata is a ValueError);
    descriptions of variables the dataset lacks (optional ones) are ignored.
    """
    undescribed = sorted(str(name) for name in dataset.variables if name not in variables)
    if undescribed:
        raise ValueError(f"no NetCDF metadata for: {', '.join(undescribed)}")
    for name, metadata in variables.items():
        if name in dataset.variables:
            dataset.variables[name].attrs.update(metadata.attrs())  # index coordinates too
    dataset.attrs.update({"Conventions": CONVENTIONS, "title": title, "history": history})
    return dataset
