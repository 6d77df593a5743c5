"""Compiled kernels of the camera renderer (see sim/camera.py for the geometry and the API).

Per frame, rows are drawn from the bottom of the image up. Each image row looks at the ground
along one straight world-space line at one distance (the camera has no roll). The row is walked in
spans of at most SPAN_UNITS of ground: the track raster is sampled at both ends of a span, and

* if both ends fall in the same *zone* (ground, a road lane, a painted line, ground beyond a
  wall...) the whole span has that zone, because the lateral offset is linear along the span and
  zones are ordered by lateral offset: the span is painted with one surface class;
* if the ends are on one stretch of road but in different zones, each zone's run inside the span
  is found by bisection on the (linear) lateral offset;
* otherwise (a jump of s, the end of the road, the edge of the raster band) the span is shrunk
  until one of the above holds or it is a single pixel, which gets its exact raster sample.

Zones whose class depends on the arc length (dashed lines, the start line) are classified per
pixel. A pixel then costs a texture lookup (16.16 fixed point) and a colour-table lookup; the
car's shadow darkens an ellipse of the ground rows.

Vertical objects: where a column's ground first crosses a wall face (its class turns into "ground
beyond the wall"), the wall stands; its face is taken as the vertical plane through that point
along the track, and every pixel above in that column is intersected with it until the ray passes
the wall's top: below ``height`` the wall, up to ``fence_height`` a see-through chain-link fence
(posts, a top rail and a translucent mesh). Cones are drawn last, as cones of revolution seen at
their distance, hidden where a wall stands in front of them.

All tracks of a batch are read from one packed atlas (sim/camera.py: ``RenderAtlas``), so cars on
different tracks are rendered in one parallel call.
"""

from __future__ import annotations

import math
import os

import numba as nb
import numpy as np

from donkeyrl.sim import appearance as ap
from donkeyrl.sim.raster import FAR, ZF_CENTRE, ZF_SURFACE, sample_grid

# Threading of render_many, the package's only parallel kernel. numba's default OpenMP layer
# spins its idle workers, and on a machine shared with other busy processes that made a batch of 16
# frames take 12-15 ms instead of under 1 ms. OpenMP with a PASSIVE wait policy (workers sleep)
# measured best both idle and loaded; see benchmarks/README.md, simulator section.
# OMP_WAIT_POLICY is read when the OpenMP runtime starts, i.e. at the first parallel call, so
# setting it here (at import) is in time. An explicit environment setting of either wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: Fixed-point scale of texture coordinates, and a bias (a multiple of any texture size) that keeps
#: them positive so that a shift is a floor.
FIX = 65536.0
TEX_BIAS = 1 << 44
#: Elevation (radians) at which the sky reaches its top colour.
SKY_TOP_RAD = 0.6
#: Along a row the raster is sampled every ``span`` pixels and interpolated linearly in between
#: (error below half a pixel for bends of radius 5 and more); a span is at most SPAN_UNITS long
#: (less than the raster's margin, so it cannot hide any road) and at most MAX_SPAN pixels.
SPAN_RADIUS = 20.0
SPAN_UNITS = 4.0
MAX_SPAN = 32
#: Spacing (units) of fence posts and barrier stripes along a wall; post width; fence mesh opacity.
POST_SPACING = 3.0
POST_WIDTH = 0.12
STRIPE_LEN = 1.0
MESH_ALPHA = 90  # of 256
#: Size (units) of a start line's checker squares, and the period of a dashed start line's dashes.
CHECKER = 0.6
DASH_ACROSS = 0.35
#: Layout of the atlas' per-track rows (see sim/camera.py RenderAtlas): offset of the tile index
#: in the flat index buffer, its shape, the track's first tile in the tile array, the grid's
#: nodes, then the offsets and sizes of its tables, zones and cones.
(M_IOFF, M_NTZ, M_NTX, M_TILE0, M_NZ, M_NX, M_TOFF, M_NTAB, M_NB, M_ZOFF, M_COFF, M_NCONE) = range(12)
N_META = 12
(T_OX, T_OZ, T_H, T_INV_DTAB, T_LENGTH, T_CLOSED, T_SJUMP, T_START, T_START_DEPTH, T_WL_STYLE, T_WL_H, T_WL_F,
 T_WR_STYLE, T_WR_H, T_WR_F, T_WL_BOUND, T_WR_BOUND, T_START_S) = range(18)
N_TPARAMS = 18
#: Columns of the per-zone rows: class, dash length, dash period, flags, boundary half-width.
ZC_CLASS, ZC_DASH, ZC_PERIOD, ZC_FLAGS, ZC_HW = range(5)
N_ZCOLS = 5
#: Wall styles (track.WALL_STYLES order).
STYLE_WALL, STYLE_BARRIER = 0, 1


@nb.njit(cache=True, inline="always", error_model="numpy")
def _tab_index(s, inv_dtab, ntab):  # pragma: no cover - jitted
    k = int(s * inv_dtab + 0.5)
    if k < 0:
        return 0
    if k >= ntab:
        return ntab - 1
    return k


@nb.njit(cache=True, inline="always", error_model="numpy")
def _zone_of(lat, k, bound, hw, nb_):  # pragma: no cover - jitted
    """Zone index of lateral offset ``lat`` at table index ``k`` (-1 = far from any road)."""
    if lat >= 0.5 * FAR:
        return -1
    z = 0
    while z < nb_ and lat >= bound[z, k] + hw[z]:
        z += 1
    return z


@nb.njit(cache=True, inline="always", error_model="numpy")
def _s_dependent(z, zdash, zflags, near_start):  # pragma: no cover - jitted
    """True when zone ``z``'s class depends on the arc length (a dash, or the start line near)."""
    if z < 0:
        return False
    return zdash[z, 0] > 0.0 or (near_start and (zflags[z] & ZF_SURFACE) != 0)


@nb.njit(cache=True, error_model="numpy")
def _pixel_class(z, lat, s, zcls, zdash, zflags, start, start_s, start_depth, length, closed):  # pragma: no cover
    """Surface class of a point of zone ``z`` at (lat, s): dashes, the start line (painted from
    ``start_s`` over ``start_depth``)."""
    if z < 0:
        return ap.GROUND
    c = zcls[z]
    d, p = zdash[z, 0], zdash[z, 1]
    if d > 0.0:
        f = s / p
        if f - math.floor(f) >= d / p:
            c = ap.ROAD
    if start > 0 and (zflags[z] & ZF_SURFACE) != 0:
        ss = s - start_s
        if closed:
            if ss > 0.5 * length:
                ss -= length
            elif ss < -0.5 * length:
                ss += length
        if 0.0 <= ss < start_depth:
            if start == 1:   # checkered
                c = ap.START_A + ((int(math.floor(lat / CHECKER)) + int(math.floor(ss / CHECKER))) & 1)
            else:            # dashed: a white band with short dark dashes across the road
                f = lat / DASH_ACROSS
                c = ap.START_B if f - math.floor(f) < 0.33 else ap.START_A
    return c


@nb.njit(cache=True, error_model="numpy")
def _near_start(sa, sb, start, start_s, start_depth, length):  # pragma: no cover - jitted
    """Whether the arc lengths between ``sa`` and ``sb`` may touch the start line band."""
    if start <= 0:
        return False
    lo, hi = min(sa, sb), max(sa, sb)
    if hi - lo > 0.5 * length:  # the span wraps over s = 0
        return True
    a, b = start_s - 1.0, start_s + start_depth + 1.0
    if a < 0.0:
        return lo < b or hi > a + length
    if b > length:
        return hi > a or lo < b - length
    return hi > a and lo < b


@nb.njit(cache=True, error_model="numpy")
def _classify_row(cls_row, u0, v0, du, dv, span, tidx, tiles, toff, nzg, nxg, length, closed, s_jump, bound, hw,
                  nb_, inv_dtab, zcls, zdash, zflags, start, start_s, start_depth):  # pragma: no cover - jitted
    """Surface class of every pixel of a ground row; pixel c sees raster point (u0 + c du, v0 + c dv)."""
    W = cls_row.shape[0]
    ntab = bound.shape[1]
    half = 0.5 * FAR
    la, sa = sample_grid(tidx, tiles, toff, nzg, nxg, u0, v0, length, closed, s_jump)
    ka = _tab_index(sa, inv_dtab, ntab)
    za = _zone_of(la, ka, bound, hw, nb_)
    c = 0
    while c < W - 1:
        step = min(span, W - 1 - c)
        while True:   # shrink the span until it is uniform, interpolable, or one pixel
            c1 = c + step
            lb, sb = sample_grid(tidx, tiles, toff, nzg, nxg, u0 + c1 * du, v0 + c1 * dv, length, closed, s_jump)
            zb = _zone_of(lb, _tab_index(sb, inv_dtab, ntab), bound, hw, nb_)
            d = sb - sa
            if closed:
                if d > 0.5 * length:
                    d -= length
                elif d < -0.5 * length:
                    d += length
            smooth = la < half and lb < half and abs(d) < s_jump
            near = _near_start(sa, sb, start, start_s, start_depth, length)
            uniform = za == zb and not _s_dependent(za, zdash, zflags, near) and (smooth or za < 0)
            if uniform or smooth or step == 1:
                break
            step = max(1, step // 4)
        if uniform:
            cls = ap.GROUND if za < 0 else zcls[za]
            for k in range(c, c1):
                cls_row[k] = cls
        elif smooth:
            # runs of zones along the span, found by bisection on the linear lateral offset
            dl = (lb - la) / step
            dsp = d / step
            kk = _tab_index(sa, inv_dtab, ntab)
            i = 0
            z = za
            while i < step:
                if z == zb:
                    j = step - 1
                else:
                    a, b = i, step
                    while b - a > 1:
                        m = (a + b) >> 1
                        if _zone_of(la + m * dl, kk, bound, hw, nb_) == z:
                            a = m
                        else:
                            b = m
                    j = a
                if _s_dependent(z, zdash, zflags, near):
                    for q in range(i, j + 1):
                        s = sa + q * dsp
                        if closed:
                            if s >= length:
                                s -= length
                            elif s < 0.0:
                                s += length
                        cls_row[c + q] = _pixel_class(z, la + q * dl, s, zcls, zdash, zflags, start, start_s,
                                                      start_depth, length, closed)
                else:
                    cz = ap.GROUND if z < 0 else zcls[z]
                    for q in range(i, j + 1):
                        cls_row[c + q] = cz
                i = j + 1
                if i < step:
                    z = _zone_of(la + i * dl, kk, bound, hw, nb_)
        else:
            cls_row[c] = _pixel_class(za, la, sa, zcls, zdash, zflags, start, start_s, start_depth, length, closed)
        la, sa, za = lb, sb, zb
        c = c1
    cls_row[W - 1] = _pixel_class(za, la, sa, zcls, zdash, zflags, start, start_s, start_depth, length, closed)


@nb.njit(cache=True, error_model="numpy")
def _shade_row(orow, C, cls_row, tu0, tv0, dtu, dtv, texf, tmask, tshift, att, lutf, fog,
               fogc):  # pragma: no cover - jitted
    """Write a ground row: each pixel's class colour at its texture noise level, then haze."""
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


@nb.njit(cache=True, inline="always", error_model="numpy")
def _put(orow, C, c, lutf, cls, level, fog, fogc):  # pragma: no cover - jitted
    """Write one pixel of class ``cls`` at noise ``level`` (0..N_LEVELS-1) with haze ``fog``/256."""
    base = (cls * ap.N_LEVELS + level) * 3
    if C == 3:
        if fog == 0:
            orow[c * 3] = lutf[base]
            orow[c * 3 + 1] = lutf[base + 1]
            orow[c * 3 + 2] = lutf[base + 2]
            return
        for ch in range(3):
            v = np.int32(lutf[base + ch])
            orow[c * 3 + ch] = np.uint8(v + (((fogc[ch] - v) * fog) >> 8))
    else:
        v = np.int32(lutf[base])
        orow[c] = np.uint8(v + (((fogc[0] - v) * fog) >> 8))


@nb.njit(cache=True, inline="always", error_model="numpy")
def _blend(orow, C, c, lutf, cls, alpha, fog, fogc):  # pragma: no cover - jitted
    """Blend class ``cls`` (mid noise level) over the pixel with opacity ``alpha``/256."""
    base = (cls * ap.N_LEVELS + 8) * 3
    for ch in range(C):
        v = np.int32(lutf[base + ch])
        v = v + (((fogc[ch] - v) * fog) >> 8)
        o = np.int32(orow[c * C + ch])
        orow[c * C + ch] = np.uint8(o + (((v - o) * alpha) >> 8))


@nb.njit(cache=True, inline="always", error_model="numpy")
def _fog_of(dist, fog0, fog1):  # pragma: no cover - jitted
    if dist <= fog0:
        return 0
    if dist >= fog1:
        return 256
    return int(256.0 * (dist - fog0) / (fog1 - fog0))


@nb.njit(cache=True, error_model="numpy")
def render_one(out, x, z, yaw, cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, tibuf, tiles, gm, tp, tabs, zarr, cones,
               lut, prm, tex):  # pragma: no cover - jitted
    """Render one frame into ``out`` (H, W, C) for a car at (x, z, yaw) on the atlas track
    described by ``gm`` (meta row) and ``tp`` (parameter row); see sim/camera.py."""
    H, W, C = out.shape
    # ---- the track's arrays, views into the atlas
    nzg, nxg = gm[M_NZ], gm[M_NX]
    ntz, ntx = gm[M_NTZ], gm[M_NTX]
    tidx = tibuf[gm[M_IOFF]:gm[M_IOFF] + ntz * ntx].reshape((ntz, ntx))
    toff = gm[M_TILE0]
    ntab, nb_ = gm[M_NTAB], gm[M_NB]
    t0 = gm[M_TOFF]
    bound = tabs[t0:t0 + nb_ * ntab].reshape((nb_, ntab))
    tang = tabs[t0 + nb_ * ntab:t0 + (nb_ + 2) * ntab].reshape((2, ntab))
    zrows = zarr[gm[M_ZOFF]:gm[M_ZOFF] + nb_ + 1]
    ox, oz, h = tp[T_OX], tp[T_OZ], tp[T_H]
    inv_dtab, length, closed, s_jump = tp[T_INV_DTAB], tp[T_LENGTH], tp[T_CLOSED] > 0.5, tp[T_SJUMP]
    start, start_s, start_depth = int(tp[T_START]), tp[T_START_S], tp[T_START_DEPTH]
    # ---- the look
    dash_mode = int(prm[ap.P_DASH_MODE])
    zcls = np.empty(nb_ + 1, dtype=np.int64)
    zflags = np.empty(nb_ + 1, dtype=np.int64)
    zdash = np.zeros((nb_ + 1, 2))
    for k in range(nb_ + 1):
        zcls[k] = int(zrows[k, ZC_CLASS])
        zflags[k] = int(zrows[k, ZC_FLAGS])
        if dash_mode == 0 and zrows[k, ZC_DASH] > 0.0:
            zdash[k, 0], zdash[k, 1] = zrows[k, ZC_DASH], zrows[k, ZC_PERIOD]
        elif dash_mode == 2 and (zflags[k] & ZF_CENTRE) != 0:
            zdash[k, 0], zdash[k, 1] = 3.0, 6.0
    hw0 = np.empty(nb_)
    hw = np.empty(nb_)
    for k in range(nb_):
        hw0[k] = zrows[k, ZC_HW] * prm[ap.P_LINE_W]
    walls_on = prm[ap.P_WALLS] > 0.5 and (tp[T_WL_STYLE] >= 0.0 or tp[T_WR_STYLE] >= 0.0)
    cam_h = cam_h0 + prm[ap.P_CAM_H]
    pitch = pitch0 + prm[ap.P_PITCH]
    yaw_c = yaw + prm[ap.P_YAW]
    sp, cp = math.sin(pitch), math.cos(pitch)
    fx, fz = math.sin(yaw_c), math.cos(yaw_c)      # forward
    rx, rz = fz, -fx                               # right
    camx, camz = x + math.sin(yaw) * cam_fwd, z + math.cos(yaw) * cam_fwd
    inv_h = 1.0 / h
    nscale = prm[ap.P_NSCALE]
    fog0, fog1 = prm[ap.P_FOG0], prm[ap.P_FOG1]
    tmask = tex.shape[0] - 1
    tshift = int(round(math.log2(tex.shape[0])))
    fogc = np.empty(3, dtype=np.int32)
    for ch in range(3):
        fogc[ch] = np.int32(min(max(prm[ap.P_FOG + ch], 0.0), 255.0))
    out2 = out.reshape((H, W * C))
    cls_row = np.empty(W, dtype=np.int64)
    lutf = lut.reshape(-1)
    texf = tex.reshape(-1)
    dxr = 2.0 * tan_h / W                          # camera-plane step per column
    # ---- per-column wall state. A pixel ray (xu, dy, horiz) meets the face plane at
    # tt = w_num / (w_a + w_b horiz), at height cam_h + dy tt and along-wall position
    # w_u0 + tt (w_ua + w_ub horiz)
    active = np.zeros(W, dtype=np.bool_)
    prev_beyond = np.zeros(W, dtype=np.bool_)
    w_num = np.empty(W)
    w_a = np.empty(W)
    w_b = np.empty(W)
    w_u0 = np.empty(W)
    w_ua = np.empty(W)
    w_ub = np.empty(W)
    w_fog = np.empty(W, dtype=np.int64)
    w_side = np.empty(W, dtype=np.int64)
    wall_fwd = np.full(W, 1e30)                    # forward distance of each column's nearest wall
    wl_h, wl_f, wl_style = tp[T_WL_H], tp[T_WL_F], int(tp[T_WL_STYLE])
    wr_h, wr_f, wr_style = tp[T_WR_H], tp[T_WR_F], int(tp[T_WR_STYLE])
    shadow = prm[ap.P_SHADOW]
    sh_f, sh_l = prm[ap.P_SHADOW_F], prm[ap.P_SHADOW_L]
    sh_a, sh_b = 0.5 * prm[ap.P_SHADOW_LEN], 0.5 * prm[ap.P_SHADOW_WID]
    sh_keep = int(256.0 * (1.0 - shadow))
    backdrop = prm[ap.P_BACKDROP]
    yaw_cols = yaw_c * W / (2.0 * math.atan(tan_h))  # backdrop texture turns with the camera
    for r in range(H - 1, -1, -1):
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
        ground = dist < fog1
        if not ground:                             # sky, or ground lost in the haze
            elev = math.atan2(dy, horiz)
            ksky = 0.0 if dy < 0.0 else min(elev / SKY_TOP_RAD, 1.0)
            for ch in range(C):
                v = prm[ap.P_SKY_H + ch] + ksky * (prm[ap.P_SKY_T + ch] - prm[ap.P_SKY_H + ch])
                vv = np.uint8(min(max(v, 0.0), 255.0))
                for c in range(W):
                    orow[c * C + ch] = vv
            if backdrop > 0.0 and elev < backdrop:
                for c in range(W):
                    tu = int(c + yaw_cols) & tmask
                    tv = (int(r * 0.5) + 37) & tmask
                    level = int(texf[(tv << tshift) | tu])
                    _put(orow, C, c, lutf, ap.BACKDROP, level, 0, fogc)
        else:
            fog = _fog_of(dist, fog0, fog1)
            att = int(16.0 * min(max(1.2 - dist / 30.0, 0.3), 1.0))   # noise fades with distance
            foot = t * dxr                             # lateral ground size of one pixel (units)
            for k in range(nb_):                       # lines never thinner than about a pixel
                if hw0[k] > 0.0:
                    hw[k] = max(hw0[k], 0.5 * foot)
                elif hw0[k] < 0.0:
                    hw[k] = min(hw0[k], -0.5 * foot)
                else:
                    hw[k] = 0.0
            fwd = dist + cam_fwd
            lat0 = t * (-tan_h + 0.5 * dxr)
            gx0 = x + fx * fwd + rx * lat0
            gz0 = z + fz * fwd + rz * lat0
            gdx = rx * foot
            gdz = rz * foot
            span = max(1, min(MAX_SPAN, int(math.sqrt(SPAN_RADIUS / foot)), int(SPAN_UNITS / foot)))
            tu0 = np.int64((gx0 + prm[ap.P_NOFFX]) * nscale * FIX) + TEX_BIAS
            tv0 = np.int64((gz0 + prm[ap.P_NOFFZ]) * nscale * FIX) + TEX_BIAS
            _classify_row(cls_row, (gx0 - ox) * inv_h, (gz0 - oz) * inv_h, gdx * inv_h, gdz * inv_h, span,
                          tidx, tiles, toff, nzg, nxg, length, closed, s_jump, bound, hw, nb_, inv_dtab, zcls, zdash,
                          zflags, start, start_s, start_depth)
            _shade_row(orow, C, cls_row, tu0, tv0, np.int64(gdx * nscale * FIX), np.int64(gdz * nscale * FIX),
                       texf, tmask, tshift, att, lutf, fog, fogc)
            # the car's shadow: an ellipse on the ground around (sh_f, sh_l) in the car's frame
            ds_ = fwd - sh_f
            if shadow > 0.0 and abs(ds_) < sh_a:
                half = sh_b * math.sqrt(1.0 - (ds_ / sh_a) ** 2)
                c0 = max(0, int(math.ceil((sh_l - half - lat0) / foot)))
                c1 = min(W - 1, int(math.floor((sh_l + half - lat0) / foot)))
                for c in range(c0, c1 + 1):
                    for ch in range(C):
                        orow[c * C + ch] = np.uint8((np.int32(orow[c * C + ch]) * sh_keep) >> 8)
            # walls: a column whose ground turns into "beyond the wall" here has the wall's foot here
            if walls_on:
                for c in range(W):
                    cl = cls_row[c]
                    beyond = cl == ap.BEYOND_L or cl == ap.BEYOND_R
                    if beyond and not prev_beyond[c] and not active[c]:
                        side = 0 if cl == ap.BEYOND_L else 1
                        wb = int(tp[T_WL_BOUND]) if side == 0 else int(tp[T_WR_BOUND])
                        gx = gx0 + c * gdx
                        gz = gz0 + c * gdz
                        lat_g, s_g = sample_grid(tidx, tiles, toff, nzg, nxg, (gx - ox) * inv_h, (gz - oz) * inv_h,
                                                 length, closed, s_jump)
                        if wb >= 0 and lat_g < 0.5 * FAR:
                            kt = _tab_index(s_g, inv_dtab, ntab)
                            tx, tz = tang[0, kt], tang[1, kt]
                            tn = math.sqrt(tx * tx + tz * tz) + 1e-12
                            tx, tz = tx / tn, tz / tn
                            move = bound[wb, kt] - lat_g  # onto the face, along the path normal
                            gx += tz * move
                            gz -= tx * move
                            ddx, ddz = gx - camx, gz - camz
                            gr, gf = ddx * rx + ddz * rz, ddx * fx + ddz * fz   # foot, camera frame
                            tr_, tf_ = tx * rx + tz * rz, tx * fx + tz * fz     # wall direction
                            xu = -tan_h + (c + 0.5) * dxr
                            w_num[c] = tf_ * gr - tr_ * gf                        # normal (tf, -tr)
                            w_a[c] = tf_ * xu
                            w_b[c] = -tr_
                            w_u0[c] = s_g - gr * tr_ - gf * tf_
                            w_ua[c] = xu * tr_
                            w_ub[c] = tf_
                            w_fog[c] = _fog_of(gf, fog0, fog1)
                            w_side[c] = side
                            active[c] = True
                            wall_fwd[c] = min(wall_fwd[c], gf)
                    prev_beyond[c] = beyond
        # ---- walls and fences over this row (ground or sky) in the columns that have one
        if walls_on:
            for c in range(W):
                if not active[c]:
                    continue
                num = w_num[c]
                den = w_a[c] + w_b[c] * horiz
                if den * num <= 1e-12:
                    active[c] = False
                    continue
                tt = num / den
                yw = cam_h + dy * tt                  # height of the hit point above the road
                if w_side[c] == 0:
                    wh, wf, style = wl_h, wl_f, wl_style
                else:
                    wh, wf, style = wr_h, wr_f, wr_style
                if yw > wh and yw > wf:
                    active[c] = False
                    continue
                if yw < 0.0:
                    continue
                u = w_u0[c] + tt * (w_ua[c] + w_ub[c] * horiz)
                if yw < wh:
                    cls = ap.WALL
                    if style == STYLE_BARRIER and (int(math.floor(u * (1.0 / STRIPE_LEN))) & 1) == 1:
                        cls = ap.WALL_STRIPE
                    level = int(texf[((int(yw * 16.0) & tmask) << tshift) | (int((u + 40.0) * 16.0) & tmask)])
                    _put(orow, C, c, lutf, cls, level, w_fog[c], fogc)
                else:
                    f = u * (1.0 / POST_SPACING)
                    if (f - math.floor(f)) * POST_SPACING < POST_WIDTH or wf - yw < 0.08:
                        _put(orow, C, c, lutf, ap.FENCE, 8, w_fog[c], fogc)
                    else:
                        _blend(orow, C, c, lutf, ap.FENCE, MESH_ALPHA, w_fog[c], fogc)
    # ---- cones, last: cones of revolution at their distance, behind any wall in front of them
    c0_, nc = gm[M_COFF], gm[M_NCONE]
    for q in range(c0_, c0_ + nc):
        ddx, ddz = cones[q, 0] - camx, cones[q, 1] - camz
        X = ddx * rx + ddz * rz
        F = ddx * fx + ddz * fz
        rb, hc = cones[q, 2], cones[q, 3]
        if F < 0.5 or fog1 < F:
            continue
        cfog = _fog_of(F, fog0, fog1)
        # rows of the base and the tip, columns of the base (camera frame z = F cp - v sp)
        zb_, zt_ = F * cp + cam_h * sp, F * cp - (hc - cam_h) * sp
        yub = (F * sp - cam_h * cp) / zb_
        yut = (F * sp + (hc - cam_h) * cp) / zt_
        rtop = int(math.floor(((1.0 - yut / tan_v) * 0.5 - crop) / (1.0 - crop) * H))
        rbot = int(math.ceil(((1.0 - yub / tan_v) * 0.5 - crop) / (1.0 - crop) * H))
        cl_ = int(math.floor(((X - rb) / zb_ + tan_h) / dxr)) - 1
        cr_ = int(math.ceil(((X + rb) / zb_ + tan_h) / dxr)) + 1
        for r in range(max(rtop, 0), min(rbot, H - 1) + 1):
            yn = crop + (1.0 - crop) * (r + 0.5) / H
            yu = tan_v * (1.0 - 2.0 * yn)
            v = F * (yu * cp - sp) / (cp + yu * sp)
            yc = cam_h + v
            if yc < 0.0 or yc > hc:
                continue
            rad = rb * (1.0 - 0.85 * yc / hc)
            zc = F * cp - v * sp
            orow = out2[r]
            for c in range(max(cl_, 0), min(cr_, W - 1) + 1):
                if wall_fwd[c] < F - rb:
                    continue
                xu = -tan_h + (c + 0.5) * dxr
                if abs(xu * zc - X) <= rad:
                    frac = yc / hc
                    _put(orow, C, c, lutf, ap.CONE_STRIPE if 0.45 < frac < 0.65 else ap.CONE, 8, cfog, fogc)


@nb.njit(cache=True, parallel=True)
def render_many(out, xs, zs, yaws, slots, app_idx, cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, tibuf, tiles, gmeta,
                tparams, tabs, zarr, cones, luts, prms, tex):  # pragma: no cover - jitted
    """Render ``len(xs)`` frames in parallel; car i is on atlas track ``slots[i]`` and uses
    appearance tables ``app_idx[i]``."""
    for i in nb.prange(xs.shape[0]):
        k = slots[i]
        a = app_idx[i]
        render_one(out[i], xs[i], zs[i], yaws[i], cam_h0, pitch0, cam_fwd, tan_v, tan_h, crop, tibuf, tiles, gmeta[k],
                   tparams[k], tabs, zarr, cones, luts[a], prms[a], tex)
