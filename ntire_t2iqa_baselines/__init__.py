"""Reference baselines for the NTIRE 2025 T2I quality assessment challenge.

Installed with the ``baselines`` extra (torch, transformers, safetensors, peft,
accelerate, xgboost). The scoring toolkit (``ntire_t2iqa``) never imports this package;
``ntire-t2iqa baseline ...`` imports it only when called.

Each baseline is a subpackage exposing ``TRACK``, ``CONFIGS`` and two functions,
``train(data, out, config, device, seed)`` and
``predict(data, split, weights, device, batch_size=None)`` (fga-blip2 and rahf also take
``progress``); ``data`` is a data folder of any supported layout or a resolved
:class:`ntire_t2iqa.data.sources.TrackData`, read through :mod:`ntire_t2iqa_baselines.common.data`.
:mod:`ntire_t2iqa_baselines.registry` names them and :mod:`ntire_t2iqa_baselines.common` holds what they share.
"""
