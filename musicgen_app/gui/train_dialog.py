"""Model ▸ Train on My Music…: fine-tune a model on a folder of the musician's own MIDI files.

The dialog asks for a folder, a model to start from (a model of any family that
``musicgen train --from`` fine-tunes, :data:`musicgen_app.ml.FINE_TUNABLE`) and a time budget.
The work is the command line's, in a process of its own (:class:`TrainingJob`):
``python -m musicgen_app train FAMILY --data DIR --from MODEL --minutes M --out-dir
STAGING --name NAME --progress-json`` (FAMILY: the base model's), which builds the folder's
dataset (``dataset build --midi``) and trains, printing its progress as JSON lines. The UI
thread only reads those lines as they arrive (QProcess's signals): files read and skipped with
their reasons, epoch and batch, training and
validation loss, drawn live by :class:`LossCurve`.

The model is written into a staging folder; only a finished run is moved into the musician's
models folder (``paths.user_models_dir()``), weights first and the card last, so the model box
never sees half a model. Cancel kills the process at once and deletes the staging folder. The new
model is then listed in the generation panel's model box and selected; being in the user models
folder, it is listed again after a restart. A failed run is one line from the command
(``error: ...``), never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QPointF, QProcess, QProcessEnvironment, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from musicgen_app.core import paths
from musicgen_app.ml import FINE_TUNABLE

if TYPE_CHECKING:
    from musicgen_app.gui.main_window import MainWindow

logger = logging.getLogger(__name__)

STAGING = ".training"  # under the user models folder: one folder per run, gone when it ends
MAX_STDERR = 64 * 1024
FAMILY_ROLE = Qt.ItemDataRole.UserRole + 1  # the base model's family, beside its name
DEFAULT_MINUTES = 5.0


# -- the process ----------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists but is not ours to signal
    return True


def clean_stale_staging(root: Path | None = None) -> list[Path]:
    """Remove the staging folders of runs whose window process is gone (a crash or a kill);
    returns those removed. Staging folders are named ``<window pid>-<random>``."""
    base = (root or paths.user_models_dir()) / STAGING
    removed = []
    for d in sorted(base.glob("*-*")) if base.is_dir() else []:
        head = d.name.split("-", 1)[0]
        if d.is_dir() and head.isdigit() and int(head) != os.getpid() and not _alive(int(head)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


def install_model(staging: Path, name: str, target: Path | None = None) -> Path:
    """Move a finished run's model from ``staging`` into the user models folder: the weights
    first, the card last (a model is listed once its card is there); the staging folder is then
    deleted. Returns the installed weights path."""
    target = target or paths.user_models_dir()
    target.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", "-curve.png", ".json"):
        src = staging / f"{name}{suffix}"
        if src.is_file():
            os.replace(src, target / src.name)
    shutil.rmtree(staging, ignore_errors=True)
    return target / f"{name}.safetensors"


def train_command(
    folder: str, base: str, minutes: float, name: str, out_dir: str, family: str = FINE_TUNABLE[0]
) -> list[str]:
    """The arguments of ``python -m musicgen_app`` that fine-tune ``base`` (of ``family``) on ``folder``."""
    return [
        "-m",
        "musicgen_app",
        "train",
        family,
        "--data",
        folder,
        "--from",
        base,
        "--minutes",
        f"{minutes:g}",
        "--out-dir",
        out_dir,
        "--name",
        name,
        "--progress-json",
    ]


class TrainingJob(QObject):
    """One training process and its staging folder.

    ``progress`` carries each progress object the process prints (``reading``, ``dataset``,
    ``start``, ``step``, ``validating``, ``epoch``, ``done``). ``finished(ok, text)`` comes once:
    ``ok`` with the installed weights path, else the one-line reason ("cancelled" after
    :meth:`cancel`). Everything happens on the UI thread through QProcess's signals; the files
    are moved and deleted on the window's task threads."""

    progress = Signal(dict)
    finished = Signal(bool, str)

    def __init__(self, tasks: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tasks = tasks
        self._proc: QProcess | None = None
        self._staging: Path | None = None
        self._name = ""
        self._out = b""
        self._err = b""
        self._done: dict | None = None
        self._cancelled = False

    def running(self) -> bool:
        """Whether a run is in progress (its process may be ending)."""
        return self._proc is not None

    def start(self, folder: str, base: str, minutes: float, name: str, family: str = FINE_TUNABLE[0]) -> None:
        """Start training ``base`` (a model of ``family``) on ``folder`` (returns at once)."""
        if self._proc is not None:
            raise RuntimeError("a training run is already going")
        root = paths.user_models_dir() / STAGING
        root.mkdir(parents=True, exist_ok=True)
        self._staging = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
        self._name, self._out, self._err, self._done, self._cancelled = name, b"", b"", None, False
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        # the process runs this very package, installed or not
        here = str(Path(__file__).resolve().parents[2])
        env.insert("PYTHONPATH", os.pathsep.join(p for p in (here, env.value("PYTHONPATH")) if p))
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._ended)
        proc.errorOccurred.connect(self._failed_to_start)
        self._proc = proc
        args = train_command(folder, base, minutes, name, str(self._staging), family)
        logger.info("training: %s %s", sys.executable, " ".join(args))
        proc.start(sys.executable, args)

    def cancel(self) -> None:
        """Stop the run now: the process is killed, nothing is installed, the staging folder goes."""
        if self._proc is None:
            return
        self._cancelled = True
        self._proc.kill()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """The window is closing: kill the run and delete its staging folder before returning."""
        proc = self._proc
        if proc is None:
            return
        self._cancelled = True
        proc.finished.disconnect(self._ended)
        proc.kill()
        proc.waitForFinished(timeout_ms)
        self._proc = None
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    # -- the process's signals (UI thread) ----------------------------------------------------
    def _read_stdout(self) -> None:
        if self._proc is None:
            return
        self._out += bytes(self._proc.readAllStandardOutput().data())
        *lines, self._out = self._out.split(b"\n")
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                logger.debug("training: %s", line.decode(errors="replace"))
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "done":
                self._done = event
            if not self._cancelled:
                self.progress.emit(event)

    def _read_stderr(self) -> None:
        if self._proc is not None:
            self._err = (self._err + bytes(self._proc.readAllStandardError().data()))[-MAX_STDERR:]

    def _failed_to_start(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart and self._proc is not None:
            self._err += f"error: cannot start {sys.executable} ({self._proc.errorString()})\n".encode()
            self._ended(-1, QProcess.ExitStatus.CrashExit)

    def _ended(self, code: int, _status: QProcess.ExitStatus) -> None:
        if self._proc is None:
            return
        self._read_stdout()
        self._read_stderr()
        proc, self._proc = self._proc, None
        proc.deleteLater()
        staging, name = self._staging, self._name
        assert staging is not None
        if self._cancelled:
            self._tasks.submit(
                lambda: shutil.rmtree(staging, ignore_errors=True),
                lambda _r: self.finished.emit(False, "cancelled"),
                lambda exc: self.finished.emit(False, "cancelled"),
                name="musicgen-train-cleanup",
            )
            return
        if code == 0 and self._done is not None:
            self._tasks.submit(
                lambda: install_model(staging, name),
                lambda path: self.finished.emit(True, str(path)),
                lambda exc: self.finished.emit(False, f"cannot install the model: {exc}"),
                name="musicgen-train-install",
            )
            return
        reason = self._error_line(code)
        self._tasks.submit(
            lambda: shutil.rmtree(staging, ignore_errors=True),
            lambda _r: self.finished.emit(False, reason),
            lambda exc: self.finished.emit(False, reason),
            name="musicgen-train-cleanup",
        )

    def _error_line(self, code: int) -> str:
        """The command's own one-line error, else a line saying how the process ended."""
        lines = [ln.strip() for ln in self._err.decode(errors="replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        if errors:
            return errors[-1].removeprefix("error:").strip()
        return f"training stopped unexpectedly (exit code {code})"


# -- the loss curve -------------------------------------------------------------------------------
class LossCurve(QWidget):
    """Training loss per batch (a line) and validation loss per epoch (dots), drawn as they come."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("loss_curve")
        self.setMinimumSize(320, 160)
        self.train: list[tuple[float, float]] = []
        self.val: list[tuple[float, float]] = []
        self.unit = "nats/step"  # the family's loss unit (the run's start event says it)

    def clear(self) -> None:
        """Forget every point."""
        self.train, self.val = [], []
        self.update()

    def add_train(self, x: float, loss: float) -> None:
        """One training point: ``x`` in batches since the start."""
        self.train.append((x, loss))
        self.update()

    def add_val(self, x: float, loss: float) -> None:
        """One validation point (at the end of an epoch)."""
        self.val.append((x, loss))
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#fbfbfd"))
        pts = self.train + self.val
        margin_l, margin_b, margin_t, margin_r = 44, 18, 8, 10
        area = QRectF(
            margin_l, margin_t, self.width() - margin_l - margin_r, self.height() - margin_t - margin_b
        )
        p.setPen(QPen(QColor("#99a"), 1))
        p.drawRect(area)
        if not pts:
            p.drawText(area, Qt.AlignmentFlag.AlignCenter, "the loss curve appears here")
            return
        x0, x1 = 0.0, max(1.0, max(x for x, _ in pts))
        y0, y1 = min(y for _, y in pts), max(y for _, y in pts)
        if y1 - y0 < 1e-6:
            y0, y1 = y0 - 0.5, y1 + 0.5

        def at(x: float, y: float) -> QPointF:
            return QPointF(
                area.left() + (x - x0) / (x1 - x0) * area.width(),
                area.bottom() - (y - y0) / (y1 - y0) * area.height(),
            )

        p.setPen(QColor("#445"))
        for y in (y0, y1):
            p.drawText(QRectF(0, at(0, y).y() - 8, margin_l - 4, 16), Qt.AlignmentFlag.AlignRight, f"{y:.2f}")
        p.drawText(
            QRectF(area.left(), area.bottom() + 2, area.width(), 16),
            Qt.AlignmentFlag.AlignCenter,
            f"batches — loss in {self.unit}: training (line), validation (dots)",
        )
        if len(self.train) > 1:
            p.setPen(QPen(QColor("#3a6ea5"), 1.5))
            p.drawPolyline(QPolygonF([at(x, y) for x, y in self.train]))
        p.setPen(QPen(QColor("#c0392b"), 1.5))
        p.setBrush(QColor("#c0392b"))
        if len(self.val) > 1:
            p.drawPolyline(QPolygonF([at(x, y) for x, y in self.val]))
        for x, y in self.val:
            p.drawEllipse(at(x, y), 3.5, 3.5)


# -- the dialog -----------------------------------------------------------------------------------
def base_models(infos: list[Any]) -> list[tuple[str, str, str]]:
    """``(label, model, family)`` of the models training can start from: those of a fine-tunable
    family (the melody models first, the default)."""
    from musicgen_app.ml.family import family_key

    out = []
    for info in infos:
        family = family_key(getattr(info, "card", {}) or {})
        if family in FINE_TUNABLE:
            name = str(getattr(info, "name", ""))
            out.append((name if name == family else f"{name} ({family})", name, family))
    return sorted(out, key=lambda t: FINE_TUNABLE.index(t[2]))


def suggest_name(folder: str, taken: set[str]) -> str:
    """A free checkpoint name for a model trained on ``folder`` (``<folder>-tuned``, then -2, -3…)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(folder).name).strip("-._")[:80] or "my-music"
    name = f"{stem}-tuned"
    k = 2
    while name in taken:
        name, k = f"{stem}-tuned-{k}", k + 1
    return name


class TrainDialog(QDialog):
    """Train on My Music: folder, base model and minutes; progress, the loss curve, Cancel."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.win = window
        self.setObjectName("train_dialog")
        self.setWindowTitle("Train on My Music")
        self.job = TrainingJob(window.tasks, self)
        self.job.progress.connect(self._event)
        self.job.finished.connect(self._finished)
        self._batches = 1
        self._epoch_base = 0.0
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder of MIDI files (read with its subfolders)")
        self.folder_edit.textChanged.connect(self._folder_changed)
        self.browse_button = QPushButton("Choose…")
        self.browse_button.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.browse_button)
        self.base_combo = QComboBox()
        self.base_combo.setObjectName("train_base")
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.1, 600.0)
        self.minutes.setDecimals(1)
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setSuffix(" min")
        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("train_name")
        form = QFormLayout()
        form.addRow("Your music", row)
        form.addRow("Start from", self.base_combo)
        form.addRow("Time budget", self.minutes)
        form.addRow("New model's name", self.name_edit)
        self.status = QLabel("Choose a folder of MIDI files.")
        self.status.setObjectName("train_status")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.curve = LossCurve()
        self.skipped = QPlainTextEdit()
        self.skipped.setObjectName("train_skipped")
        self.skipped.setReadOnly(True)
        self.skipped.setMaximumHeight(90)
        self.skipped.setPlaceholderText("files that cannot be used are listed here, with the reason")
        self.train_button = QPushButton("Train")
        self.train_button.setObjectName("train_start")
        self.train_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("train_cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.status)
        lay.addWidget(self.bar)
        lay.addWidget(self.curve, 1)
        lay.addWidget(QLabel("Skipped files"))
        lay.addWidget(self.skipped)
        lay.addLayout(buttons)
        self.resize(560, 520)
        self.refresh_bases()
        self._set_running(False)

    # -- inputs -------------------------------------------------------------------------------
    def refresh_bases(self) -> None:
        """Offer the models of the window's model box that training can start from."""
        current = self.base_combo.currentData()
        self.base_combo.clear()
        for label, model, family in base_models(self.win.panel.model_infos()):
            self.base_combo.addItem(label, model)
            self.base_combo.setItemData(self.base_combo.count() - 1, family, FAMILY_ROLE)
        i = self.base_combo.findData(current)
        self.base_combo.setCurrentIndex(max(0, i))

    def _taken_names(self) -> set[str]:
        combo = self.win.panel.model_combo
        return {str(combo.itemData(i)) for i in range(combo.count())}

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of MIDI files", self.folder_edit.text() or self.win.files.last_dir()
        )
        if folder:
            self.folder_edit.setText(folder)

    def _folder_changed(self, text: str) -> None:
        if text.strip() and not self.job.running():
            self.name_edit.setText(suggest_name(text.strip(), self._taken_names()))

    def set_inputs(self, folder: str, base: str = "", minutes: float | None = None, name: str = "") -> None:
        """Fill the form (what choosing in the dialog does)."""
        self.folder_edit.setText(folder)
        if base:
            i = self.base_combo.findData(base)
            if i >= 0:
                self.base_combo.setCurrentIndex(i)
        if minutes is not None:
            self.minutes.setValue(minutes)
        if name:
            self.name_edit.setText(name)

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Check the form and start training (returns at once)."""
        folder = self.folder_edit.text().strip()
        name = self.name_edit.text().strip()
        base = str(self.base_combo.currentData() or "")
        family = str(self.base_combo.currentData(FAMILY_ROLE) or FINE_TUNABLE[0])
        if not folder or not Path(folder).expanduser().is_dir():
            self._say(f"Choose a folder of MIDI files{f': {folder} is not a folder' if folder else ''}.")
            return
        if not base:
            self._say("There is no model to start from.")
            return
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
            self._say("Name the new model with letters, digits, '.', '_' or '-' (up to 100).")
            return
        if name in self._taken_names() or (paths.user_models_dir() / f"{name}.json").exists():
            self._say(f"There is already a model named {name}; choose another name.")
            return
        self.curve.clear()
        self.skipped.clear()
        self._batches, self._epoch_base = 1, 0.0
        self.bar.setRange(0, 0)  # busy until the first figures come
        self._say(f"Starting: fine-tuning {base} on {Path(folder).name}…")
        self.job.start(str(Path(folder).expanduser()), base, self.minutes.value(), name, family)
        self._set_running(True)

    def cancel(self) -> None:
        """Stop the run: no model is written."""
        if self.job.running():
            self._say("Cancelling…")
            self.job.cancel()

    def _set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.close_button.setVisible(not running)
        for w in (self.folder_edit, self.browse_button, self.base_combo, self.minutes, self.name_edit):
            w.setEnabled(not running)

    def _say(self, text: str) -> None:
        self.status.setText(text)
        logger.info("train: %s", text)

    def _event(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "reading":
            total = int(ev.get("total") or 0)
            self.bar.setRange(0, max(1, total))
            self.bar.setValue(int(ev.get("done") or 0))
            self._say(f"Reading your files: {ev.get('done')} of {total}")
        elif kind == "dataset":
            skipped = ev.get("skipped") or []
            self.skipped.setPlainText("\n".join(f"{s['file']}: {s['reason']}" for s in skipped))
            self._say(
                f"{ev.get('used')} files used, {len(skipped)} skipped"
                f"{' (see below)' if skipped else ''}; preparing the model…"
            )
        elif kind == "start":
            self._batches = max(1, int(ev.get("batches_per_epoch") or 1))
            self.curve.unit = str(ev.get("unit") or self.curve.unit)
            budget = float(ev.get("budget_s") or 0)
            self.bar.setRange(0, max(1, round(budget)))
            self.bar.setValue(0)
            self._say(
                f"Training on {ev.get('train_tunes')} songs, checking on {ev.get('val_tunes')} held out…"
            )
        elif kind == "step":
            x = (int(ev["epoch"]) - 1) * self._batches + int(ev["batch"])
            self.curve.add_train(x, float(ev["loss"]))
            self.bar.setValue(min(self.bar.maximum(), round(float(ev.get("elapsed_s") or 0))))
            self._say(
                f"Epoch {ev['epoch']}, batch {ev['batch']} of {ev['batches']}: "
                f"training loss {float(ev['train_nll']):.3f}"
            )
        elif kind == "validating":
            self._say(f"Epoch {ev.get('epoch')}: checking on {ev.get('tunes')} held-out songs…")
        elif kind == "epoch":
            x = int(ev["epoch"]) * self._batches
            self.curve.add_val(x, float(ev["val_nll"]))
            self._say(
                f"Epoch {ev['epoch']}: validation loss {float(ev['val_nll']):.3f} "
                f"(training {float(ev['train_nll']):.3f}), {ev.get('minutes')} min"
            )
        elif kind == "done":
            self._say(f"Finished ({ev.get('stopped')}); best validation loss {ev.get('best_val_nll')}…")

    def _finished(self, ok: bool, text: str) -> None:
        self._set_running(False)
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if ok else 0)
        if not ok:
            self._say(
                "Cancelled: no model was written." if text == "cancelled" else f"Training failed: {text}"
            )
            if text != "cancelled":
                self.win.show_message(f"Train on My Music failed: {text}", 10000)
            return
        name = Path(text).stem
        self._say(f"Done: {name} is in the model box, chosen for Continue.")
        self.win.show_message(f"Trained {name}; it is now the model for Continue", 10000)
        self.win.refresh_models(select=name)


def show_train_dialog(window: MainWindow) -> TrainDialog:
    """Model ▸ Train on My Music…: show the window's dialog (made the first time)."""
    dlg = window.findChild(TrainDialog)
    if dlg is None:
        dlg = TrainDialog(window)
        window.tasks.submit(clean_stale_staging, name="musicgen-train-clean")
    else:
        if not dlg.job.running():
            dlg.refresh_bases()
    dlg.show()
    dlg.raise_()
    dlg.activateWindow()
    return dlg


def shutdown(window: QObject) -> None:
    """The window is closing: kill a running training (nothing is installed)."""
    dlg = window.findChild(TrainDialog)
    if dlg is not None:
        dlg.job.shutdown()
