"""Pictures for an asset's page in the Dagster UI: inline images in Markdown metadata."""

import base64
import io

from PIL import Image


def image_markdown(image: Image.Image, alt: str, max_side: int = 960, image_format: str = "JPEG") -> str:
    """The image (shrunk to `max_side`) as a data-URI Markdown image, small enough for the event log."""
    image = image.copy()
    image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    if image_format == "JPEG":
        image.convert("RGB").save(buf, format="JPEG", quality=70)
    else:
        image.save(buf, format=image_format)
    mime = f"image/{image_format.lower()}"
    return f"![{alt}](data:{mime};base64,{base64.b64encode(buf.getvalue()).decode()})"
