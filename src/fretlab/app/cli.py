"""The ``fretlab`` command line: ``fretlab predict AUDIO``, ``fretlab export MODEL_DIR`` and ``fretlab recommend
PLAYLIST`` (see ``--help``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

PREDICT_HELP = """\
Classify a recording with a trained model directory (safetensors weights + config.json).

A single-note clip gives its class, confidence and the probability of every class (JSON on stdout).
A whole take is split at its spectral-flux onsets; each note is classified, giving a timeline of
onset, offset, label and confidence (JSON on stdout, or --output timeline.csv / timeline.json).
--plot timeline.png also draws the log-mel spectrogram with each note's span coloured by its class.
Any sample rate, mono or multi-channel, WAV or FLAC (anything libsndfile reads).

--engine auto (the default) runs <model dir>/model.onnx with ONNX Runtime when it is there (written by
`fretlab export`) and onnxruntime is installed, without importing torch; otherwise the torch model.
"""

EXPORT_HELP = """\
Export a trained model directory to one ONNX file: peak-normalized waveform windows (batch x samples at
the model's analysis rate) in, class probabilities out, the feature front end inside the graph. The class
list and the analysis settings go into the file's metadata. Every registry model exports (crnn, cnn, gru,
and rf as its unrolled trees). Default output: <model dir>/model.onnx, which `fretlab predict` then uses.
"""


RECOMMEND_HELP = """\
Continue a playlist with a trained set transformer (recipes/playlists: models/default, safetensors + config.json).

The playlist file holds one song id per line and optionally one 'title: <text>' line ('#' starts a comment).
A title alone (no songs) works: the model then recommends from the title. Prints JSON: the top-k new songs
with their scores, or with --top-p P, k songs sampled from the smallest set of best songs whose probability
sums to P (nucleus sampling; --seed makes it repeatable). Unknown song ids are listed in the error.
"""


def default_model_dir() -> str:
    """``paths.model`` from ./params.yaml when there is one, else the default ``models/default``."""
    from fretlab.params import DEFAULT_PARAMS, Paths, load_params  # pydantic: not on `--model-dir DIR --engine onnx`

    return load_params(DEFAULT_PARAMS).paths.model if DEFAULT_PARAMS.is_file() else Paths().model


def _add_model_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", type=Path, default=None,
                   help="model directory (default: paths.model from ./params.yaml, i.e. models/default)")


def _add_predict(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify a note or a whole recording", description=PREDICT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("audio", type=Path, help="audio file (WAV, FLAC, ...)")
    _add_model_dir(p)
    p.add_argument("--fold", type=int, default=None,
                   help="cross-validation recipes: use fold K's model, <model dir>/fold<K> (run in the recipe dir)")
    p.add_argument("--mode", choices=("auto", "note", "timeline"), default="auto",
                   help="note: one class for the whole clip; timeline: detect and classify every note; "
                        "auto (default): timeline when the clip is longer than predict.note_max_sec")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="write the result to this .csv (one row per event) or .json file instead of stdout")
    p.add_argument("--plot", type=Path, default=None,
                   help="also draw the log-mel spectrogram with each note's span coloured by class and labelled "
                        "with its confidence, to this .png file")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch engine's device")
    p.add_argument("--engine", choices=("auto", "onnx", "torch"), default="auto",
                   help="onnx: <model dir>/model.onnx through ONNX Runtime; torch: the safetensors model; auto "
                        "(default): onnx when model.onnx is there, up to date and onnxruntime installed")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    onset = p.add_argument_group("onset detection (defaults: the model directory's predict settings)")
    onset.add_argument("--note-max-sec", type=float, dest="note_max_sec")
    onset.add_argument("--onset-hop-length", type=int, dest="onset_hop_length")
    onset.add_argument("--onset-delta", type=float, dest="onset_delta", help="peak-picking threshold")
    onset.add_argument("--onset-wait-sec", type=float, dest="onset_wait_sec", help="shortest gap between onsets")
    onset.add_argument("--onset-backtrack", action=argparse.BooleanOptionalAction, dest="onset_backtrack", default=None)
    onset.add_argument("--offset-db", type=float, dest="offset_db", help="RMS drop below the peak that ends a note")
    onset.add_argument("--batch-size", type=int, dest="batch_size")
    p.set_defaults(func=_predict)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model directory to ONNX", description=EXPORT_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model_dir", type=Path, help="model directory written by the train stage")
    p.add_argument("--onnx", type=Path, default=None, help="output file (default: <model dir>/model.onnx)")
    p.set_defaults(func=_export)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _add_recommend(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recommend", help="continue a playlist (set transformer)", description=RECOMMEND_HELP,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("playlist", type=Path, help="playlist file: song ids, one per line, and an optional 'title:' line")
    _add_model_dir(p)
    p.add_argument("-k", "--top-k", type=int, default=10, dest="k", help="songs to recommend (default 10)")
    p.add_argument("--top-p", type=_probability, default=None,
                   help="sample the k songs from the top-p nucleus instead of taking the k best")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature for --top-p (default 1)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed for --top-p (default 0)")
    p.set_defaults(func=_recommend)


def _recommend(args: argparse.Namespace) -> int:
    import json

    from fretlab.recommend.predict import read_playlist_file, recommend  # torch: only inside recommend

    playlist = read_playlist_file(args.playlist)
    result = recommend(Path(args.model_dir or default_model_dir()), playlist, args.playlist, args.k, args.top_p,
                       args.seed, args.temperature)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def _export(args: argparse.Namespace) -> int:
    from fretlab.app.export import export_onnx  # torch: only here

    out = export_onnx(args.model_dir, args.onnx)
    print(f"{args.model_dir}: exported to {out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from fretlab.app.onnx_predict import make_predictor  # torch only if the torch engine is chosen
    from fretlab.app.predict import check_output_path, check_plot_path, to_json, write_result

    check_output_path(args.output)
    check_plot_path(args.plot)  # before the model is loaded: a bad path costs nothing
    overrides = {k: getattr(args, k) for k in ("note_max_sec", "onset_hop_length", "onset_delta", "onset_wait_sec",
                                               "onset_backtrack", "offset_db", "batch_size")}
    model_dir = Path(args.model_dir or default_model_dir())
    if args.fold is not None:  # recipes/*: one model directory per fold
        model_dir = model_dir / f"fold{args.fold}"
    predictor = make_predictor(model_dir, args.engine, args.device, overrides)
    wave = predictor.load(args.audio)
    result = predictor.predict_wave(wave, args.audio, args.mode, progress=not args.quiet)
    if args.plot is not None:
        from fretlab.app.timeline_plot import plot_timeline  # matplotlib: only when a plot is asked for

        plot_timeline(wave, predictor.cfg, result, args.plot)
        print(f"{args.audio}: plot written to {args.plot}", file=sys.stderr)  # stdout may be the JSON result
    if args.output is None:
        print(to_json(result))
        return 0
    write_result(result, args.output)
    if result["mode"] == "timeline":
        print(f"{args.audio}: {len(result['events'])} note(s) detected; timeline written to {args.output}")
    else:
        print(f"{args.audio}: {result['label']} ({result['confidence']:.3f}); written to {args.output}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``fretlab`` argument parser with its subcommands."""
    parser = argparse.ArgumentParser(prog="fretlab", description="fretlab: guitar playing-technique classification")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_predict(sub)
    _add_export(sub)
    _add_recommend(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit status (2 for bad input, with a one-line reason on stderr)."""
    if "numpy" not in sys.modules:  # a fresh `fretlab` process, not a caller's: before NumPy loads OpenBLAS
        # OpenBLAS would start a spinning thread per core at import; predict's matrix products already run in
        # one thread per core (onsets, ONNX batches), where those threads only contend: on the 2-core CPU the
        # 3-minute take took 1.01-1.14 instead of 1.20-1.33 s, onsets 0.16 instead of 0.23 s (docs/performance.md)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    args = build_parser().parse_args(argv)
    from fretlab.app.predict import PredictError
    from fretlab.audio.loading import AudioError

    try:
        return args.func(args)
    except Exception as exc:
        if not isinstance(exc, _user_errors(AudioError, PredictError)):
            raise
        print(f"fretlab {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _user_errors(*always: type[Exception]) -> tuple[type[Exception], ...]:
    """The bad-input errors, including those of modules that import torch only if they were imported.

    A module that was never imported cannot have raised its error; importing it to name the class would
    cost the ONNX engine the torch (or pydantic) import it exists to avoid.
    """
    lazy = {"fretlab.params": "ParamsError", "fretlab.artifacts.modeldir": "ModelDirError",
            "fretlab.app.export": "ExportError", "fretlab.recommend.predict": "PlaylistFileError",
            "fretlab.recommend.modeldir": "RecommenderDirError"}
    return (*always, *(getattr(sys.modules[m], name) for m, name in lazy.items() if m in sys.modules))


if __name__ == "__main__":
    sys.exit(main())
