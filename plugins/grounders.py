"""Built-in grounders: ``oracle`` (ground-truth masks) and ``sam3`` (text-prompted SAM3 through
transformers' ``Sam3Model``, loaded from a local checkpoint).

SAM3 pre- and post-processing are written here with numpy / PIL / torch (no torchvision):
resize to the model's square input, normalise; instance score = sigmoid(query logit) x
sigmoid(presence logit), kept above ``threshold``; mask logits upsampled (bilinear) to the
original size and cut at ``mask_threshold``; tiny masks dropped. The image is encoded once
per batch of images and its features are shared by all its phrases.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from groundkit import ConfigError, Grounder, GroundkitError, MaskCandidate, hookimpl, labels_match

TOKENS = 32  # SAM3's text length (the processor pads to 32)
_LOADED = {}  # (checkpoint, device, dtype) -> loaded state: copies made by with_params share one model


@dataclass
class OracleGrounder(Grounder):
    """Masks of the annotated objects whose label (or a synonym) matches the phrase.

    Objects annotated with a box only get a rectangular mask when ``box_masks``; objects with
    points only are never returned. For synthetic scenes and datasets that have masks.
    """

    box_masks: bool = True
    name = "oracle"
    description = "ground-truth masks of the annotated objects matching the phrase"

    def ground(self, queries):
        out = []
        for q in queries:
            width, height = q.image.size
            objects = (q.truth.objects or ()) if q.truth is not None else ()
            per_phrase = []
            for phrase in q.phrases:
                cands = []
                for obj in objects:
                    if not labels_match(phrase, obj.keys):
                        continue
                    mask = obj.raster(width, height)
                    if mask is None and self.box_masks and obj.box is not None:
                        mask = _box_mask(obj.box, width, height)
                    if mask is not None and mask.any():
                        cands.append(MaskCandidate(np.asarray(mask, dtype=bool), 1.0))
                per_phrase.append(cands)
            out.append(per_phrase)
        return out


def _box_mask(box, width, height):
    m = np.zeros((height, width), dtype=bool)
    x1, y1 = int(np.floor(box[0] * width)), int(np.floor(box[1] * height))
    x2, y2 = int(np.ceil(box[2] * width)), int(np.ceil(box[3] * height))
    m[y1:y2, x1:x2] = True
    return m


@dataclass
class Sam3Grounder(Grounder):
    """Text-prompted SAM3 from a local checkpoint (``checkpoint``: a folder with config.json,
    weights, tokenizer files and optionally preprocessor_config.json)."""

    checkpoint: str | None = None
    threshold: float = 0.4
    mask_threshold: float = 0.5
    max_masks: int = 10
    min_area: int = 16
    batch_size: int = 8
    device: str | None = None
    dtype: str | None = None
    _state: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    name = "sam3"
    description = "SAM3 (transformers Sam3Model), text-prompted, from a local checkpoint"

    def prepare(self):
        self.load()

    def load(self):
        if "model" in self._state:
            return self._state
        key = (str(self.checkpoint), self.device, self.dtype)
        if key in _LOADED:
            self._state.update(_LOADED[key])
            return self._state
        if not self.checkpoint:
            raise ConfigError("the sam3 grounder needs a local checkpoint folder", "grounder.checkpoint")
        path = Path(self.checkpoint)
        if not (path / "config.json").exists():
            raise ConfigError(f"{path} is not a SAM3 checkpoint folder (no config.json)", "grounder.checkpoint")
        try:
            import torch
            from transformers import AutoTokenizer, Sam3Model
        except ImportError as exc:
            raise GroundkitError(f"the sam3 grounder needs transformers with Sam3Model ({exc})") from exc
        kwargs = {"local_files_only": True}
        if self.dtype:
            kwargs["dtype"] = getattr(torch, self.dtype)
        model = Sam3Model.from_pretrained(path, **kwargs).eval()
        if self.device:
            model.to(self.device)
        size = model.config.vision_config.image_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        mean, std = [0.5] * 3, [0.5] * 3
        pre = path / "preprocessor_config.json"
        if pre.exists():
            cfg = json.loads(pre.read_text(encoding="utf-8"))
            if isinstance(cfg.get("size"), dict) and "height" in cfg["size"]:
                size = (cfg["size"]["height"], cfg["size"]["width"])
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self._state.update(model=model, tokenizer=AutoTokenizer.from_pretrained(path, local_files_only=True),
                           size=size, mean=np.asarray(mean, np.float32), std=np.asarray(std, np.float32))
        _LOADED.clear()  # keep one model in memory
        _LOADED[key] = dict(self._state)
        return self._state

    def preprocess(self, image):
        """(3, H, W) float tensor: bilinear resize to the model's input, scale to [0, 1], normalise."""
        import torch
        from PIL import Image

        st = self.load()
        h, w = st["size"]
        arr = np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        arr = (arr - st["mean"]) / st["std"]
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))

    def postprocess(self, logits, presence, masks, size):
        """Candidates of one (image, phrase) pair at the original ``size`` (width, height)."""
        import torch

        scores = logits.sigmoid()
        if presence is not None:
            scores = scores * presence.sigmoid()
        keep = torch.nonzero(scores > self.threshold).flatten()
        keep = keep[torch.argsort(scores[keep], descending=True)][: self.max_masks]
        if keep.numel() == 0:
            return []
        width, height = size
        up = torch.nn.functional.interpolate(masks[keep][None].float(), size=(height, width), mode="bilinear", align_corners=False)[0]
        binary = (up.sigmoid() > self.mask_threshold).cpu().numpy()
        return [MaskCandidate(m, float(s)) for m, s in zip(binary, scores[keep].tolist()) if m.sum() >= self.min_area]

    def ground(self, queries):
        import torch

        st = self.load()
        model, tok = st["model"], st["tokenizer"]
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        out = [[[] for _ in q.phrases] for q in queries]
        for start in range(0, len(queries), self.batch_size):
            chunk = queries[start : start + self.batch_size]
            pairs = [(qi, pi, phrase) for qi, q in enumerate(chunk) for pi, phrase in enumerate(q.phrases)]
            if not pairs:
                continue
            pixels = torch.stack([self.preprocess(q.image) for q in chunk]).to(device, dtype)
            with torch.no_grad():
                vision = model.get_vision_features(pixel_values=pixels)
                for p0 in range(0, len(pairs), self.batch_size):
                    part = pairs[p0 : p0 + self.batch_size]
                    idx = torch.tensor([qi for qi, _, _ in part], device=device)
                    shared = type(vision)(
                        fpn_hidden_states=tuple(t[idx] for t in vision.fpn_hidden_states),
                        fpn_position_encoding=tuple(t[idx] for t in vision.fpn_position_encoding),
                    )
                    text = tok([p for _, _, p in part], padding="max_length", max_length=TOKENS, truncation=True, return_tensors="pt").to(device)
                    res = model(vision_embeds=shared, input_ids=text["input_ids"], attention_mask=text["attention_mask"])
                    for b, (qi, pi, _) in enumerate(part):
                        presence = res.presence_logits[b, 0] if res.presence_logits is not None else None
                        out[start + qi][pi] = self.postprocess(res.pred_logits[b].float(), presence, res.pred_masks[b], chunk[qi].image.size)
        return out


TINY_WORDS = ["<|startoftext|>", "<|endoftext|>", "<unk>", "the", "a", "every", "red", "green", "blue", "yellow", "purple",
              "orange", "circle", "square", "triangle", "star", "shape", "circles", "squares", "cup", "mug", "object"]


def build_tiny_sam3(path, seed=0, image_size=112):
    """Write a tiny random-initialised SAM3 checkpoint (real Sam3Model, word-level tokenizer) to ``path``.

    It loads through the same ``from_pretrained`` path as a real checkpoint; for tests and demos only.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Sam3Config, Sam3Model

    torch.manual_seed(seed)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(TINY_WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>", unk_token="<unk>")
    small = dict(num_attention_heads=2, intermediate_size=64)
    grid = image_size // 14
    config = Sam3Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, num_hidden_layers=2, image_size=image_size, patch_size=14,
                                 window_size=max(1, grid // 2), global_attn_indexes=[1], pretrain_image_size=image_size, **small),
            fpn_hidden_size=32, backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2]),
        text_config=dict(vocab_size=len(vocab), hidden_size=32, projection_dim=32, num_hidden_layers=1, max_position_embeddings=TOKENS,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1, **small),
        geometry_encoder_config=dict(hidden_size=32, num_layers=1, **small),
        detr_encoder_config=dict(hidden_size=32, num_layers=1, **small),
        detr_decoder_config=dict(hidden_size=32, num_layers=1, num_queries=8, **small),
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )
    Sam3Model(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps({
        "size": {"height": image_size, "width": image_size}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}), encoding="utf-8")
    return path


@hookimpl
def register_grounders(register):
    register(OracleGrounder())
    register(Sam3Grounder())
