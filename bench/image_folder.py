# Makes the photo folder the image-loading benchmark reads (bench/images.lua
# and bench/images.py read the same files): N JPEGs in 10 class folders,
# each a random crop of one of python3-skimage's photographs, scaled so its
# sides fall between 300 and 500 pixels (ImageNet's typical sizes), saved
# by Pillow at quality 90. Deterministic (seeded), so every run and both
# sides see the same bytes.
#
#   /usr/bin/python3 bench/image_folder.py OUTDIR [N=1000]
import os
import sys

import numpy as np
from PIL import Image

DATA = "/usr/lib/python3/dist-packages/skimage/data"
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
          "hubble_deep_field.jpg", "retina.jpg", "ihc.png"]


def main():
    out = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rng = np.random.default_rng(19)
    photos = []
    for name in PHOTOS:
        path = os.path.join(DATA, name)
        if os.path.exists(path):
            photos.append(Image.open(path).convert("RGB"))
    if not photos:
        sys.exit("image_folder.py: no photographs in " + DATA + " (apt-get install python3-skimage)")
    for k in range(10):
        os.makedirs(os.path.join(out, "class%02d" % k), exist_ok=True)
    for i in range(n):
        src = photos[int(rng.integers(len(photos)))]
        w, h = src.size
        cw, ch = int(rng.integers(w // 2, w + 1)), int(rng.integers(h // 2, h + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        side = int(rng.integers(300, 501))
        scale = side / max(cw, ch)
        img = src.crop((x, y, x + cw, y + ch)).resize((max(1, round(cw * scale)), max(1, round(ch * scale))),
                                                      Image.BILINEAR)
        img.save(os.path.join(out, "class%02d" % (i % 10), "%05d.jpg" % i), quality=90)


if __name__ == "__main__":
    main()
