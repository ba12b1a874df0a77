"""selfsup: self-supervised learning for images, audio, video and wearable sensors.

The short path (see the README):

    import selfsup
    run = selfsup.pretrain(x, modality="sensor", objective="transformation", out="runs/demo")
    encoder = selfsup.load_encoder("runs/demo")
    z = selfsup.embed(encoder, x)            # (N, D) numpy array
"""

from selfsup.api import embed, load_encoder, pretrain
from selfsup.errors import ConfigError, DataError, SelfsupError

__version__ = "0.1.0"
__all__ = ["pretrain", "load_encoder", "embed", "SelfsupError", "DataError", "ConfigError", "__version__"]
