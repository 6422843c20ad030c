"""The function catalogue: every SiteWise function by lower-cased name (names are case-insensitive)."""

from __future__ import annotations

from . import common, compare, dates, strings
from .spec import Family, Spec

_OTHERS: list[Spec] = [
    Spec("if", Family.CONDITIONAL, 2, 3),
    Spec("elif", Family.CONDITIONAL, 2, 3),  # only through UFCS; the parser folds it into if()
    Spec("pretrigger", Family.PRETRIGGER, 1, 1),
    Spec("first", Family.TEMPORAL, 1, 1),
    Spec("last", Family.TEMPORAL, 1, 1),
    Spec("earliest", Family.TEMPORAL, 1, 1),
    Spec("latest", Family.TEMPORAL, 1, 1),
    Spec("statetime", Family.TEMPORAL, 1, 1),
    Spec("timeweightedavg", Family.TEMPORAL, 1, 2),  # (x, 'locf' | 'linear')
    Spec("timeweightedstdev", Family.TEMPORAL, 1, 2),  # (x, 'f' | 'p')
    Spec("avg", Family.AGGREGATION, 1, None),
    Spec("sum", Family.AGGREGATION, 1, None),
    Spec("min", Family.AGGREGATION, 1, None),
    Spec("max", Family.AGGREGATION, 1, None),
    Spec("count", Family.AGGREGATION, 1, None),
    Spec("stdev", Family.AGGREGATION, 1, None),
]

FUNCTIONS: dict[str, Spec] = {s.name: s for s in [*common.SPECS, *compare.SPECS, *strings.SPECS, *dates.SPECS,
                                                  *_OTHERS]}
DATE_READERS = dates.READERS

__all__ = ["DATE_READERS", "FUNCTIONS", "Family", "Spec"]
