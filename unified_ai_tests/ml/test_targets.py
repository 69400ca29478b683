"""The target as each task learns it, and one-line refusals of what it cannot learn."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from unified_ai.ml.targets import TargetError, class_list, encode_target, stratify_on


def project(task, classes=None, positive_label=1):
    return SimpleNamespace(
        name="p", target="y", task=task, classes=classes, positive_label=positive_label
    )


def test_regression_targets_are_floats_and_refuse_text_and_infinity():
    frame = pd.DataFrame({"y": [1, 2.5, "3"]})
    assert encode_target(project("regression"), frame).tolist() == [1.0, 2.5, 3.0]
    with pytest.raises(
        TargetError, match=r"p: target 'y': 1 rows are not finite numbers, e.g. 'x'"
    ):
        encode_target(project("regression"), pd.DataFrame({"y": [1.0, "x"]}))
    with pytest.raises(TargetError, match=r"not finite numbers, e\.g\. inf"):
        encode_target(project("regression"), pd.DataFrame({"y": [1.0, np.inf]}))
    with pytest.raises(TargetError, match="1 rows have no value"):
        encode_target(project("regression"), pd.DataFrame({"y": [1.0, None]}))


def test_multiclass_indexes_the_declared_list_whatever_the_spelling():
    p = project("multiclass_classification", classes=[3, 1, 2])
    frame = pd.DataFrame({"y": ["1", 2.0, 3]})
    assert encode_target(p, frame).tolist() == [1, 2, 0]
    with pytest.raises(TargetError, match=r"1 rows hold a class not in the class list .*e.g. 7"):
        encode_target(p, pd.DataFrame({"y": [1, 7]}))


def test_multiclass_infers_sorted_classes_and_needs_three():
    p = project("multiclass_classification")
    assert class_list(p, pd.DataFrame({"y": ["c", "a", "b", "a"]})) == ["a", "b", "c"]
    with pytest.raises(TargetError, match=r"has 2 classes .* needs at least 3"):
        class_list(p, pd.DataFrame({"y": ["a", "b"]}))


def test_binary_is_one_for_the_positive_label():
    frame = pd.DataFrame({"y": ["yes", "no", "yes"]})
    assert encode_target(
        project("binary_classification", positive_label="yes"), frame
    ).tolist() == [
        1,
        0,
        1,
    ]


def test_stratification_per_task():
    assert stratify_on(project("regression"), pd.DataFrame({"y": [1.0, 2.0]})) is None
    p = project("multiclass_classification")
    many = pd.DataFrame({"y": list("aabbcc")})
    assert stratify_on(p, many).tolist() == [0, 0, 1, 1, 2, 2]
    assert stratify_on(p, pd.DataFrame({"y": list("aabbc")})) is None  # c has one row
