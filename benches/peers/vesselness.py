"""Times csnav's vesselness stage against scikit-image, SimpleITK and OpenCV-Python on the
same simulated frames at the same scales, and scores every method's Dice against the
simulator's vessel mask. Called by vesselness.sh, which makes the venv and builds csnav."""

import argparse
import json
import re
import statistics
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom
import SimpleITK as sitk
from PIL import Image
from skimage.filters import frangi, threshold_otsu


def scales(size):
    """csnav's scales (Scales::for_matrix): 6 radii from 1 to 12 px at 512, geometric;
    sigma = max(r / sqrt(3), 0.7)."""
    k = size / 512.0
    radii = np.geomspace(1.0 * k, 12.0 * k, 6)
    return [max(r / np.sqrt(3.0), 0.7) for r in radii]


def opencv_frangi(img, sigmas, beta=0.5):
    """Frangi's measure from Gaussian derivatives by OpenCV (bright vessels on dark), c as
    half the largest Hessian norm over scales, as Frangi 1998 suggests."""
    per_scale = []
    for s in sigmas:
        g = cv2.GaussianBlur(img, (0, 0), s)
        dxx = cv2.Sobel(g, cv2.CV_32F, 2, 0, ksize=3) * s * s
        dyy = cv2.Sobel(g, cv2.CV_32F, 0, 2, ksize=3) * s * s
        dxy = cv2.Sobel(g, cv2.CV_32F, 1, 1, ksize=3) * s * s
        tmp = np.sqrt((dxx - dyy) ** 2 + 4 * dxy**2)
        l1 = 0.5 * (dxx + dyy + tmp)
        l2 = 0.5 * (dxx + dyy - tmp)
        swap = np.abs(l1) > np.abs(l2)
        small, large = np.where(swap, l2, l1), np.where(swap, l1, l2)
        per_scale.append((small, large))
    c = 0.5 * max(float(np.sqrt(a**2 + b**2).max()) for a, b in per_scale)
    out = np.zeros_like(img)
    for small, large in per_scale:
        rb2 = (small / np.where(large == 0, 1e-10, large)) ** 2
        s2 = small**2 + large**2
        v = np.exp(-rb2 / (2 * beta**2)) * (1 - np.exp(-s2 / (2 * c**2)))
        v[large > 0] = 0  # bright vessels: the across-vessel curvature is negative
        out = np.maximum(out, v)
    return out


def sitk_objectness(img, sigmas):
    """SimpleITK: the Hessian objectness measure for bright 1D structures (ITK's
    HessianToObjectnessMeasureImageFilter) on the image smoothed by a recursive Gaussian and
    scaled by sigma^2 (scale normalisation), maximum over scales."""
    image = sitk.GetImageFromArray(img)
    out = None
    for s in sigmas:
        smoothed = sitk.SmoothingRecursiveGaussian(image, float(s)) * float(s * s)
        v = sitk.ObjectnessMeasure(
            smoothed, alpha=0.5, beta=0.5, gamma=0.05,
            scaleObjectnessMeasure=True, objectDimension=1, brightObject=True,
        )
        out = v if out is None else sitk.Maximum(out, v)
    return sitk.GetArrayFromImage(out)


def dice(a, b):
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 2.0 * (a & b).sum() / total if total else 0.0


def otsu_mask(v):
    v = v.astype(np.float64)
    v = v / v.max() if v.max() > 0 else v
    positive = v[v > 0]
    return v > threshold_otsu(positive) if positive.size > 16 else v > 0


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000.0)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csnav", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    work = Path(args.work)
    rows = []
    for size in (512, 1024):
        case = work / f"case{size}"
        subprocess.run(
            [args.csnav, "simulate", "--seed", "7", "--view", "LAO30", "--size", str(size), "--bits", "12",
             "--frames", "12", "--out", str(case)],
            check=True, stdout=subprocess.DEVNULL,
        )
        peak = json.loads((case / "lao30.truth.json").read_text())["peak_frame"]
        truth = np.array(Image.open(case / "lao30.mask.png")) > 0
        ds = pydicom.dcmread(case / "lao30.dcm")
        frame = ds.pixel_array[peak].astype(np.float32)
        attenuation = 1.0 - frame / float(2 ** int(ds.BitsStored) - 1)  # vessels bright, as in csnav
        sigmas = scales(size)

        # csnav: the vesselness stage of `csnav segment` on the same frame (its top-hat input).
        csnav_ms = []
        out = work / f"seg{size}"
        for _ in range(args.repeats):
            p = subprocess.run(
                [args.csnav, "segment", str(case / "lao30.dcm"), "--frame", str(peak), "--out", str(out)],
                check=True, capture_output=True, text=True,
            )
            csnav_ms.append(float(re.search(r"vesselness ([0-9.]+)", p.stdout).group(1)))
        csnav_t = statistics.median(csnav_ms)
        csnav_v = np.array(Image.open(out / "vesselness.png")).astype(np.float64)
        rows.append((size, "csnav Jerman (vesselness stage)", csnav_t, dice(otsu_mask(csnav_v), truth)))
        rows.append((size, "csnav whole pipeline mask", None, dice(np.array(Image.open(out / "mask.png")) > 0, truth)))

        t, v = timed(lambda: frangi(attenuation, sigmas=sigmas, black_ridges=False), args.repeats)
        rows.append((size, "scikit-image frangi", t, dice(otsu_mask(v), truth)))
        t, v = timed(lambda: sitk_objectness(attenuation, sigmas), args.repeats)
        rows.append((size, "SimpleITK Hessian objectness", t, dice(otsu_mask(v), truth)))
        t, v = timed(lambda: opencv_frangi(attenuation, sigmas), args.repeats)
        rows.append((size, "OpenCV-Python Hessian Frangi", t, dice(otsu_mask(v), truth)))

    print(f"vesselness on a simulated LAO 30 frame, 12 bit, 6 scales (radius 1-12 px at 512), median of {args.repeats}")
    print(f"{'size':>5}  {'method':<34} {'ms':>9} {'x csnav':>8} {'Dice':>6}")
    reference = {r[0]: r[2] for r in rows if r[1].startswith("csnav Jerman")}
    for size, name, ms, d in rows:
        t = f"{ms:9.1f}" if ms is not None else f"{'-':>9}"
        ratio = f"{ms / reference[size]:8.1f}" if ms is not None else f"{'-':>8}"
        print(f"{size:>5}  {name:<34} {t} {ratio} {d:6.3f}")
    print("Dice: Otsu threshold of each vesselness map against the simulator's vessel mask (the whole")
    print("pipeline row: csnav's final tree mask). Peers run on the attenuation image; csnav's stage on its top-hat.")


if __name__ == "__main__":
    main()
