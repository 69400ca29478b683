"""Which holdout the promotion gates judge on: the static one, or the recent production rows."""

from unified_ai.projects.schema import ChampionRule

STATIC = "static"
RECENT = "recent"


def choose_holdout(
    rule: ChampionRule, recent_rows: int, recent_classes: int = 2
) -> tuple[str, str]:
    """(`static` or `recent`, why) under the policy's `beats_champion.holdout`.

    `auto` takes the recent holdout when it has at least `min_recent_rows` rows; `recent`
    takes it whenever it has rows of both classes (a gate judged on fewer would decide
    nothing).
    """
    if rule.holdout == STATIC:
        return STATIC, "policy: beats_champion.holdout is static"
    if recent_rows == 0:
        return STATIC, "no recent holdout: no labeled production rows were held out"
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
