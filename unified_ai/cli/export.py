"""`unified-ai export`: a deployed (or any stored) model as ONNX, for an edge runtime.

A scikit-learn model whose conversion verified when it was stored carries its ONNX form
beside `model.skops` (`unified_ai.ml.onnx_export.sklearn_onnx_files`): that is handed out,
checked and verified by the loader of ONNX-backed models, without importing scikit-learn or
converting again. A model whose conversion failed or disagreed when it was stored is refused
with the stored reason (converting again with the same skl2onnx would repeat it). A model
stored before, or left unconverted when it was stored, is converted on demand and verified on
the project's holdout.
"""

import json
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


def _stored_onnx(store, path: list[str], version: str, where: str) -> bytes | None:
    """The verified ONNX form stored with a scikit-learn model; None if it has none.

    Only the card and the two ONNX files are read, each checked against the version's manifest
    (signed when the store is) before it is used; a file over its cap is not read at all. A
    stored reason why the model has none is the answer when converting again would repeat it
    (`refusal_still_holds`).
    """
    from unified_ai.io.formats import MODEL
    from unified_ai.ml.onnx_checks import ONNX_REFUSED
    from unified_ai.ml.onnx_export import refusal_still_holds, stored_onnx
    from unified_ai.ml.onnx_model import (
        MAX_ONNX_BYTES,
        MAX_ONNX_PROBE_BYTES,
        ONNX_FILE,
        ONNX_PROBE,
        OnnxError,
    )

    manifest = store.read_manifest(path, version)
    if manifest.kind != MODEL:
        return None
    if ONNX_REFUSED in manifest.files:
        note = _checked_file(store, path, manifest, ONNX_REFUSED, MAX_ONNX_PROBE_BYTES)
        why = note.decode(errors="replace").strip()
        if refusal_still_holds(why):
            raise click.ClickException(f"{where}: {why}")
    if not {ONNX_FILE, ONNX_PROBE} <= set(manifest.files):
        return None
    caps = {
        "card.json": MAX_ONNX_PROBE_BYTES,
        ONNX_FILE: MAX_ONNX_BYTES,
        ONNX_PROBE: MAX_ONNX_PROBE_BYTES,
    }
    files = {name: _checked_file(store, path, manifest, name, cap) for name, cap in caps.items()}
    try:
        card = json.loads(files["card.json"])
        if not isinstance(card, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise click.ClickException(f"{where}: model card is unreadable ({exc})") from None
    try:
        return stored_onnx(files, card, where=where)
    except OnnxError as exc:
        raise click.ClickException(str(exc)) from None


def _checked_file(store, path: list[str], manifest, name: str, cap: int) -> bytes:
    """One payload file of a version, refused unless it matches the manifest's checksum."""
    from unified_ai.io.records import sha256_bytes

    file = store.version_dir(path, manifest.version) / name
    if file.stat().st_size > cap:
        raise click.ClickException(
            f"{'/'.join(path)}@{manifest.version}: {file} is over {cap} bytes; refusing to read it"
        )
    data = file.read_bytes()
    if sha256_bytes(data) != manifest.files[name]:
        raise store.checksum_error(path, manifest.version, name)
    return data


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
        path = [config.name, CANDIDATE_MODEL]
        data = _stored_onnx(store, path, chosen, where)
        if data is None:
            # Stored before ONNX forms were, or its conversion was not stored: convert now.
            model = store.read_value(path, chosen)
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
