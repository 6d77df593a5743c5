"""Compiled kernels of the camera renderer (see sim/camera.py for the geometry and the API).

Per frame: each image row looks at the ground along one straight world-space line at one distance
(the camera has no roll). The row is walked in spans of at most SPAN_UNITS of ground: the track
raster is sampled at both ends of a span, and

* if both ends fall in the same *zone* (far ground, grass gap, edge line, road half...) the whole
  span has that zone, because the lateral offset is linear along the span and zones are ordered by
  lateral offset: the span is painted with one surface class, only texture noise varies;
* if the ends are on one stretch of road but in different zones (a line or an edge inside the
  span), every pixel is classified from the linearly interpolated (lateral, s);
* otherwise (a jump of s, the end of the road, the edge of the raster band) the span is shrunk
  until one of the above holds or it is a single pixel, which gets its exact raster sample.

A pixel then costs a texture lookup (16.16 fixed point) and a colour-table lookup.
"""

from __future__ import annotations

import math
import os

import numba as nb
import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim.raster import BARRIER_BAND, FAR, sample_grid

# Threading of render_many, the package's only parallel kernel. numba's default OpenMP layer
# spins its idle workers, and on a machine shared with other busy processes that made a batch of 16
# frames take 12-15 ms instead of under 1 ms. OpenMP with a PASSIVE wait policy (workers sleep)
# measured best both idle (490 us per 16-frame batch vs 606 us for numba's workqueue layer) and
# with a competing busy process (889 vs 1020 us); see benchmarks/README.md, simulator section.
# OMP_WAIT_POLICY is read when the OpenMP runtime starts, i.e. at the first parallel call, so
# setting it here (at import) is in time. An explicit environment setting of either wins; without
# OpenMP numba falls back to its other layers.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Length of one kerb stripe along the track (units).
STRIPE_LEN = 1.0
#: Fixed-point scale of texture coordinates, and a bias (a multiple of any texture size) that keeps
#: them positive so that a shift is a floor.
FIX = 65536.0
TEX_BIAS = 1 << 44
#: Elevation (radians) at which the sky reaches its top colour.
SKY_TOP_RAD = 0.6
#: Along a row the raster is sampled every ``span`` pixels and interpolated linearly in between.
#: Linear interpolation across a bend of radius R over L units is off by about L^2 / (8 R); with
#: span = sqrt(SPAN_RADIUS / foot) pixels (foot = ground size of a pixel) that stays below half a
#: pixel for bends of radius 5 and more. A span is also at most SPAN_UNITS long, less than the
#: margin the raster keeps around the road (raster.BAND_PAD), so a span whose two ends are far from
#: the road cannot hide any road, and at most MAX_SPAN pixels.
SPAN_RADIUS = 20.0
SPAN_UNITS = 4.0
MAX_SPAN = 32

# Zones across the road, ordered by lateral offset (Z_FAR: no road nearby).
(Z_FAR, Z_GROUND_L, Z_BARRIER_L, Z_GAP_L, Z_EDGE_L, Z_ROAD_L, Z_CENTRE, Z_ROAD_R, Z_EDGE_R, Z_GAP_R,
 Z_BARRIER_R, Z_GROUND_R) = range(12)
#: Surface class of each zone, -1 where it also depends on s (kerb stripes, centre-line dashes).
ZONE_CLASS = np.array([ap.GROUND, ap.GROUND, -1, ap.GROUND, ap.EDGE, ap.ROAD, -1, ap.ROAD, ap.EDGE,
                       ap.GROUND, -1, ap.GROUND], dtype=np.int64)


@nb.njit(cache=True, error_model="numpy")
def _edges(s, left, right, centre, inv_dtab):  # pragma: no cover - jitted
    """(left edge, right edge, centre line) lateral positions at arc length ``s``."""
    k = int(s * inv_dtab + 0.5)
    if k < 0:
        k = 0
    elif k >= left.shape[0]:
        k = left.shape[0] - 1
    return left[k], right[k], centre[k]


@nb.njit(cache=True, error_model="numpy")
def _zone(lat, lo, hi, cen, barriers, margin, edge_w, centre_hw):  # pragma: no cover - jitted
    """Zone of a ground point at lateral offset ``lat`` given the road edges ``lo``/``hi`` there."""
    if lat >= 0.5 * FAR:
        return Z_FAR
    if lat < lo:
        d = lo - lat
        if d < margin:
            return Z_GAP_L
        if barriers and d < margin + BARRIER_BAND:
            return Z_BARRIER_L
        return Z_GROUND_L
    if lat > hi:
        d = lat - hi
        if d < margin:
            return Z_GAP_R
        if barriers and d < margin + BARRIER_BAND:
            return Z_BARRIER_R
        return Z_GROUND_R
    if lat - lo < edge_w:
        return Z_EDGE_L
    if hi - lat < edge_w:
        return Z_EDGE_R
    if abs(lat - cen) < centre_hw:
        return Z_CENTRE
    return Z_ROAD_L if lat < cen else Z_ROAD_R


@nb.njit(cache=True, error_model="numpy")
def _zone_at(lat, s, left, right, centre, inv_dtab, barriers, margin, edge_w, centre_hw):  # pragma: no cover
    """Zone of a ground point at (lat, s), looking the road edges up by s."""
    if lat >= 0.5 * FAR:
        return Z_FAR
    lo, hi, cen = _edges(s, left, right, centre, inv_dtab)
    return _zone(lat, lo, hi, cen, barriers, margin, edge_w, centre_hw)


@nb.njit(cache=True, error_model="numpy")
def _zone_class(zone, s, dash_frac, inv_dash):  # pragma: no cover - jitted
    """Surface class of a point in ``zone`` at arc length ``s`` (stripes and dashes need s)."""
    if zone in (Z_BARRIER_L, Z_BARRIER_R):
        return ap.BARRIER_A + (int(s * (1.0 / STRIPE_LEN)) & 1)
    if zone == Z_CENTRE:
        if inv_dash <= 0.0:
            return ap.CENTRE
        f = s * inv_dash
        return ap.CENTRE if f - math.floor(f) < dash_frac else ap.ROAD
    return ZONE_CLASS[zone]


@nb.njit(cache=True, error_model="numpy")
def _shade_row(orow, C, cls_row, tu0, tv0, dtu, dtv, texf, tmask, tshift, att, lutf, fog,
               fogc):  # pragma: no cover - jitted
    """Write a ground row: each pixel's class colour at its texture noise level, then haze.

    Separate loops for RGB / grey and with / without haze let numba unroll the channel writes.
    """
    W = cls_row.shape[0]
    tu = tu0
    tv = tv0
    for c in range(W):
        tval = np.int32(texf[(((tv >> 16) & tmask) << tshift) | ((tu >> 16) & tmask)])
        base = (cls_row[c] * ap.N_LEVELS + 8 + (((tval - 8) * att) >> 4)) * 3
        tu += dtu
        tv += dtv
        if C == 3:
            o = c * 3
            if fog == 0:
                orow[o] = lutf[base]
                orow[o + 1] = lutf[base + 1]
                orow[o + 2] = lutf[base + 2]
            else:
                for ch in range(3):
                    v = np.int32(lutf[base + ch])
                    orow[o + ch] = np.uint8(v + (((fogc[ch] - v) * fog) >> 8))
        else:
            v = np.int32(lutf[base])
            orow[c] = np.uint8(v + (((fogc[0] - v) * fog) >> 8))


@nb.njit(cache=True, error_model="numpy")
def _split_span(cls_row, c, step, la, dl, sa, ds, za, zb, lo, hi, cen, length, closed, barriers, margin,
                ew, chw, dash_frac, inv_dash):  # pragma: no cover - jitted
    """Classify pixels c .. c+step-1 of a span whose lateral offset goes linearly la, la+dl, ...

    Zones are ordered by lateral offset, so along the span they form runs; each run's end is
    found by bisection (a few zone tests instead of one per pixel). Road edges are taken where the
    span starts (they vary slowly along s). Only kerb and centre-line runs need s per pixel.
    """
    k = 0
    z = za
    while k < step:
        if z == zb:
            j = step - 1
        else:
            a, b = k, step                  # zone(a) == z, zone(b) != z
            while b - a > 1:
                m = (a + b) >> 1
                if _zone(la + m * dl, lo, hi, cen, barriers, margin, ew, chw) == z:
                    a = m
                else:
                    b = m
            j = a
        cz = ZONE_CLASS[z]
        if cz >= 0:
            for i in range(k, j + 1):
                cls_row[c + i] = cz
        else:
            for i in range(k, j + 1):
                s = sa + i * ds
                if closed:
                    if s >= length:
                        s -= length
                    elif s < 0.0:
                        s += length
                cls_row[c + i] = _zone_class(z, s, dash_frac, inv_dash)
        k = j + 1
        if k < step:
            z = _zone(la + k * dl, lo, hi, cen, barriers, margin, ew, chw)


@nb.njit(cache=True, error_model="numpy")
def _classify_row(cls_row, u0, v0, du, dv, span, data, length, closed, s_jump, left, right, centre,
                  inv_dtab, barriers, margin, ew, chw, dash_frac, inv_dash):  # pragma: no cover
    """Surface class of every pixel of a ground row; pixel c sees raster point (u0 + c du, v0 + c dv)."""
    W = cls_row.shape[0]
    half = 0.5 * FAR
    la, sa = sample_grid(data, u0, v0, length, closed, s_jump)
    za = _zone_at(la, sa, left, right, centre, inv_dtab, barriers, margin, ew, chw)
    c = 0
    while c < W - 1:
        step = min(span, W - 1 - c)
        while True:   # shrink the span until it is uniform, interpolable, or one pixel
            c1 = c + step
            lb, sb = sample_grid(data, u0 + c1 * du, v0 + c1 * dv, length, closed, s_jump)
            zb = _zone_at(lb, sb, left, right, centre, inv_dtab, barriers, margin, ew, chw)
            d = sb - sa
            if closed:
                if d > 0.5 * length:
                    d -= length
                elif d < -0.5 * length:
                    d += length
            smooth = la < half and lb < half and abs(d) < s_jump
            uniform = za == zb and ZONE_CLASS[za] >= 0 and (smooth or za == Z_FAR)
            if uniform or smooth or step == 1:
                break
            step = max(1, step // 4)
        if uniform:
            cls = ZONE_CLASS[za]
            for k in range(c, c1):
                cls_row[k] = cls
        elif smooth:
            _split_span(cls_row, c, step, la, (lb - la) / step, sa, d / step, za, zb,
                        *_edges(sa, left, right, centre, inv_dtab), length, closed, barriers, margin,
                        ew, chw, dash_frac, inv_dash)
        else:
            cls_row[c] = _zone_class(za, sa, dash_frac, inv_dash)
        la, sa, za = lb, sb, zb
        c = c1
    cls_row[W - 1] = _zone_class(za, sa, dash_frac, inv_dash)


@nb.njit(cache=True, error_model="numpy")
def render_one(out, x, z, yaw, cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, data, ox, oz, h,
               left, right, centre, inv_dtab, length, closed, s_jump, barriers, margin,
               lut, prm, tex):  # pragma: no cover - jitted
    """Render one frame into ``out`` (H, W, C) for a car at (x, z, yaw); see sim/camera.py."""
    H, W, C = out.shape
    cam_h = cam_h0 + prm[ap.P_CAM_H]
    pitch = pitch0 + prm[ap.P_PITCH]
    sp, cp = math.sin(pitch), math.cos(pitch)
    fx, fz = math.sin(yaw), math.cos(yaw)          # forward
    rx, rz = fz, -fx                               # right
    inv_h = 1.0 / h
    nscale = prm[ap.P_NSCALE]
    fog0, fog1 = prm[ap.P_FOG0], prm[ap.P_FOG1]
    inv_dash = 1.0 / prm[ap.P_DASH_PERIOD] if prm[ap.P_DASH_PERIOD] > 0 else 0.0
    dash_frac = prm[ap.P_DASH_LEN] * inv_dash
    tmask = tex.shape[0] - 1
    tshift = int(round(math.log2(tex.shape[0])))
    fogc = np.empty(3, dtype=np.int32)
    for ch in range(3):
        fogc[ch] = np.int32(min(max(prm[ap.P_FOG + ch], 0.0), 255.0))
    out2 = out.reshape((H, W * C))
    cls_row = np.empty(W, dtype=np.int64)
    sky = np.empty(3, dtype=np.uint8)
    lutf = lut.reshape(-1)
    texf = tex.reshape(-1)
    dxr = 2.0 * tan_h / W                          # camera-plane step per column
    for r in range(H):
        orow = out2[r]
        yn = crop + (1.0 - crop) * (r + 0.5) / H   # row centre in the full frame (0 top, 1 bottom)
        yu = tan_v * (1.0 - 2.0 * yn)
        dy = yu * cp - sp                          # vertical component of the row's rays
        horiz = cp + yu * sp                       # forward component
        dist = 1e30
        t = 0.0
        if dy < -1e-9:
            t = cam_h / -dy
            dist = t * horiz
        if dist >= fog1:                           # sky, or ground lost in the haze
            k = 0.0 if dy < 0.0 else min(math.atan2(dy, horiz) / SKY_TOP_RAD, 1.0)
            for ch in range(C):
                v = prm[ap.P_SKY_H + ch] + k * (prm[ap.P_SKY_T + ch] - prm[ap.P_SKY_H + ch])
                sky[ch] = np.uint8(min(max(v, 0.0), 255.0))
            if C == 3:
                for c in range(W):
                    orow[3 * c] = sky[0]
                    orow[3 * c + 1] = sky[1]
                    orow[3 * c + 2] = sky[2]
            else:
                orow[:] = sky[0]
            continue
        fog = 0
        if dist > fog0:
            fog = int(256.0 * (dist - fog0) / (fog1 - fog0))
        att = int(16.0 * min(max(1.2 - dist / 30.0, 0.3), 1.0))   # noise fades with distance
        foot = t * dxr                             # lateral ground size of one pixel (units)
        ew = max(prm[ap.P_EDGE_W], foot)           # lines never thinner than about a pixel
        chw = max(0.5 * prm[ap.P_CENTRE_W], 0.5 * foot)
        fwd = dist + cam_fwd
        lat0 = t * (-tan_h + 0.5 * dxr)
        gx0 = x + fx * fwd + rx * lat0
        gz0 = z + fz * fwd + rz * lat0
        gdx = rx * foot
        gdz = rz * foot
        span = max(1, min(MAX_SPAN, int(math.sqrt(SPAN_RADIUS / foot)), int(SPAN_UNITS / foot)))
        # Texture coordinates in 16.16 fixed point, biased positive so that >> is a floor.
        tu0 = np.int64((gx0 + prm[ap.P_NOFFX]) * nscale * FIX) + TEX_BIAS
        tv0 = np.int64((gz0 + prm[ap.P_NOFFZ]) * nscale * FIX) + TEX_BIAS
        _classify_row(cls_row, (gx0 - ox) * inv_h, (gz0 - oz) * inv_h, gdx * inv_h, gdz * inv_h, span,
                      data, length, closed, s_jump, left, right, centre, inv_dtab, barriers, margin, ew,
                      chw, dash_frac, inv_dash)
        _shade_row(orow, C, cls_row, tu0, tv0, np.int64(gdx * nscale * FIX), np.int64(gdz * nscale * FIX),
                   texf, tmask, tshift, att, lutf, fog, fogc)


@nb.njit(cache=True, parallel=True)
def render_many(out, xs, zs, yaws, app_idx, cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, data, ox, oz,
                h, left, right, centre, inv_dtab, length, closed, s_jump, barriers, margin,
                luts, prms, tex):  # pragma: no cover - jitted
    """Render ``len(xs)`` frames in parallel; car i uses appearance tables ``app_idx[i]``."""
    for i in nb.prange(xs.shape[0]):
        a = app_idx[i]
        render_one(out[i], xs[i], zs[i], yaws[i], cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, data,
                   ox, oz, h, left, right, centre, inv_dtab, length, closed, s_jump, barriers, margin,
                   luts[a], prms[a], tex)
