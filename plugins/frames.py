"""Built-in coordinate frames."""

from groundkit import Frame, OriginalPixelFrame, ResizedPixelFrame, hookimpl


@hookimpl
def register_frames(register):
    register(Frame("rel-1000", scale=1000.0, description="integers 0..1000 relative to the image"))
    register(Frame("percent-100", scale=100.0, decimals=1, max_decimals=2, description="percent 0..100, one decimal"))
    register(Frame("unit", scale=1.0, decimals=3, max_decimals=4, description="floats 0..1 relative to the image"))
    register(OriginalPixelFrame("abs-original", description="integer pixels of the original image"))
    register(
        ResizedPixelFrame(
            "abs-resized",
            description="integer pixels of the model's resized input (Qwen2.5-VL smart_resize: factor 28, "
            "3136..1003520 pixels); parameters: abs-resized:factor=32,min_pixels=N,max_pixels=N",
        )
    )
