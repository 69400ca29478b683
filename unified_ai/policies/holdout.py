"""Which holdout the promotion gates judge on: the static one, or the recent production rows."""

from unified_ai.projects.schema import ChampionRule

STATIC = "static"
RECENT = "recent"


def choose_holdout(
    rule: ChampionRule,
    recent_rows: int,
    recent_classes: int = 2,
    *,
    recent_problem: str | None = None,
) -> tuple[str, str]:
    """(`static` or `recent`, why) under the policy's `beats_champion.holdout`.

    `auto` takes the recent holdout when it has at least `min_recent_rows` rows; `recent`
    takes it whenever its rows can compare models at all (a gate judged on rows that cannot
    would decide nothing).

    Args:
        rule: The policy's champion rule.
        recent_rows: How many labeled production rows were held out.
        recent_classes: How many classes those rows have (binary projects).
        recent_problem: Why the recent rows cannot compare models, for the project's task
            (`unified_ai.ml.holdout_report.holdout_problem`), or None when they can; given,
            it replaces the binary class count.
    """
    if rule.holdout == STATIC:
        return STATIC, "policy: beats_champion.holdout is static"
    if recent_rows == 0:
        return STATIC, "no recent holdout: no labeled production rows were held out"
    if recent_problem is not None:
        return STATIC, (
            f"the recent holdout's {recent_rows} rows {recent_problem}: no metric compares "
            "models on it"
        )
    if recent_classes < 2:
        return STATIC, (
            f"the recent holdout's {recent_rows} rows have one class only: no metric compares "
            "models on it"
        )
    if rule.holdout == RECENT:
        return RECENT, f"policy: beats_champion.holdout is recent ({recent_rows} rows)"
    if recent_rows >= rule.min_recent_rows:
        return RECENT, (
            f"the recent holdout has {recent_rows} rows (policy: at least "
            f"{rule.min_recent_rows} for auto)"
        )
    return STATIC, (
        f"the recent holdout has only {recent_rows} rows (policy: at least "
        f"{rule.min_recent_rows} for auto)"
    )
