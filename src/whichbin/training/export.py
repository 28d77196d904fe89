"""Export: the backbone to ONNX (torch), and the SPEC bundle by adding the head to that
graph (onnx only, so a head-only retrain can rewrite a bundle without torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from whichbin.errors import ModelError
from whichbin.inference import BundleMeta, write_meta
from whichbin.training.site_memory import SiteMemory

logger = logging.getLogger(__name__)

INPUT = "input"
EMBEDDING = "embedding"
LOGITS = "logits"
FAMILIARITY = "familiarity"
OPSET = 17


def export_backbone_onnx(
    name: str, weights: str | None, size: int, out: Path, cache_dir: Path
) -> Path:
    """Write the pretrained backbone as ONNX: input [N,3,S,S] → ``embedding`` [N,D]."""
    from whichbin.training.backbones import create_backbone

    model, _, _ = create_backbone(name, weights, cache_dir)
    model.reset_classifier(0)
    return _torch_export(model, size, out, [EMBEDDING])


def export_module_onnx(model, size: int, out: Path) -> Path:  # noqa: ANN001
    """Export a torch module that returns (logits, embedding) as a bundle graph."""
    return _torch_export(model, size, out, [LOGITS, EMBEDDING])


def _torch_export(model, size: int, out: Path, outputs: list[str]) -> Path:  # noqa: ANN001
    """The TorchScript-based exporter (no onnxscript needed), batch dimension dynamic."""
    import torch

    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            input_names=[INPUT],
            output_names=outputs,
            dynamic_axes={name: {0: "N"} for name in (INPUT, *outputs)},
            opset_version=OPSET,
            dynamo=False,
        )
    tmp.replace(out)
    return out


def _head_nodes(layers: list[tuple[np.ndarray, np.ndarray]], out: str = LOGITS):  # noqa: ANN202
    """Gemm (+Relu) nodes and initializers for a head given as [(W [out,in], b [out]), ...]."""
    from onnx import helper, numpy_helper

    nodes, inits = [], []
    x = EMBEDDING
    for i, (w, b) in enumerate(layers):
        wn, bn = f"head.{i}.weight", f"head.{i}.bias"
        inits += [
            numpy_helper.from_array(np.asarray(w, np.float32), wn),
            numpy_helper.from_array(np.asarray(b, np.float32), bn),
        ]
        last = i == len(layers) - 1
        y = out if last else f"head.{i}.out"
        nodes.append(
            helper.make_node(
                "Gemm", [x, wn, bn], [y if last else y + ".pre"], name=f"head.{i}.gemm", transB=1
            )
        )
        if not last:
            nodes.append(helper.make_node("Relu", [y + ".pre"], [y], name=f"head.{i}.relu"))
        x = y
    return nodes, inits


def _familiarity_nodes(protos: np.ndarray, k: int):  # noqa: ANN202
    """Nodes computing ``familiarity`` [N, 1]: the mean cosine similarity of the embedding
    to its ``k`` nearest prototypes (evaluation/openset.py, the same sum in numpy)."""
    from onnx import helper, numpy_helper

    k = min(k, len(protos))
    inits = [
        numpy_helper.from_array(np.ascontiguousarray(protos.T, np.float32), "ood.protos_t"),
        numpy_helper.from_array(np.array([k], np.int64), "ood.k"),
        numpy_helper.from_array(np.full((k, 1), 1.0 / k, np.float32), "ood.mean"),
    ]
    nodes = [
        helper.make_node("LpNormalization", [EMBEDDING], ["ood.unit"], axis=1, p=2),
        helper.make_node("MatMul", ["ood.unit", "ood.protos_t"], ["ood.sims"]),
        helper.make_node("TopK", ["ood.sims", "ood.k"], ["ood.top", "ood.top_idx"], axis=1),
        helper.make_node("MatMul", ["ood.top", "ood.mean"], [FAMILIARITY]),
    ]
    return nodes, inits


def _site_nodes(site: SiteMemory, temperature: float):  # noqa: ANN202
    """Nodes turning ``head.logits`` into ``logits`` = T log((1-g) softmax(head/T) + g memory)
    (training/site_memory.py, the same sums in numpy)."""
    from onnx import helper, numpy_helper

    def const(name: str, value: np.ndarray) -> Any:
        return numpy_helper.from_array(value, name)

    f32 = np.float32
    inits = [
        const("site.keys_t", np.ascontiguousarray(site.keys.T, f32)),
        const("site.dists", site.dists.astype(f32)),
        const("site.k", np.array([min(site.k, len(site.keys))], np.int64)),
        const("site.gate", np.array(site.gate, f32)),
        const("site.weight", np.array(site.weight, f32)),
        const("site.t", np.array(temperature, f32)),
        const("site.eps", np.array(1e-12, f32)),
    ]
    node = helper.make_node
    nodes = [
        node("Div", ["head.logits", "site.t"], ["site.z"]),
        node("Softmax", ["site.z"], ["site.p"], axis=1),
        node("LpNormalization", [EMBEDDING], ["site.unit"], axis=1, p=2),
        node("MatMul", ["site.unit", "site.keys_t"], ["site.sims"]),
        node("TopK", ["site.sims", "site.k"], ["site.top", "site.idx"], axis=1),
        node("Gather", ["site.dists", "site.idx"], ["site.near"], axis=0),
        node("ReduceMean", ["site.near"], ["site.answer"], axes=[1], keepdims=0),
        node("ReduceMax", ["site.top"], ["site.best"], axes=[1], keepdims=1),
        node("GreaterOrEqual", ["site.best", "site.gate"], ["site.speaks"]),
        node("Cast", ["site.speaks"], ["site.speaks_f"], to=1),
        node("Mul", ["site.speaks_f", "site.weight"], ["site.g0"]),
        *_domain_nodes(site, inits),
        node("Sub", ["site.answer", "site.p"], ["site.delta"]),
        node("Mul", ["site.g", "site.delta"], ["site.shift"]),
        node("Add", ["site.p", "site.shift"], ["site.q"]),
        node("Add", ["site.q", "site.eps"], ["site.q_eps"]),
        node("Log", ["site.q_eps"], ["site.log_q"]),
        node("Mul", ["site.log_q", "site.t"], [LOGITS]),
    ]
    return nodes, inits


def _domain_nodes(site: SiteMemory, inits: list) -> list:
    """``site.g`` from ``site.g0``: scaled by how site-like the image is (the memory's
    site-vs-stock regression, a sigmoid), or passed through when it has none. Appends the
    regression's weights to ``inits``."""
    from onnx import helper, numpy_helper

    node = helper.make_node
    if site.domain is None:
        return [node("Identity", ["site.g0"], ["site.g"])]
    inits += [
        numpy_helper.from_array(site.domain[:-1, None].astype(np.float32), "site.dom_w"),
        numpy_helper.from_array(np.array(site.domain[-1], np.float32), "site.dom_b"),
    ]
    return [
        node("MatMul", ["site.unit", "site.dom_w"], ["site.dom_z0"]),
        node("Add", ["site.dom_z0", "site.dom_b"], ["site.dom_z"]),
        node("Sigmoid", ["site.dom_z"], ["site.like"]),
        node("Mul", ["site.g0", "site.like"], ["site.g"]),
    ]


def _add_outputs(
    model,  # noqa: ANN001
    layers: list[tuple[np.ndarray, np.ndarray]],
    protos: np.ndarray | None,
    k: int,
    site: SiteMemory | None = None,
    temperature: float = 1.0,
) -> None:
    """Append the head (the site memory, and the familiarity score) to a graph that ends in
    ``embedding``."""
    from onnx import TensorProto, helper

    graph = model.graph
    nodes, inits = _head_nodes(layers, "head.logits" if site is not None else LOGITS)
    if site is not None:
        more_nodes, more_inits = _site_nodes(site, temperature)
        nodes, inits = nodes + more_nodes, inits + more_inits
    if protos is not None and len(protos):
        more_nodes, more_inits = _familiarity_nodes(protos, k)
        nodes, inits = nodes + more_nodes, inits + more_inits
        graph.output.append(helper.make_tensor_value_info(FAMILIARITY, TensorProto.FLOAT, ["N", 1]))
    graph.node.extend(nodes)
    graph.initializer.extend(inits)
    n_out = int(np.asarray(layers[-1][0]).shape[0])
    graph.output.insert(0, helper.make_tensor_value_info(LOGITS, TensorProto.FLOAT, ["N", n_out]))


def _save(model, meta: BundleMeta, out: Path) -> Path:  # noqa: ANN001
    import onnx

    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    onnx.save(model, str(tmp))
    write_meta(tmp, meta)
    tmp.replace(out)
    return out


def build_bundle(
    backbone_onnx: Path,
    layers: list[tuple[np.ndarray, np.ndarray]],
    meta: BundleMeta,
    out: Path,
    protos: np.ndarray | None = None,
    k: int = 5,
    site: SiteMemory | None = None,
) -> Path:
    """Backbone graph + head layers → one ONNX file with ``logits`` and ``embedding`` (and
    ``familiarity`` when training prototypes are given; ``logits`` mixed with a site's
    memory of its corrections when ``site`` is given, at ``meta.temperature``)."""
    import onnx

    model = onnx.load(str(backbone_onnx))
    if [o.name for o in model.graph.output] != [EMBEDDING]:
        raise ModelError(f"{backbone_onnx}: expected a single 'embedding' output")
    _add_outputs(model, layers, protos, k, site, meta.temperature)
    return _save(model, meta, out)


def replace_head(
    bundle: Path,
    layers: list[tuple[np.ndarray, np.ndarray]],
    meta: BundleMeta,
    out: Path,
    protos: np.ndarray | None = None,
    k: int = 5,
) -> Path:
    """Rewrite the head of an existing bundle (numpy + onnx only, no torch).

    Removes every node that computes ``logits`` (or ``familiarity``) from ``embedding`` and
    appends the new head (and the new prototypes' familiarity).
    """
    import onnx

    model = onnx.load(str(bundle))
    graph = model.graph
    producers = {o: n for n in graph.node for o in n.output}
    if EMBEDDING not in producers or LOGITS not in producers:
        raise ModelError(f"{bundle}: not a whichbin bundle (needs logits and embedding)")
    # Walk back from the outputs to embedding: those nodes are the head.
    head, stack = set(), [LOGITS, FAMILIARITY]
    while stack:
        name = stack.pop()
        if name == EMBEDDING or name not in producers:
            continue
        node = producers[name]
        if id(node) in head:
            continue
        head.add(id(node))
        stack.extend(node.input)
    keep = [n for n in graph.node if id(n) not in head]
    used = {i for n in keep for i in n.input}
    kept_inits = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(keep)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    others = [o for o in graph.output if o.name not in (LOGITS, FAMILIARITY)]
    del graph.output[:]
    graph.output.extend(others)
    _add_outputs(model, layers, protos, k)
    return _save(model, meta, out)


def strip_to_backbone(bundle: Path, out: Path) -> Path:
    """The backbone part of a bundle (input → embedding), e.g. to compute embeddings on a Pi."""
    import onnx

    onnx.utils.extract_model(str(bundle), str(out), [INPUT], [EMBEDDING])
    return out
