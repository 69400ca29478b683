"""`unified-ai export`: a deployed (or any stored) model as ONNX, for an edge runtime."""

from pathlib import Path

import click

from unified_ai.cli.app import Context, main, os_reason, run
from unified_ai.names import CANDIDATE_MODEL, HOLDOUT_SPLIT

#: Holdout rows a scikit-learn conversion is verified on (beside the compiled scorer's probe).
EXPORT_PROBE_ROWS = 2000


def _probe(store, project: str, model):
    """Model inputs to verify a conversion on: the current holdout's head and the scorer probe."""
    import pandas as pd

    from unified_ai.ml.data import FeatureColumns
    from unified_ai.ml.onnx_model import card_features
    from unified_ai.ml.training import model_inputs

    numeric, categorical = card_features(model.card)
    features = FeatureColumns(numeric=numeric, categorical=categorical)
    frames = []
    version = store.current_version([project, HOLDOUT_SPLIT])
    if version is not None:
        holdout = store.read_value([project, HOLDOUT_SPLIT], version)
        frames.append(model_inputs(holdout.head(EXPORT_PROBE_ROWS), features))
    if model.scorer is not None and model.scorer.probe is not None:
        frames.append(model_inputs(model.scorer.probe_inputs(), features))
    if not frames:
        raise click.ClickException(
            f"{project}: no holdout split is stored to verify the ONNX conversion on"
        )
    return pd.concat(frames, ignore_index=True)


@main.command("export")
@click.argument("project")
@click.option(
    "--version",
    "version",
    default=None,
    help="A stored candidate_model version (default: the deployed one).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx"]),
    default="onnx",
    show_default=True,
    help="The exported format.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the file (default: <project>-<version>.onnx here).",
)
def export_cmd(project: str, version: str | None, fmt: str, output: Path | None) -> None:
    """Write PROJECT's deployed model (or --version) as a verified ONNX file."""

    def go():
        from unified_ai.io.reader import StoreReader
        from unified_ai.ml.onnx_export import export_onnx
        from unified_ai.ml.onnx_model import OnnxError
        from unified_ai.queries import current_deployment

        ctx = Context()
        config = ctx.project(project)
        store = ctx.store()
        chosen = version
        if chosen is None:
            found = current_deployment(StoreReader(store), config.name)
            if found is None:
                raise click.ClickException(
                    f"{config.name}: no model is deployed yet; name one with --version"
                )
            chosen = found[1].model_version
        where = f"{config.name}/{CANDIDATE_MODEL}@{chosen}"
        model = store.read_value([config.name, CANDIDATE_MODEL], chosen)
        probe = None if model.onnx is not None else _probe(store, config.name, model)
        try:
            data = export_onnx(model, probe, where=where)
        except OnnxError as exc:
            raise click.ClickException(str(exc)) from None
        target = output or Path(f"{config.name}-{chosen}.{fmt}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        except OSError as exc:
            raise click.ClickException(
                f"{target}: cannot write the model: {os_reason(exc)}"
            ) from None
        click.echo(f"{where}: wrote {len(data)} bytes of verified ONNX to {target}")

    run(go)
