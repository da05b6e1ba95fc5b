"""Stacking: fold predictions + statistical features -> XGBoost total score; element presence refined optionally.

Rows are images. Features: the fold model's expected score and summary of its element
probabilities, then statistics of the record (T2I model and prompt type one-hot, number
of elements, element-category counts, prompt length in words and characters). Training
rows use out-of-fold predictions; test rows the mean over the fold models. An element
classifier (fold probability + context) replaces the averaged probability only when its
nested out-of-fold accuracy beats the raw probabilities' (``element_classifier: auto``).
Models are stored as XGBoost JSON (no pickle).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from xgboost import XGBClassifier, XGBRegressor

from ntire_t2iqa import metrics

from ..common.data import AlignItem, split_element

Preds = dict[str, dict[str, Any]]  # img_path -> {"total": float, "elements": {key: prob}}


@dataclass
class Schema:
    """The categorical values seen in training (one-hot columns); unseen values get all zeros."""

    models: list[str]
    types: list[str]
    categories: list[str]

    @classmethod
    def of(cls, items: list[AlignItem]) -> Schema:
        """Collect the schema from training items."""
        cats = {split_element(e)[1] for it in items for e in it.elements}
        return cls(sorted({it.model for it in items}), sorted({it.prompt_type for it in items}), sorted(cats))


def _onehot(value: str, options: list[str]) -> list[float]:
    return [1.0 if value == o else 0.0 for o in options]


def _probs(item: AlignItem, pred: dict[str, Any]) -> list[float]:
    return [float(pred["elements"].get(e, 0.5)) for e in item.elements] or [0.5]


def statistical_features(item: AlignItem, schema: Schema) -> list[float]:
    """T2I model, prompt type, number of elements, element-category counts, prompt length."""
    cats = Counter(split_element(e)[1] for e in item.elements)
    return [*_onehot(item.model, schema.models), *_onehot(item.prompt_type, schema.types), float(len(item.elements)),
            *[float(cats.get(c, 0)) for c in schema.categories], float(len(item.prompt.split())),
            float(len(item.prompt))]


def image_features(item: AlignItem, pred: dict[str, Any], schema: Schema) -> list[float]:
    """One image's row: fold predictions, then the statistical features."""
    p = np.asarray(_probs(item, pred))
    return [float(pred["total"]), float(p.mean()), float(p.min()), float(p.max()), float((p >= 0.5).mean()),
            *statistical_features(item, schema)]


def element_features(item: AlignItem, pred: dict[str, Any], schema: Schema) -> list[list[float]]:
    """One row per element: its fold probability, the image's predictions, its category and the context."""
    p = _probs(item, pred)
    ctx = [float(pred["total"]), float(np.mean(p)), *_onehot(item.model, schema.models),
           *_onehot(item.prompt_type, schema.types), float(len(item.elements))]
    return [[p[i], *_onehot(split_element(e)[1], schema.categories), *ctx] for i, e in enumerate(item.elements)]


def average(preds: list[Preds]) -> Preds:
    """Mean over fold models of the expected score and of each element probability."""
    out: Preds = {}
    for img in preds[0]:
        out[img] = {"total": float(np.mean([p[img]["total"] for p in preds])),
                    "elements": {k: float(np.mean([p[img]["elements"][k] for p in preds]))
                                 for k in preds[0][img]["elements"]}}
    return out


def align_scores(items: list[AlignItem], totals: np.ndarray, elements: np.ndarray) -> dict[str, float]:
    """SRCC, PLCC (official Track 1 fit), ACC and main score against the items' training targets."""
    gt = np.asarray([it.total for it in items], dtype=np.float64)
    gt_el = np.asarray([it.element_scores[e] for it in items for e in it.elements], dtype=np.float64)
    s, _ = metrics.srcc(gt, totals)
    p, _, _ = metrics.plcc(gt, totals, metrics.OFFICIAL_FIT["align"])
    a, _ = metrics.element_accuracy(gt_el, elements)
    return {"srcc": s, "plcc": p, "acc": a, "main": metrics.align_main(s, p, a)}


class Stack:
    """The fitted blend: regressor (always), element classifier (when chosen) and the schema."""

    def __init__(self, schema: Schema, regressor: XGBRegressor, classifier: XGBClassifier | None,
                 report: dict[str, Any]):
        self.schema, self.regressor, self.classifier, self.report = schema, regressor, classifier, report

    def predict(self, items: list[AlignItem], preds: Preds) -> tuple[np.ndarray, list[list[float]]]:
        """(total per item, element probabilities per item) for items with (averaged) fold predictions."""
        X = np.asarray([image_features(it, preds[it.img_path], self.schema) for it in items], dtype=np.float32)
        totals = self.regressor.predict(X).astype(np.float64)
        rows = [element_features(it, preds[it.img_path], self.schema) for it in items]
        if self.classifier is not None and any(rows):
            flat = np.asarray([r for rs in rows for r in rs], dtype=np.float32)
            proba = self.classifier.predict_proba(flat)[:, 1].tolist()
            out, i = [], 0
            for rs in rows:
                out.append(proba[i:i + len(rs)])
                i += len(rs)
            return totals, out
        return totals, [[r[0] for r in rs] for rs in rows]

    def save(self, folder: Path) -> None:
        """XGBoost JSON models + stack.json (schema, choice, report)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.regressor.save_model(str(folder / "regressor.json"))
        if self.classifier is not None:
            self.classifier.save_model(str(folder / "classifier.json"))
        meta = {"schema": asdict(self.schema), "classifier": self.classifier is not None, "report": self.report}
        (folder / "stack.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Stack:
        """Read a stack saved by :meth:`save`."""
        meta = json.loads((folder / "stack.json").read_text())
        reg = XGBRegressor()
        reg.load_model(str(folder / "regressor.json"))
        clf = None
        if meta["classifier"]:
            clf = XGBClassifier()
            clf.load_model(str(folder / "classifier.json"))
        return cls(Schema(**meta["schema"]), reg, clf, meta["report"])


def _regressor(params: dict[str, Any], seed: int) -> XGBRegressor:
    return XGBRegressor(**{"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8,
                           "colsample_bytree": 0.8, "n_jobs": 2, **params}, random_state=seed)


def _classifier(params: dict[str, Any], seed: int) -> XGBClassifier:
    return XGBClassifier(**{"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8,
                            "colsample_bytree": 0.8, "n_jobs": 2, **params}, random_state=seed)


def fit_stack(items: list[AlignItem], oof: Preds, fold_of: dict[str, int], cfg: dict[str, Any], seed: int) -> Stack:
    """Fit the blend on out-of-fold predictions; nested (same folds) OOF scores pick the element source."""
    schema = Schema.of(items)
    X = np.asarray([image_features(it, oof[it.img_path], schema) for it in items], dtype=np.float32)
    y = np.asarray([it.total for it in items], dtype=np.float32)
    groups = np.asarray([fold_of[it.img_path] for it in items])
    rows = [element_features(it, oof[it.img_path], schema) for it in items]
    Xe = np.asarray([r for rs in rows for r in rs], dtype=np.float32)
    ye = np.asarray([it.element_scores[e] >= 0.5 for it in items for e in it.elements], dtype=np.int32)
    ge = np.repeat(groups, [len(rs) for rs in rows])
    nested_total = np.zeros(len(items))
    nested_el = np.zeros(len(Xe))
    for g in np.unique(groups):
        tr, te = groups != g, groups == g
        nested_total[te] = _regressor(cfg.get("regressor", {}), seed).fit(X[tr], y[tr]).predict(X[te])
        tre, tee = ge != g, ge == g
        if len(np.unique(ye[tre])) > 1:
            nested_el[tee] = _classifier(cfg.get("classifier", {}), seed).fit(Xe[tre], ye[tre]).predict_proba(Xe[tee])[:, 1]
        else:
            nested_el[tee] = float(ye[tre][0]) if tre.any() else 0.5
    raw_el = Xe[:, 0].astype(np.float64)
    report = {"oof_fold_models": align_scores(items, X[:, 0].astype(np.float64), raw_el),
              "oof_blend_raw_elements": align_scores(items, nested_total, raw_el),
              "oof_blend_classifier_elements": align_scores(items, nested_total, nested_el)}
    choice = cfg.get("element_classifier", "auto")
    use = choice == "always" or (choice == "auto" and report["oof_blend_classifier_elements"]["acc"]
                                 > report["oof_blend_raw_elements"]["acc"] + cfg.get("classifier_margin", 0.0))
    use = use and len(np.unique(ye)) > 1
    report["element_source"] = "classifier" if use else "fold_mean"
    regressor = _regressor(cfg.get("regressor", {}), seed).fit(X, y)
    classifier = _classifier(cfg.get("classifier", {}), seed).fit(Xe, ye) if use else None
    return Stack(schema, regressor, classifier, report)
