"""Who is deciding: a user name from an authenticating proxy, when there is one."""

import dagster as dg


class Identity(dg.ConfigurableResource):
    """Where a trusted user name comes from, if anywhere.

    Dagster OSS has no login: by default the approver is *declared* in the config. Behind an
    authenticating proxy that sets a run tag with the signed-in user, name that tag here
    (`UNIFIED_AI_IDENTITY_TAG`); the declared approver must then match it.
    """

    tag: str = ""

    def authenticated(self, context) -> str | None:
        return context.run.tags.get(self.tag) if self.tag else None
