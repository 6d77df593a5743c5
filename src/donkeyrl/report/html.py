"""The study report: one self-contained HTML file (figures embedded as data URIs, no script).

Why self-contained and script-free: the file is mailed, committed next to the results and opened
on a laptop without network; nothing it shows may depend on a server, a CDN or JavaScript.

:func:`write_report` is the one entry point (``donkeyrl report`` and the end of a study call it).
It reads the study (never writes to the journal or the models), drives the champion on the
validation and test tracks (cached, see :mod:`donkeyrl.report.champion`) and writes the page
atomically.
"""

from __future__ import annotations

import html
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from donkeyrl.report import figures
from donkeyrl.report.champion import (CACHE_DIR, ChampionDrives, champion_drives, cte_figure,
                                      lap_time_figure, map_figure, track_rows)
from donkeyrl.report.optuna_study import Importance, param_importances
from donkeyrl.report.posterior import fit_posterior, posterior_figure
from donkeyrl.report.study import CURVE_FILE, HEAD_TO_HEAD_FILE, StudyData, load_study

__all__ = ["write_report", "build_report", "REPORT_NAME"]

log = logging.getLogger(__name__)

#: Default file name of the report inside the study directory.
REPORT_NAME = "report.html"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:0 18px 40px;color:#222;line-height:1.45}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:3px;margin-top:34px}
.sub{color:#666;margin-top:0} .note{color:#555;font-size:0.92em}
img{max-width:100%;height:auto;display:block;margin:8px 0}
table{border-collapse:collapse;font-size:0.84em;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;vertical-align:top}
th{background:#f4f4f4} td.l,th.l{text-align:left}
tr.champ td{background:#e9f7ef} tr.bad td{color:#a33}
.kv td:first-child{text-align:left;font-weight:600}
.scroll{overflow-x:auto}
nav a{margin-right:12px}
"""


def _esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    if isinstance(v, dict):
        return ", ".join(f"{k}={_fmt(x)}" for k, x in v.items())
    return str(v)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, *,
          left: Sequence[str] = (), row_class: Callable[[dict[str, Any]], str] | None = None) -> str:
    """An HTML table of ``rows`` (every key present in any row is a column unless ``columns``)."""
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f'<th class="{"l" if c in left else ""}">{_esc(c)}</th>' for c in columns)
    body = []
    for r in rows:
        cls = row_class(r) if row_class else ""
        cells = "".join(f'<td class="{"l" if c in left else ""}">{_esc(_fmt(r.get(c)))}</td>' for c in columns)
        body.append(f'<tr class="{cls}">{cells}</tr>')
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_esc(alt)}">'


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>'


# ----------------------------------------------------------------------------- sections
def _summary(data: StudyData) -> str:
    recs = data.records
    counts: dict[str, int] = {}
    for r in recs:
        counts[r.run_status] = counts.get(r.run_status, 0) + 1
    champ = data.champion
    rows = [
        ("study", str(data.root.resolve())),
        ("agent", data.info.get("agent", "–")),
        ("objective", data.objective),
        ("trials recorded", f"{len(recs)} (" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")"),
        ("trial time", f"{sum(r.elapsed_sec for r in recs) / 60:.1f} min in total"),
        ("champion", f"trial {champ.trial}: {data.objective} = {_fmt(champ.objective)}" if champ else "none yet"),
        ("created", data.info.get("created_at", "–")),
    ]
    out = '<table class="kv">' + "".join(f"<tr><td>{_esc(k)}</td><td class=\"l\">{_esc(v)}</td></tr>"
                                          for k, v in rows) + "</table>"
    if champ is not None:
        out += "<p><b>Champion's parameters:</b> " + _esc(_fmt(champ.params)) + "</p>"
    notes = list(data.notes) + [f"journal {p}" for p in data.problems]
    if notes:
        out += "<p class=\"note\">" + "<br>".join(_esc(n) for n in notes) + "</p>"
    return out


def _history(data: StudyData) -> str:
    rows = []
    crowned = data.crowned_trials()
    for t in data.trials:
        r = t.record
        rows.append({"trial": r.trial, "status": r.run_status, "proposal": t.source,
                     data.objective: r.objective, "driving_score": r.driving_score,
                     "mean_reward": r.mean_reward, "time (s)": round(r.elapsed_sec, 1),
                     "champion": "★" if r.trial in crowned else "",
                     "reward hacking": "flagged" if r.reward_hacking else "",
                     "params": r.params, "message": (r.message[:300] + "…") if len(r.message) > 300 else r.message})

    def cls(row: dict[str, Any]) -> str:
        return "champ" if row["champion"] else ("bad" if row["status"] != "ok" or row["reward hacking"] else "")

    return (_img(figures.png_data_uri(figures.history_figure(data)), "optimisation history") +
            '<p class="note">Proposal source: <i>gp</i> = proposed by the GP+UCB model, <i>random</i> = the '
            "optimizer's random start, <i>confirmation</i> = a candidate champion's parameters re-trained on a "
            "new seed, <i>unknown</i> = not recorded (read from study.log). Failed trials are "
            "drawn as crosses below the points, labelled with their status; the message column gives the "
            "reason.</p>" +
            table(rows, left=("status", "proposal", "params", "message"), row_class=cls))


def _champion_progress(data: StudyData) -> str:
    rows = [{"trial": c.trial, "crowned at": rec.timestamp[:19], "by record": rec.trial,
             data.objective: c.objective, "driving_score": c.driving_score, "mean_reward": c.mean_reward,
             "params": c.params}
            for rec, c in data.crownings()]
    body = _img(figures.png_data_uri(figures.champion_progress_figure(data)), "champion progression")
    return body + (table(rows, left=("crowned at", "params")) if rows else "<p>No champion yet.</p>")


def _importance(data: StudyData) -> tuple[str, Importance | None]:
    if data.space is None or data.space.dim == 0:
        return "<p>No searched parameter (search space unknown or all fixed).</p>", None
    imp = param_importances(data)
    free = list(data.space.free)
    if imp is None:
        body = "<p>Parameter importance needs at least two completed trials.</p>"
    else:
        body = (_img(figures.png_data_uri(figures.importance_figure(imp)), "parameter importance") +
                f'<p class="note">Method: {_esc(imp.method)}. Shares of the objective\'s variance explained by '
                "each parameter alone; with few trials they are rough.</p>")
        free.sort(key=lambda p: -imp.values.get(p.name, 0.0))
    fixed = {p.name: p.value for p in data.space.params if p.kind == "fixed"}
    body += "<h3>Slices: the objective against each searched parameter</h3>"
    body += _img(figures.png_data_uri(figures.slice_figure(data, free)), "slice plots")
    if fixed:
        body += f'<p class="note">Fixed (not searched): {_esc(_fmt(fixed))}</p>'
    return body, imp


def _posterior(data: StudyData, imp: Importance | None) -> str:
    if data.space is None or data.space.dim == 0:
        return "<p>No searched parameter.</p>"
    post = fit_posterior(data)
    if post is None:
        return "<p>The GP needs at least two usable trials.</p>"
    order = list(imp.values) if imp else [p.name for p in data.space.free]
    names = [n for n in order if n in {p.name for p in data.space.free}][:2]
    how = "the two most important parameters (above)" if imp else "the first two searched parameters"
    return (_img(figures.png_data_uri(posterior_figure(post, names)), "GP posterior") +
            f'<p class="note">Along {how}: {_esc(", ".join(names))}. The GP is refitted to the records by the '
            "optimizer's rules (failed trials imputed at the worst value); every other parameter is held at "
            "the champion's value. Left: what the model expects; right: how unsure it is.</p>")


def _curves(data: StudyData) -> str:
    views = figures.curve_panel_order(data)
    missing = sum(1 for t in data.trials if not t.curve)
    if missing == len(data.trials):
        return (f"<p>No curve recorded: no trial has a {CURVE_FILE} (trainers write one progress line per "
                "report into it, beside the model; older trials have none).</p>")
    body = _img(figures.png_data_uri(figures.curves_overview_figure(data)), "learning curves overview")
    if views:
        body += _img(figures.png_data_uri(figures.curves_grid_figure(views), dpi=80), "learning curves per trial")
    note = (f"Read from each trial's {CURVE_FILE} (one line per progress report of the trainer: mean "
            "episode reward of the last episodes, and the best episode's laps).")
    if missing:
        note += f" {missing} trial(s) have no curve recorded."
    if len(views) < len(data.trials):
        note += f" Panels for the best {len(views)} of {len(data.trials)} trials."
    return body + f'<p class="note">{_esc(note)}</p>'


def _champion_tracks(drives: ChampionDrives | None) -> str:
    if drives is None:
        return "<p>No champion model to drive yet (or its trial config is missing).</p>"
    if not drives.traces:
        return "<p>" + _esc("; ".join(drives.notes) or "the champion could not be driven") + "</p>"
    rows = track_rows(drives)
    out = (f'<p class="note">Champion: trial {_esc(drives.trial)} (model sha256 {drives.sha256[:16]}…). One lap '
           "per track from the standard start, the same start as the scripted expert's reference lap "
           "(episodes are capped at twice the expert's lap time plus 5 s). Validation tracks are what the "
           "study selects on; test tracks are never used for selection.</p>")
    for set_name in drives.sets:
        lapped = [r for r in rows if r["set"] == set_name and r["lap_time"] is not None]
        n = sum(1 for r in rows if r["set"] == set_name)
        out += f"<h3>{_esc(set_name.capitalize())} set: lapped {len(lapped)} of {n} tracks</h3>"
        out += _img(figures.png_data_uri(map_figure(drives, set_name), dpi=80), f"{set_name} driving lines")
        out += _img(figures.png_data_uri(cte_figure(drives, set_name), dpi=80), f"{set_name} cte")
    out += "<h3>Lap times against the scripted expert</h3>"
    out += _img(figures.png_data_uri(lap_time_figure(drives), dpi=80), "lap times")
    out += table(rows, left=("set", "track", "end"))
    return out


def _animation(drives: ChampionDrives | None, drive: bool) -> str:
    if not drive:
        return "<p>Not driven (report built without driving).</p>"
    if drives is None or drives.animation is None:
        return "<p>No animation (no champion model to drive).</p>"
    import base64

    uri = "data:image/webp;base64," + base64.b64encode(drives.animation).decode("ascii")
    return (f'<p class="note">The champion on {_esc(drives.animation_track)}: its camera view '
            "with speed, cte, lap and time on top and the steering and throttle it applied at the bottom; "
            "right, the track from above with its trail coloured by speed. Record any model on any track "
            "with <code>donkeyrl drive --model DIR --track NAME --gif|--mp4 PATH</code>.</p>" +
            _img(uri, "animation of the champion driving"))


def _head_to_head(data: StudyData) -> str:
    h2h = data.head_to_head
    if not h2h:
        return (f"<p>No {HEAD_TO_HEAD_FILE} in the study yet (it is written at the end of a study: the "
                "champion, the scripted expert and a baseline on the test set).</p>")
    rows = [r for r in h2h.get("rows", []) if isinstance(r, dict)]
    out = f"<p>Track set: <b>{_esc(h2h.get('set', '?'))}</b>, {len(h2h.get('tracks', []))} tracks.</p>"
    methods = h2h.get("methods")
    if isinstance(methods, dict) and methods:
        out += table([{"method": k, "what": v} for k, v in methods.items()], left=("method", "what"))
    summary = h2h.get("summary")
    if isinstance(summary, dict) and summary:
        out += "<h3>Summary</h3>" + table([{"method": k, **v} for k, v in summary.items() if isinstance(v, dict)],
                                          left=("method",))
    out += "<h3>Per track</h3>" + table(rows, left=("method", "track"))
    return out


# ----------------------------------------------------------------------------- the page
def build_report(data: StudyData, *, drive: bool = True, use_cache: bool = True) -> str:
    """The report page of ``data`` as one HTML string (see the module docstring)."""
    t0 = time.perf_counter()
    drives = champion_drives(data, use_cache=use_cache) if drive else None
    sections = [
        ("summary", "Summary", _summary(data)),
        ("history", "Optimisation history", _history(data)),
        ("champion", "Champion progression", _champion_progress(data)),
    ]
    imp_html, imp = _importance(data)
    sections += [
        ("importance", "Parameter importance and slices", imp_html),
        ("posterior", "GP posterior", _posterior(data, imp)),
        ("curves", "Learning curves", _curves(data)),
        ("tracks", "The champion on the validation and test tracks",
         _champion_tracks(drives) if drive else "<p>Not driven (report built without driving).</p>"),
        ("animation", "The champion driving", _animation(drives, drive)),
        ("h2h", "Head to head", _head_to_head(data)),
    ]
    seconds = time.perf_counter() - t0
    cost = ""
    if drives is not None:
        spent = f"from the cache in {CACHE_DIR}/" if drives.from_cache else f"{drives.seconds:.1f} s"
        cost = f" Champion drives: {spent} for {len(drives.traces)} tracks."
    nav = "".join(f'<a href="#{a}">{_esc(t)}</a>' for a, t, _ in sections)
    body = "".join(_section(a, t, b) for a, t, b in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<link rel=\"icon\" href=\"data:,\">"
        f"<title>{_esc(data.name)}: donkeyrl study report</title><style>{_CSS}</style></head><body>"
        f"<h1>Study {_esc(data.name)}</h1>"
        f"<p class=\"sub\">donkeyrl study report, generated {_esc(time.strftime('%Y-%m-%d %H:%M:%S'))} from "
        f"{len(data.trials)} records in {seconds:.1f} s.{_esc(cost)}</p><nav>{nav}</nav>{body}"
        f"<footer class=\"note\"><p>Regenerate with <code>donkeyrl report {_esc(data.root)}</code>. Data: "
        f"results.jsonl, study.json, study.log, models/, {_esc(HEAD_TO_HEAD_FILE)}.</p></footer>"
        "</body></html>\n")


def write_report(study_dir: str | Path, out: str | Path | None = None, *, drive: bool = True,
                 use_cache: bool = True) -> Path:
    """Writes the study's report to ``out`` (default ``<study_dir>/report.html``); returns its path.

    Reads the study only (the champion-drive cache in ``<study>/report-cache/`` aside). Raises
    :class:`donkeyrl.report.study.StudyReadError` when ``study_dir`` is not a study and OSError
    when ``out`` cannot be written; an existing report is replaced atomically.
    """
    data = load_study(study_dir)
    path = Path(out) if out is not None else data.root / REPORT_NAME
    page = build_report(data, drive=drive, use_cache=use_cache)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s (%d kB)", path, len(page) // 1024)
    return path
