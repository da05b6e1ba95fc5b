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
import xgboost as xgb

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
    s, _ = metrics.srcc_with_notes(gt, totals)
    p, _, _ = metrics.plcc_with_notes(gt, totals, metrics.OFFICIAL_FIT["align"])
    a, _ = metrics.element_accuracy_with_notes(gt_el, elements)
    return {"srcc": s, "plcc": p, "acc": a, "main": metrics.align_main(s, p, a)}


class Booster:
    """A fitted XGBoost model (native API, no scikit-learn): squared error or logistic."""

    DEFAULTS = {"n_estimators": 200, "max_depth": 3, "learning_rate": 0.05, "subsample": 0.8,
                "colsample_bytree": 0.8, "min_child_weight": 1.0, "reg_lambda": 1.0}

    def __init__(self, booster: xgb.Booster):
        self.booster = booster

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, params: dict[str, Any], objective: str, seed: int) -> Booster:
        """Train on (X, y); ``params`` uses the scikit-learn style names of :attr:`DEFAULTS`."""
        p = {**cls.DEFAULTS, **params}
        native = {"objective": objective, "max_depth": p["max_depth"], "eta": p["learning_rate"],
                  "subsample": p["subsample"], "colsample_bytree": p["colsample_bytree"],
                  "min_child_weight": p["min_child_weight"], "lambda": p["reg_lambda"], "seed": seed,
                  "nthread": p.get("n_jobs", 1), "verbosity": 0}
        return cls(xgb.train(native, xgb.DMatrix(X, label=y), num_boost_round=int(p["n_estimators"])))

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions (regression value or probability of class 1)."""
        return self.booster.predict(xgb.DMatrix(X)).astype(np.float64)

    def save(self, path: Path) -> None:
        """XGBoost's JSON model format."""
        self.booster.save_model(str(path))

    @classmethod
    def load(cls, path: Path) -> Booster:
        """Read a JSON model written by :meth:`save`."""
        booster = xgb.Booster()
        booster.load_model(str(path))
        return cls(booster)


def _regressor(X: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int) -> Booster:
    return Booster.fit(X, y, params, "reg:squarederror", seed)


def _classifier(X: np.ndarray, y: np.ndarray, params: dict[str, Any], seed: int) -> Booster:
    return Booster.fit(X, y, params, "binary:logistic", seed)


class Stack:
    """The fitted blend: regressor (always), element classifier (when chosen) and the schema."""

    def __init__(self, schema: Schema, regressor: Booster, classifier: Booster | None, report: dict[str, Any]):
        self.schema, self.regressor, self.classifier, self.report = schema, regressor, classifier, report

    def predict(self, items: list[AlignItem], preds: Preds) -> tuple[np.ndarray, list[list[float]]]:
        """(total per item, element probabilities per item) for items with (averaged) fold predictions."""
        X = np.asarray([image_features(it, preds[it.img_path], self.schema) for it in items], dtype=np.float32)
        totals = self.regressor.predict(X)
        rows = [element_features(it, preds[it.img_path], self.schema) for it in items]
        if self.classifier is not None and any(rows):
            flat = np.asarray([r for rs in rows for r in rs], dtype=np.float32)
            proba = self.classifier.predict(flat).tolist()
            out, i = [], 0
            for rs in rows:
                out.append(proba[i:i + len(rs)])
                i += len(rs)
            return totals, out
        return totals, [[r[0] for r in rs] for rs in rows]

    def save(self, folder: Path) -> None:
        """XGBoost JSON models + stack.json (schema, choice, report)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.regressor.save(folder / "regressor.json")
        if self.classifier is not None:
            self.classifier.save(folder / "classifier.json")
        meta = {"schema": asdict(self.schema), "classifier": self.classifier is not None, "report": self.report}
        (folder / "stack.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Stack:
        """Read a stack saved by :meth:`save`."""
        meta = json.loads((folder / "stack.json").read_text())
        clf = Booster.load(folder / "classifier.json") if meta["classifier"] else None
        return cls(Schema(**meta["schema"]), Booster.load(folder / "regressor.json"), clf, meta["report"])


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
        nested_total[te] = _regressor(X[tr], y[tr], cfg.get("regressor", {}), seed).predict(X[te])
        tre, tee = ge != g, ge == g
        if len(np.unique(ye[tre])) > 1:
            nested_el[tee] = _classifier(Xe[tre], ye[tre], cfg.get("classifier", {}), seed).predict(Xe[tee])
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
    regressor = _regressor(X, y, cfg.get("regressor", {}), seed)
    classifier = _classifier(Xe, ye, cfg.get("classifier", {}), seed) if use else None
    return Stack(schema, regressor, classifier, report)
