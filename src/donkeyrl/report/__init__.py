"""See and share a study: the HTML report, videos of trained policies, Optuna and ONNX exports.

Reads studies and models, never writes records. Public API:

- :func:`write_report` (``donkeyrl report``): one self-contained HTML page of a study;
- :class:`~donkeyrl.report.video.FrameComposer` and the GIF/MP4 writers (``donkeyrl drive``);
- :func:`~donkeyrl.report.optuna_export.export_optuna` (``donkeyrl export optuna``);
- :func:`~donkeyrl.report.onnx_export.export_onnx` (``donkeyrl export onnx``).

Modules: study (read a study dir), optuna_study (records as an Optuna study, importance),
figures, posterior (the GP's view), driving (a model on tracks, with traces), champion (the
champion on the validation and test tracks, cached), video, html, optuna_export, onnx_export.
"""

from donkeyrl.report.html import REPORT_NAME, build_report, write_report
from donkeyrl.report.study import StudyReadError, load_study

__all__ = ["write_report", "build_report", "load_study", "StudyReadError", "REPORT_NAME"]
