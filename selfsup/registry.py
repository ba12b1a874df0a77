"""Names the CLI understands: modality name -> its class (imported only when asked for).

Each modality owns the dicts of its encoders and objectives (``Modality.encoders`` /
``Modality.objectives``); this table only says where each modality lives.
"""

from __future__ import annotations

import importlib

from selfsup.errors import ConfigError

MODALITIES = {
    "sensor": "selfsup.modalities.sensor:SensorModality",
    "image": "selfsup.modalities.image:ImageModality",
    "audio": "selfsup.modalities.audio:AudioModality",
    "video": "selfsup.modalities.video:VideoModality",
}


def modality_class(name: str):
    if name not in MODALITIES:
        raise ConfigError(f"unknown modality '{name}'; choose from: {', '.join(MODALITIES)}")
    module, cls = MODALITIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get_modality(name: str, **options):
    return modality_class(name)(**options)
