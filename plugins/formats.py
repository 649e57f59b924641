"""Built-in dialects: groundkit, treevgr, qwen2vl, qwen-json, molmo."""

from groundkit import Dialect, hookimpl, read_grammar

DIALECTS = [
    ("groundkit", "rel-1000", "groundkit's own format: XML-like tags with labels, rel-1000 integers",
     '<think>The mug <point label="mug">(212, 533)</point> is left of the plate '
     '<box label="plate">[300, 420, 520, 610]</box>.</think><answer>1</answer>'),
    ("treevgr", "rel-1000", "iVGR / TreeVGR: <box>[x1,y1,x2,y2]</box> inside <think>",
     "<think>The plate <box>[300,420,520,610]</box> is on the right.</think><answer>B</answer>"),
    ("qwen2vl", "rel-1000", "Qwen2-VL special tokens: object_ref + box_start (x1,y1),(x2,y2) box_end, rel-1000",
     "<think>The <|object_ref_start|>plate<|object_ref_end|><|box_start|>(300,420),(520,610)<|box_end|> "
     "is on the right.</think><answer>B</answer>"),
    ("qwen-json", "rel-1000", "Qwen2.5-VL / Qwen3-VL JSON: bbox_2d / point_2d with label "
     "(use frame abs-resized for Qwen2.5-VL, rel-1000 for Qwen3-VL)",
     '<think>The plate {"bbox_2d": [300, 420, 520, 610], "label": "plate"} is on the right.</think><answer>B</answer>'),
    ("molmo", "percent-100", "Molmo points: <point x=\"12.3\" y=\"45.6\" alt=\"mug\">mug</point>, percent 0..100",
     '<think>There is <point x="21.2" y="53.3" alt="mug">mug</point> one mug.</think><answer>1</answer>'),
]


@hookimpl
def register_dialects(register):
    for name, frame, description, example in DIALECTS:
        skeleton = read_grammar("groundkit.grammars", "skeletons", f"{name}.lark")
        register(Dialect(name, skeleton, default_frame=frame, description=description, example=example))
