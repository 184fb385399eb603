"""``google.colab.patches``: ``cv2_imshow(a)`` (and its other name ``cv_imshow``), as on Colab, without OpenCV.

``a`` is an image as OpenCV holds it: a NumPy array of shape ``(N, M)`` or
``(N, M, 1)`` (grayscale), ``(N, M, 3)`` (BGR) or ``(N, M, 4)`` (BGRA). As on
Colab, its values are clipped to [0, 255] and cast to ``uint8`` (so a float
image in [0, 1] shows nearly black: multiply it by 255 first), the channels
put in RGB(A) order, and the image shown as a PNG in the cell's output.
Outside a notebook a line says what would have been shown.
"""

__all__ = ["cv2_imshow", "cv_imshow"]


def cv2_imshow(a):
    """Show the OpenCV image ``a`` (grayscale, BGR or BGRA) in the cell's output."""
    import numpy as np

    a = np.asarray(a)
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (1, 3, 4))):
        raise ValueError(
            f"cv2_imshow shows an image of shape (N, M) or (N, M, 1) (grayscale), (N, M, 3) (BGR) or (N, M, 4) (BGRA); "
            f"this array's shape is {a.shape}"
        )
    a = a.clip(0, 255).astype("uint8")
    if a.ndim == 3:
        # OpenCV keeps colours as BGR(A); an image is shown as RGB(A).
        a = a[:, :, 0] if a.shape[2] == 1 else a[:, :, [2, 1, 0, 3][: a.shape[2]]]
    from drivelab.colab._calls import in_kernel

    if not in_kernel():
        kind = "grayscale" if a.ndim == 2 else "RGB" if a.shape[2] == 3 else "RGBA"
        print(f"(cv2_imshow: a {a.shape[1]}x{a.shape[0]} {kind} image, shown in notebooks only)")
        return
    from IPython.display import display
    from PIL import Image

    display(Image.fromarray(np.ascontiguousarray(a)))


cv_imshow = cv2_imshow
