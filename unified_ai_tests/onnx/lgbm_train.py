"""A project's own training script: LightGBM (not scikit-learn), handed back as ONNX.

Run through Dagster Pipes (`training: {runner: pipes, script: lgbm_train.py}`). It trains on the
project's numeric features, converts the model with onnxmltools and hands back the ONNX model
with LightGBM's own predictions for the probe rows. `TAMPER = True` (set by a test on a copy)
reports predictions that disagree with the model, which the step must refuse.
"""

TAMPER = False


def train_lightgbm(project, train):
    """(the fitted LightGBM model, its ONNX bytes, the numeric feature columns)."""
    import numpy as np
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    from unified_ai.ml.data import resolve_features
    from unified_ai.ml.targets import encode_target
    from unified_ai.ml.training import task_card

    numeric = resolve_features(project, train).numeric
    # LightGBM splits on float32 thresholds in ONNX: train on float32 values so both agree.
    x = train[numeric].to_numpy(dtype="float64").astype(np.float32)
    y = encode_target(project, train, task_card(project, train).get("classes"))
    params = {"n_estimators": 40, "num_leaves": 15, "min_child_samples": 5, "verbose": -1}
    if project.task == "regression":
        model = LGBMRegressor(**params).fit(x, y)
    else:
        model = LGBMClassifier(**params).fit(x, y)
    initial = [("input", FloatTensorType([None, len(numeric)]))]
    onnx = convert_lightgbm(model, initial_types=initial, zipmap=False, target_opset=15)
    return model, onnx.SerializeToString(), numeric


def lightgbm_predictions(model, task, frame, numeric):
    """LightGBM's own predictions in the task's shape."""
    import numpy as np

    x = frame[numeric].to_numpy(dtype="float64").astype(np.float32)
    if task == "regression":
        return model.predict(x)
    proba = model.predict_proba(x)
    return proba[:, 1] if task == "binary_classification" else proba


def main():
    from dagster_pipes import open_dagster_pipes

    from unified_ai.ml.onnx_model import probe_rows
    from unified_ai.stages.training.external_train import hand_back_onnx, read_train

    with open_dagster_pipes() as pipes:
        project, train = read_train(pipes)
        pipes.log.info(f"training LightGBM on {len(train)} rows")
        model, onnx_bytes, numeric = train_lightgbm(project, train)
        probe = probe_rows(train, numeric, [])
        predictions = lightgbm_predictions(model, project.task, probe, numeric)
        if TAMPER:
            predictions = predictions * 0.5
        hand_back_onnx(
            pipes,
            onnx_bytes=onnx_bytes,
            probe_predictions=predictions,
            numeric=numeric,
            categorical=[],
            metrics={"rows": float(len(train))},
        )


if __name__ == "__main__":
    main()
