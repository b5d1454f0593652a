#!/usr/bin/python3
"""Renders seeded text-line crops for PP-OCR recognizers: N x 3 x 48 x W float32 in the model's
normalisation ((pixel / 255 - 0.5) / 0.5), as PaddleOCR's rec preprocessing feeds them (height 48,
aspect kept, right-padded with zeros to W). Text: random words of Latin letters and digits in DejaVu
fonts, dark ink on a light, slightly noisy background, so the samples look like the crops the det
model hands the recognizer (not N(0,1) noise, which exercises none of the weights that read glyphs).

    bench/make_ocr_lines.py OUT.npy [--count 32] [--width 320] [--seed 0]

With --page S the samples are S x S pages for the PP-OCR detector instead: a few such lines at random
places, normalised as PaddleOCR's det preprocessing does (ImageNet mean and std over pixel / 255).
"""
import argparse
import glob
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=32)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--page", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    fonts = sorted(f for f in glob.glob("/usr/share/fonts/truetype/dejavu/*.ttf") if "ExtraLight" not in f)
    if not fonts:
        raise SystemExit("no DejaVu fonts under /usr/share/fonts/truetype/dejavu")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    if a.page:
        np.save(a.out, pages(a, rng, fonts, alphabet))
        return
    out = np.zeros((a.count, 3, 48, a.width), dtype=np.float32)
    for k in range(a.count):
        words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(2, 7))) for _ in range(rng.randint(1, 3))]
        text = " ".join(words)
        font = ImageFont.truetype(rng.choice(fonts), rng.randint(26, 34))
        left, top, right, bottom = font.getbbox(text)
        bg = rng.randint(200, 255)
        ink = rng.randint(0, 70)
        img = Image.new("RGB", (right - left + 8, bottom - top + 8), (bg, bg, bg))
        ImageDraw.Draw(img).text((4 - left, 4 - top), text, font=font, fill=(ink, ink, ink))
        w = min(a.width, max(8, round(img.width * 48 / img.height)))
        img = img.resize((w, 48), Image.BILINEAR)
        px = np.asarray(img, dtype=np.float32)
        px = np.clip(px + np.random.default_rng(a.seed * 1000 + k).normal(0, 4, px.shape), 0, 255)
        out[k, :, :, :w] = ((px / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    np.save(a.out, out)


def pages(a, rng, fonts, alphabet):
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32)
    std = np.array([0.229, 0.224, 0.225], dtype=np.float32)
    out = np.zeros((a.count, 3, a.page, a.page), dtype=np.float32)
    for k in range(a.count):
        bg = tuple(rng.randint(180, 255) for _ in range(3))
        img = Image.new("RGB", (a.page, a.page), bg)
        draw = ImageDraw.Draw(img)
        for _ in range(rng.randint(2, 6)):
            text = " ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(2, 7))) for _ in range(rng.randint(1, 3)))
            font = ImageFont.truetype(rng.choice(fonts), rng.randint(12, 36))
            ink = tuple(rng.randint(0, 80) for _ in range(3))
            draw.text((rng.randint(0, a.page // 2), rng.randint(0, a.page - 40)), text, font=font, fill=ink)
        px = np.asarray(img, dtype=np.float32) / 255.0
        out[k] = ((px - mean) / std).transpose(2, 0, 1)
    return out


if __name__ == "__main__":
    main()
