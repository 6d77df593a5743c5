"""``donkeyrl export``: a study for Optuna's tools, a policy for the car (ONNX)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from donkeyrl.cli.common import CLIError, non_negative_int, positive_int
from donkeyrl.cli.report import check_out


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export a study to Optuna's journal format, or a policy to ONNX",
        description="Export a study for Optuna's tools (optuna-dashboard, optuna.visualization, "
        "optuna.importance) or a trained policy, with its camera preprocessing, to ONNX for the car.")
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)

    o = sub.add_parser(
        "optuna", help="write the study as an Optuna journal file",
        description="Write an Optuna journal file of the study: one trial per record with its parameters "
        "(distributions from the study's search space), the objective, and the state (COMPLETE, FAIL or "
        "PRUNED; the run status and message as user attributes). Open it with `optuna-dashboard FILE` or "
        "optuna.load_study(storage=JournalStorage(JournalFileBackend(FILE))). The Optuna study is named "
        "after the study directory.")
    o.add_argument("study_dir", type=Path, metavar="STUDY_DIR", help="the study directory (holds results.jsonl)")
    o.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="journal file to write (default: STUDY_DIR/optuna-journal.log; replaced if it exists)")
    o.set_defaults(func=run_optuna)

    x = sub.add_parser(
        "onnx", help="write a trained policy with its camera preprocessing as ONNX",
        description="Write the policy of MODEL_DIR (model.zip + trial_config.json) as an ONNX file that "
        "takes the last frame_stack raw camera images (uint8, frame_stack x 120 x 160 x 3, oldest first) and "
        "returns the action, steering and throttle; crop, grey and resize happen inside. The file is then "
        "run with onnxruntime next to SB3 on simulator frames and refused if an action differs. See "
        "docs/car.md for running it on the car.")
    x.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="model.zip or its directory")
    x.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="ONNX file to write (default: policy.onnx beside the model)")
    x.add_argument("--camera-height", type=positive_int, default=120,
                   help="camera image height in pixels (default: %(default)s)")
    x.add_argument("--camera-width", type=positive_int, default=160,
                   help="camera image width in pixels (default: %(default)s)")
    x.add_argument("--check-frames", type=non_negative_int, default=100,
                   help="simulator frames on which onnxruntime and SB3 must agree (0: no check; "
                   "default: %(default)s)")
    x.set_defaults(func=run_onnx)


def run_optuna(args: argparse.Namespace) -> int:
    from donkeyrl.report.optuna_export import export_optuna
    from donkeyrl.report.study import StudyReadError

    check_out(args.out)
    try:
        done = export_optuna(args.study_dir, args.out)
    except StudyReadError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out or 'the journal'}: {exc.strerror or exc}") from None
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(done.states.items())) or "no trials"
    print(f"wrote {done.path}: Optuna study {done.study_name!r}, {done.n_trials} trials ({states})")
    print(f"open it with: optuna-dashboard {done.path}")
    return 0


def run_onnx(args: argparse.Namespace) -> int:
    from donkeyrl.report.onnx_export import ParityError, export_onnx
    from donkeyrl.rl.evaluate import ModelLoadError

    check_out(args.out)
    if args.camera_height < 8 or args.camera_width < 8:
        raise CLIError(f"camera {args.camera_height}x{args.camera_width} is too small; at least 8x8")
    try:
        done = export_onnx(args.model_dir, args.out, camera=(args.camera_height, args.camera_width),
                           check_frames=args.check_frames)
    except (ModelLoadError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    except ParityError as exc:
        raise CLIError(f"{exc}; no file written", exit_code=1) from None
    except OSError as exc:
        raise CLIError(f"cannot write {args.out or 'the ONNX file'}: {exc.strerror or exc}") from None
    check = (f"onnxruntime matches SB3 on {done.checked_frames} frames (max action difference "
             f"{done.max_abs_diff:.2g})" if done.checked_frames else "not checked against SB3")
    print(f"wrote {done.path}: input frames uint8 ({done.frame_stack}, {done.camera[0]}, {done.camera[1]}, 3), "
          f"oldest first; {check}")
    return 0
