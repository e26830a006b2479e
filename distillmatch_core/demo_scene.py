"""A procedurally rendered RGB + radiometric-thermal example pair with a known homography.

The README's demo needs an RGB-thermal pair the repository may contain, so it is generated,
not copied: one street scene (sky, facades with windows, trees, road, cars, people) is drawn
twice, once as a colour photograph and once as a temperature map (people and engines hot,
sky cold, glass reflecting the cold sky; polarity differs from the visible image by design)
rendered as 16-bit counts with optics blur and sensor noise, as an uncooled microbolometer
would. The thermal camera sees the scene through a known homography (rig offset).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import cv2
import numpy as np


@dataclass
class DemoPair:
    rgb: np.ndarray  # (480, 640, 3) uint8
    thermal: np.ndarray  # (512, 640) uint16 radiometric counts
    H_rgb_to_thermal: np.ndarray  # (3, 3) maps RGB pixels to thermal pixels


def _scene(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    """-> colour (h, w, 3) uint8 and temperature (h, w) float32 in kelvin of one random street."""
    colour = np.zeros((h, w, 3), np.float32)
    temp = np.zeros((h, w), np.float32)
    horizon = int(h * 0.45)
    sky = np.linspace(200, 150, horizon)[:, None, None] * np.array([0.6, 0.8, 1.0])[None, None]
    colour[:horizon] = sky
    temp[:horizon] = np.linspace(255, 265, horizon)[:, None]
    colour[horizon:] = (90, 90, 95)
    temp[horizon:] = 295
    x = 0
    while x < w:  # facades
        bw = int(rng.integers(70, 150))
        top = int(rng.integers(int(h * 0.08), horizon - 20))
        shade = rng.uniform(0.5, 1.0)
        base = np.array(rng.choice([(180, 150, 120), (150, 150, 160), (190, 170, 140), (120, 90, 80)]))
        colour[top:horizon + 40, x:x + bw] = base * shade
        temp[top:horizon + 40, x:x + bw] = rng.uniform(283, 290)
        for wy in range(top + 12, horizon + 20, 28):
            for wx in range(x + 10, x + bw - 18, 24):
                lit = rng.random() < 0.3
                colour[wy:wy + 14, wx:wx + 12] = (250, 230, 160) if lit else (60, 80, 110)
                temp[wy:wy + 14, wx:wx + 12] = 291 if lit else 268  # glass mirrors the cold sky
        x += bw + int(rng.integers(0, 20))
    road_top = horizon + 40
    colour[road_top:] = (70, 70, 72)
    temp[road_top:] = 300
    for lx in range(0, w, 80):  # lane marks: bright in RGB, nearly invisible in IR
        cv2.rectangle(colour, (lx, road_top + 60), (lx + 40, road_top + 66), (235, 235, 235), -1)
    for _ in range(5):  # trees: dark green, cool leaves
        cx, cy, r = int(rng.integers(0, w)), int(rng.integers(horizon - 40, horizon + 20)), int(rng.integers(18, 35))
        cv2.circle(colour, (cx, cy), r, (40, 110, 50), -1)
        cv2.circle(temp, (cx, cy), r, 286, -1)
        cv2.rectangle(colour, (cx - 4, cy), (cx + 4, cy + r + 30), (80, 60, 40), -1)
        cv2.rectangle(temp, (cx - 4, cy), (cx + 4, cy + r + 30), 288, -1)
    for _ in range(3):  # cars: varied paint, hot engine and wheels
        cx, cy = int(rng.integers(40, w - 120)), int(rng.integers(road_top + 10, h - 50))
        paint = tuple(int(v) for v in rng.integers(30, 230, 3))
        cv2.rectangle(colour, (cx, cy), (cx + 100, cy + 36), paint, -1)
        cv2.rectangle(temp, (cx, cy), (cx + 100, cy + 36), 293, -1)
        cv2.rectangle(temp, (cx, cy + 8), (cx + 28, cy + 30), 325, -1)
        for wx in (cx + 18, cx + 82):
            cv2.circle(colour, (wx, cy + 36), 9, (20, 20, 20), -1)
            cv2.circle(temp, (wx, cy + 36), 9, 310, -1)
    for _ in range(4):  # people: hot bodies
        px, py = int(rng.integers(20, w - 20)), int(rng.integers(horizon + 10, h - 60))
        cloth = tuple(int(v) for v in rng.integers(20, 200, 3))
        cv2.rectangle(colour, (px - 6, py), (px + 6, py + 40), cloth, -1)
        cv2.circle(colour, (px, py - 7), 6, (200, 160, 130), -1)
        cv2.rectangle(temp, (px - 6, py), (px + 6, py + 40), 303, -1)
        cv2.circle(temp, (px, py - 7), 6, 307, -1)
    texture = rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    colour = np.clip(cv2.GaussianBlur(colour, (0, 0), 0.7) + texture, 0, 255).astype(np.uint8)
    return colour, temp


def render_demo_pair(seed: int = 7) -> DemoPair:
    rng = np.random.default_rng(seed)
    h, w = 540, 720  # rendered larger, then both cameras crop/resample it
    colour, temp = _scene(rng, h, w)
    # RGB camera: a plain crop. Thermal camera: rotated 3 deg, scaled 0.92, shifted, its own size.
    H_world_to_rgb = np.array([[1, 0, -40], [0, 1, -30], [0, 0, 1]], np.float64)
    angle = np.deg2rad(3.0)
    s = 0.92
    H_world_to_thermal = np.array([[s * np.cos(angle), -s * np.sin(angle), -10],
                                   [s * np.sin(angle), s * np.cos(angle), -5], [2e-5, 1e-5, 1]], np.float64)
    rgb = cv2.warpPerspective(colour, H_world_to_rgb, (640, 480), flags=cv2.INTER_AREA)
    thermal_k = cv2.warpPerspective(temp, H_world_to_thermal, (640, 512), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
    thermal_k = cv2.GaussianBlur(thermal_k, (0, 0), 1.6)  # optics + detector footprint
    counts = 7000 + (thermal_k - 250) * 40  # a linear radiometric response, ~40 counts per kelvin
    counts += rng.normal(0, 12, counts.shape) + np.linspace(-30, 30, 640)[None]  # NETD + column drift
    thermal = np.clip(counts, 0, 65535).astype(np.uint16)
    H = H_world_to_thermal @ np.linalg.inv(H_world_to_rgb)
    return DemoPair(rgb=rgb, thermal=thermal, H_rgb_to_thermal=H / H[2, 2])
