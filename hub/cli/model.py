"""``qilu-hub model train|eval``: build and assess the household scene model."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

SOURCES = ("simulator", "kasteren", "casas", "recorder")
CV_CHOICES = ("leave-one-day-out", "leave-one-home-out", "days-of-labels")  # = evaluation.CV_CHOICES


# A household's labelled days trained beside other homes (--source recorder --home …) use this forest preset:
# with per-home class balance, every one of six real homes picks it from the other five, and it keeps a scene
# the household never labelled at least as well as `default` (bench/recognition_adaptation.py and
# bench/recognition_adaptation_unlabelled.py; docs/recognition.md "Adaptation").
HOUSEHOLD_FOREST = "leaf20_48trees"
# A household's days beside other homes decide with the prior correction its own labelled days choose: house C's
# meals need it, ARAS's are hurt by it, and no fixed power serves both (bench/recognition_adaptation.py).
HOUSEHOLD_PRIOR = "auto"


def household_rule(source: str, homes: list[Any], cv: str | None = None) -> bool:
    """Whether the household rule applies (forest ``HOUSEHOLD_FOREST``, prior correction ``HOUSEHOLD_PRIOR``):
    a household's labelled days trained
    beside other homes, i.e. ``model train --source recorder --home …``, or ``model eval --cv days-of-labels
    --home …``, which scores exactly that training on a home's first days.  ``model eval`` defaults as ``model
    train`` does, so an evaluation measures the model a household would ship."""
    return bool(homes) and (source == "recorder" or cv == "days-of-labels")


def register(subparsers: argparse._SubParsersAction) -> None:
    model = subparsers.add_parser("model", help="train and evaluate the scene recognition model")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train a model and write it as ONNX")
    _data_args(train)
    train.add_argument("--out", type=Path, default=None,
                       help="ONNX file to write (default: household_scene.onnx, with --review "
                            "household_scene_review.onnx, in the --config dir, where the hub loads them from)")
    train.add_argument("--review", action="store_true",
                       help="a day-review model: also reads what happens after each minute, so it labels finished "
                            "days (label suggestions, recognition.review_model) but never runs live")
    train.add_argument("--forest", default=None, help="named forest configuration, 'default' or 'leaf20_48trees' "
                       "(default: leaf20_48trees for --source recorder with --home, the household rule every "
                       "benchmarked home picks from the others; 'default' otherwise; see docs/recognition.md)")
    train.add_argument("--trees", type=int, default=None, help="number of trees (default: TrainConfig)")
    train.add_argument("--depth", type=int, default=None, help="maximum tree depth (default: TrainConfig)")
    train.add_argument("--min-leaf", type=int, default=None, help="minimum samples per leaf (default: TrainConfig)")
    train.add_argument("--per-device", action="store_true",
                       help="add a per-device feature block (this home's devices only; the model will not transfer)")
    train.add_argument("--class-bias", action="store_true",
                       help="learn per-class decision offsets by 7-fold cross-validation over days and embed them "
                            "(instead of --prior-correction's)")
    _prior_arg(train)
    train.add_argument("--bias-target", type=float, nargs=2, metavar=("TIMESLICE", "CLASS"),
                       help="with --class-bias: maximise the smaller margin over these two accuracies "
                            "(default: the mean of the two accuracies)")
    train.add_argument("--decoder", action="store_true",
                       help="embed a causal HMM decoder learnt from the label sequences (see docs/recognition.md)")
    train.add_argument("--channel-hmm", type=float, default=None, metavar="W",
                       help="join the forest with the rebuilt HMM over channel binaries, learnt on every day the "
                            "forest learns from (simulated ones too); the forest's evidence weighs W (0: the HMM "
                            "alone); the filter becomes the model's decoder (the bundled model is trained so: "
                            "models/MODEL_CARD.md)")
    _hmm_counts_arg(train, "with --channel-hmm: ")
    _decide_arg(train, "with --channel-hmm: ")
    train.add_argument("--bootstrap-days", type=int, default=14, metavar="N",
                       help="recorder source: also train on N simulated days in 2 homes, so the model keeps "
                            "the scenes the household has not labelled yet (0: household labels only)")
    train.add_argument("--only-if-better", action="store_true",
                       help="recorder source: hold out the newest labelled days, and write the model only if, "
                            "trained without them, it recognises them at least as well as the current model "
                            "(--compare-with, else the file at --out, else the bundled model); for scheduled runs. "
                            "With --review the bundled live model stands for 'no review model', as it reviews then")
    train.add_argument("--compare-with", type=Path, default=None, metavar="ONNX",
                       help="with --only-if-better: the model in use (default: --out if it exists, else bundled)")
    train.add_argument("--home", nargs=2, action="append", default=[], metavar=("DATA", "MAPPING"),
                       help="also train on this home (dataset path and mapping file; repeatable): the scenes it "
                            "labels, each home weighing the same as the --source data; the default model is "
                            "trained so (models/MODEL_CARD.md)")
    train.add_argument("--household-weight", type=float, default=4.0, metavar="W",
                       help="recorder source with bootstrap: weight of a labelled household slice against a "
                            "simulated one (default %(default)s)")
    train.add_argument("--day-weight", type=float, default=1.0, metavar="W",
                       help="recorder source with --home: the household's labelled days weigh W homes per "
                            "labelled day beside each --home (default %(default)s; docs/recognition.md)")
    train.add_argument("--class-balance", choices=("per-home", "pooled"), default=None,
                       help="with --home: balance the scenes within each home (the household's days, the simulated "
                            "days and each --home apart) or over all of them pooled (default: per-home for "
                            "--source recorder, pooled otherwise; docs/recognition.md)")
    train.add_argument("--unlabelled", choices=("idle", "open"), default="idle",
                       help="with --home: each home's unlabelled time is idle, or open to the scenes that home never "
                            "labels (evaluation.spread_unlabelled; default %(default)s)")
    train.add_argument("--max-bytes", type=int, default=1_000_000, metavar="N",
                       help="largest ONNX file to write: a forest over it is trained again one level shallower "
                            "until it fits (default %(default)s; a home with ~100 sensors and --per-device)")
    train.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="score a model on a dataset, or cross-validate training (--cv); JSON out, "
                                     "confusion-matrix PNG")
    _data_args(ev)
    ev.add_argument("--model", type=Path, default=None,
                    help="without --cv: the ONNX model to score (default: the one the hub in --config DIR uses: its "
                         "household_scene.onnx if present, else the bundled model)")
    ev.add_argument("--png", type=Path, default=Path("confusion.png"), help="confusion-matrix PNG to write")
    ev.add_argument("--cv", choices=CV_CHOICES, default=None,
                    help="cross-validate instead of scoring --model: leave-one-day-out (the --source home), "
                         "leave-one-home-out (--source and every --home, each held out in turn), days-of-labels "
                         "(learning curve in the --source home, optionally helped by the --home homes)")
    ev.add_argument("--home", nargs=2, action="append", default=[], metavar=("DATA", "MAPPING"),
                    help="another home (dataset path and its mapping file); repeatable")
    ev.add_argument("--simulator-days", type=int, default=0, metavar="N",
                    help="leave-one-home-out: also train on N simulated days in each of --simulator-homes homes")
    ev.add_argument("--simulator-homes", type=int, default=2, metavar="H",
                    help="leave-one-home-out with --simulator-days: how many simulated homes (default %(default)s); "
                         "together they weigh one home")
    ev.add_argument("--per-device", action="store_true",
                    help="leave-one-day-out / days-of-labels: add the home's per-device feature block")
    ev.add_argument("--label-days", type=int, nargs="+", default=[1, 2, 3, 5, 7], metavar="N",
                    help="days-of-labels: numbers of labelled days to try (default %(default)s)")
    ev.add_argument("--repeats", type=int, default=5, help="days-of-labels: random draws of days per count")
    ev.add_argument("--target-weight", type=float, default=None, metavar="W",
                    help="days-of-labels with --home: the target home's labelled days weigh W other homes, however "
                         "many they are")
    ev.add_argument("--per-day-weight", type=float, default=None, metavar="W",
                    help="days-of-labels with --home: the target's labelled days weigh W homes per labelled day "
                         "(overrides --target-weight; default: as model train weighs a household's days beside "
                         "--home homes, 1, unless --target-weight is given)")
    ev.add_argument("--class-balance", choices=("per-home", "pooled"), default="per-home",
                    help="days-of-labels with --home: balance the scenes within each home or pooled over all "
                         "(default %(default)s, as model train --source recorder)")
    ev.add_argument("--unlabelled", choices=("idle", "open"), default="idle",
                    help="leave-one-home-out: a training home's unlabelled time is idle, or open to the scenes that "
                         "home never labels (evaluation.spread_unlabelled; default %(default)s)")
    ev.add_argument("--all-scenes", action="store_true",
                    help="leave-one-home-out: train on every scene the training homes label, as a hub knows before "
                         "it knows the home's; decisions outside the scored home's scenes count as idle (default: "
                         "train on the scored home's scenes only)")
    ev.add_argument("--channel-hmm", type=float, default=None, metavar="W",
                    help="leave-one-home-out: ours is the forest joined with the channel HMM at weight W, as "
                         "model train --channel-hmm writes it")
    _hmm_counts_arg(ev, "leave-one-home-out with --channel-hmm: ")
    _decide_arg(ev, "leave-one-home-out with --channel-hmm: ")
    ev.add_argument("--boot", type=int, default=1000, help="bootstrap resamples of days for the 95%% intervals")
    ev.add_argument("--forest", default=None,
                    help="named forest configuration (default as for train: leaf20_48trees with --source recorder "
                         "and --home, and for days-of-labels with --home; 'default' otherwise)")
    _prior_arg(ev, "days-of-labels with --home: ")
    ev.add_argument("--trees", type=int, default=None, help="number of trees (default: the forest's)")
    ev.add_argument("--depth", type=int, default=None, help="maximum tree depth (default: the forest's)")
    ev.add_argument("--no-hmm", action="store_true", help="leave-one-home-out: skip the rebuilt HMM baseline")
    ev.add_argument("--train-homes", nargs="+", default=None, metavar="NAME",
                    help="leave-one-home-out: train only on these homes (named after their mapping files), e.g. "
                         "those whose terms allow shipping a model; every home is still scored")
    ev.add_argument("--compare-model", type=Path, action="append", default=[], metavar="ONNX",
                    help="leave-one-home-out: also score this finished model on every home (e.g. the bundled one)")
    ev.add_argument("--json", type=Path, default=None, help="also write the JSON result to this file")
    ev.add_argument("--curve-png", type=Path, default=Path("learning_curve.png"),
                    help="days-of-labels: learning-curve PNG to write")
    ev.set_defaults(func=cmd_eval)


def _hmm_counts_arg(p: argparse.ArgumentParser, where: str = "") -> None:
    # The bundled model counts homes: with days, which simulated days the simulator drew decided whether it beat
    # the rebuilt HMM in houses B, C and ARAS (docs/recognition.md, "Which seed decides").
    p.add_argument("--hmm-counts", choices=("days", "homes"), default="days",
                   help=f"{where}the channel HMM counts every training day the same (days), or each home the same "
                        "as the forest weighs them (homes: the simulated homes together count as one, so more "
                        "of them average the simulator's draw instead of outweighing the real homes); default "
                        "%(default)s")


def _decide_arg(p: argparse.ArgumentParser, where: str = "") -> None:
    # The bundled model decides balanced: the measure is class accuracy (mean per-class recall), and the
    # posterior carries the training homes' class frequencies, which a home never seen does not share
    # (docs/recognition.md, "Deciding for class accuracy").
    p.add_argument("--decide", choices=("posterior", "balanced"), default="posterior",
                   help=f"{where}the label is the filtered posterior's most probable (posterior), or that of the "
                        "posterior divided by the class frequencies the HMM's transitions settle to (balanced: "
                        "the decision for mean per-class recall); default %(default)s")


def _channel_hmm_flag_without_it(args: argparse.Namespace, command: str) -> bool:
    """Whether a flag of the channel HMM's was given without ``--channel-hmm`` (said on stderr)."""
    for flag, given in (("--hmm-counts", args.hmm_counts != "days"), ("--decide", args.decide != "posterior")):
        if given and args.channel_hmm is None:
            print(f"qilu-hub model {command}: {flag} is the channel HMM's: give --channel-hmm W too", file=sys.stderr)
            return True
    return False


def _prior_power(text: str) -> float | str:
    """--prior-correction's value: a power, or ``auto`` (chosen on the household's own labelled days)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a power (0 to 4) nor auto") from None


def _prior_arg(p: argparse.ArgumentParser, where: str = "") -> None:
    # No fixed power serves every home: full lifts house C at 3 labelled days (0.90 -> 0.95 of its all-other-days
    # class accuracy) but costs ARAS (0.92 -> 0.90); auto, the household's own days choosing, keeps both (C 0.945,
    # ARAS 0.923; bench/recognition_adaptation.py), so it is the household default.
    p.add_argument("--prior-correction", type=_prior_power, nargs="?", const=1.0, default=None, metavar="POWER",
                   help=f"{where}decide with the forest's probabilities divided by each scene's total training weight "
                        "(to POWER, default 1; 0.5: half-way), so a scene only a few of the homes label weighs as much "
                        "as the others (in a written model: its class bias); auto: the power (0, 0.5 or 1) that "
                        "recognises the household's labelled days best, each fold of them predicted by a model "
                        "trained without it (up to 5 more forests to train); default auto for a household's days "
                        "beside --home homes, 0 (off) otherwise; see docs/recognition.md \"Adaptation\"")


def _default_prior_power(args: argparse.Namespace, household: bool) -> float | str:
    """--prior-correction when not given: ``HOUSEHOLD_PRIOR`` for the household rule, unless another decision was
    asked for (--class-bias, --channel-hmm); 0 otherwise."""
    other = getattr(args, "class_bias", False) or getattr(args, "channel_hmm", None) is not None
    return HOUSEHOLD_PRIOR if household and not other else 0.0


def _prior_power_refused(args: argparse.Namespace, command: str) -> bool:
    """Whether --prior-correction is out of range (said on stderr)."""
    if args.prior_correction == "auto" or 0 <= args.prior_correction <= 4:
        return False
    print(f"qilu-hub model {command}: --prior-correction POWER must be between 0 and 4, or auto", file=sys.stderr)
    return True


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="simulator", metavar="SOURCE",
                   help="a dataset folder or file read with --mapping FILE (any format a mapping file names: "
                        "Kasteren, ARAS, Ordóñez, UCAmI, CASAS, recorder JSONL, a Home Assistant database), or "
                        f"one of {', '.join(SOURCES)} (kasteren and casas: built-in mappings unless --mapping)")
    p.add_argument("--mapping", type=Path, default=None, metavar="FILE",
                   help="dataset mapping file (YAML): sensors -> area/capability, activity labels -> scenes "
                        "(docs/recognition.md; one per benchmarked dataset in bench/datasets/)")
    p.add_argument("--data", type=Path,
                   help="Kasteren dir, CASAS file; recorder: history JSONL export, or omit to read the hub's "
                        "own recorder in --config DIR")
    p.add_argument("--labels", type=Path,
                   help="recorder source: a household labels JSONL (start, end, label) used with the labels "
                        "given in the API/dashboard; default CONFIG_DIR/recognition_labels.jsonl if present")
    p.add_argument("--sensor-areas", type=Path, help="CASAS source: JSON {sensor: area}")
    p.add_argument("--raw-labels", action="store_true", help="keep the dataset's activity names")
    p.add_argument("--days", type=int, default=21, help="simulator: days per home")
    p.add_argument("--homes", type=int, default=4, help="simulator: number of homes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def _load(args: argparse.Namespace) -> Any:
    from qilu_hub.recognition.datasets import (
        DatasetError,
        load_casas,
        load_dataset,
        load_kasteren,
        load_recorder_export,
    )
    from qilu_hub.recognition.mapping_file import MappingError, load_mapping
    from qilu_hub.recognition.simulator import SimConfig, simulate

    if args.source not in SOURCES or (args.mapping is not None and args.source in ("kasteren", "casas")):
        if args.mapping is None:
            raise SystemExit(f"qilu-hub model: --source {args.source} is a dataset path: give --mapping FILE "
                             f"(or one of {', '.join(SOURCES)})")
        try:
            mapping = load_mapping(args.mapping)
        except MappingError as exc:
            raise DatasetError(str(exc)) from exc
        if args.labels is not None:  # household labels for a recorder export or a Home Assistant database
            mapping.files["labels"] = str(args.labels.resolve())
        data = args.data if args.source in SOURCES else Path(args.source)
        if data is None:
            raise SystemExit(f"qilu-hub model: --data is required for --source {args.source}")
        return load_dataset(data, mapping, scenes=not args.raw_labels)
    if args.source == "simulator":
        return simulate(SimConfig(days=args.days, homes=args.homes, seed=args.seed))
    if args.source == "recorder" and (args.data is None or args.data.is_dir()):
        import asyncio

        from qilu_hub.cli import config_dir
        from qilu_hub.recognition.recorder_source import async_load_recorder
        from qilu_hub.setup import load_hub_config

        directory = args.data or config_dir(args)
        return asyncio.run(async_load_recorder(directory, args.labels, config=load_hub_config(directory)))
    if args.data is None:
        raise SystemExit(f"qilu-hub model: --data is required for --source {args.source}")
    if args.source == "kasteren":
        ds = load_kasteren(args.data)
    elif args.source == "casas":
        areas = json.loads(args.sensor_areas.read_text()) if args.sensor_areas else None
        ds = load_casas(args.data, areas)
    else:
        if args.labels is None:
            raise SystemExit("qilu-hub model: --labels is required for --source recorder")
        return load_recorder_export(args.data, args.labels)  # household labels are already scenes
    return ds if args.raw_labels else ds.to_scenes()


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from qilu_hub.recognition.channel_hmm import fit_channel_hmm, forest_prior
    from qilu_hub.recognition.datasets import DatasetError
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.training import (
        FOREST_CONFIGS,
        build_matrix,
        class_mass,
        fit_class_bias,
        fit_decoder,
        fit_within_bytes,
        margin_objective,
        out_of_fold,
        prior_correction,
        to_onnx,
    )

    if args.out is None:
        args.out = _household_path(args, review=args.review)
    if args.review and args.decoder:
        print("qilu-hub model train: --review cannot be combined with --decoder (a causal filter for live models)",
              file=sys.stderr)
        return 2
    if args.unlabelled == "open" and args.home and (args.decoder or args.class_bias):
        # Both learn from the rows in time order, which an open slice repeats under several labels.
        print("qilu-hub model train: --unlabelled open cannot be combined with --decoder or --class-bias",
              file=sys.stderr)
        return 2
    if _channel_hmm_flag_without_it(args, "train"):
        return 2
    if args.channel_hmm is not None:
        if not 0 <= args.channel_hmm <= 16:
            print("qilu-hub model train: --channel-hmm W must be between 0 and 16", file=sys.stderr)
            return 2
        clash = [flag for flag, on in (("--review", args.review), ("--decoder", args.decoder),
                                       ("--class-bias", args.class_bias), ("--prior-correction", args.prior_correction),
                                       ("--unlabelled open", args.unlabelled == "open")) if on]
        if clash:
            # The HMM's filter is the model's decoder and reads the rows as time-ordered days.
            print(f"qilu-hub model train: --channel-hmm cannot be combined with {', '.join(clash)}", file=sys.stderr)
            return 2
    household = household_rule(args.source, args.home)
    if args.forest is None:
        args.forest = HOUSEHOLD_FOREST if household else "default"
    if args.prior_correction is None:
        args.prior_correction = _default_prior_power(args, household)
    if _prior_power_refused(args, "train"):
        return 2
    if args.forest not in FOREST_CONFIGS:
        print(f"qilu-hub model train: unknown --forest {args.forest!r}; one of {', '.join(FOREST_CONFIGS)}",
              file=sys.stderr)
        return 2
    try:
        dataset = _load(args)
    except (DatasetError, OSError) as exc:
        print(f"qilu-hub model train: {exc}", file=sys.stderr)
        return 1
    spec = DEFAULT_SPEC.with_sources(e.source for e in dataset.events) if args.per_device else DEFAULT_SPEC
    matrix = build_matrix(dataset, spec, progress=not args.no_progress, lookahead=args.review)
    if len(matrix.y) == 0:
        print("qilu-hub model train: no labelled time overlaps the recorded history; label a stretch of time "
              "while the hub records, then train again", file=sys.stderr)
        return 1
    overrides = {"n_estimators": args.trees, "max_depth": args.depth, "min_samples_leaf": args.min_leaf}
    base = replace(FOREST_CONFIGS[args.forest], seed=args.seed)
    config = replace(base, **{k: v for k, v in overrides.items() if v is not None})
    prior_choice = None
    if args.prior_correction == "auto" and not args.class_bias:
        try:
            prior_choice = _prior_by_days(matrix, spec, args, config)
        except (DatasetError, OSError) as exc:  # a --home that cannot be read
            print(f"qilu-hub model train: {exc}", file=sys.stderr)
            return 1
        args.prior_correction = prior_choice.power  # the gate's candidate and the written model decide alike
    elif args.prior_correction == "auto":
        args.prior_correction = 0.0
    gate = None
    if args.only_if_better:
        if args.source != "recorder":
            print("qilu-hub model train: --only-if-better compares on the household's labels (--source recorder)",
                  file=sys.stderr)
            return 2
        try:
            gate = _gate(args, dataset, matrix, spec, config)
        except (DatasetError, OSError) as exc:  # a --home that cannot be read
            print(f"qilu-hub model train: {exc}", file=sys.stderr)
            return 1
        if isinstance(gate, str):
            print(f"qilu-hub model train: {gate}", file=sys.stderr)
            return 1
        if not gate["accepted"]:
            print(json.dumps({"model": str(args.out), "written": False, "gate": gate}))
            print("qilu-hub model train: trained without the newest labelled days, the new model recognised them "
                  "less well than the current one; the current model is kept", file=sys.stderr)
            return 0
    weights = groups = share = None
    bootstrap = args.source == "recorder" and args.bootstrap_days > 0
    if bootstrap:
        matrix, weights = _with_bootstrap(matrix, spec, args)
    if args.home:
        try:
            matrix, weights, groups, share = _with_homes(matrix, weights, spec, args)
        except (DatasetError, OSError) as exc:
            print(f"qilu-hub model train: {exc}", file=sys.stderr)
            return 1
    try:
        model, capped = fit_within_bytes(matrix.X, matrix.y, config,
                                         lambda m: len(to_onnx(m, spec, lookahead=args.review)),
                                         args.max_bytes, sample_weight=weights, groups=groups, share=share)
    except ValueError as exc:
        print(f"qilu-hub model train: {exc}", file=sys.stderr)
        return 1
    depth_capped = capped.max_depth != config.max_depth
    config = capped
    slices = len(matrix.y) if share is None else round(float(share.sum()))  # an open slice is several rows
    provenance = {"source": args.source, "slices": str(slices), "config": repr(config)}
    if args.source == "simulator":
        provenance["simulator"] = f"days={args.days} homes={args.homes} seed={args.seed}"
    if args.home:
        provenance["homes"] = ", ".join(Path(m).stem for _d, m in args.home)
        provenance["class_balance"] = _class_balance(args)
        provenance["unlabelled"] = args.unlabelled
    if bootstrap:
        provenance["bootstrap"] = (f"simulator days={args.bootstrap_days} homes=2 seed={args.seed}, "
                                   f"household weight {args.household_weight}")
    if prior_choice is not None:
        held = ", ".join(f"{p:g}: {v:.3f}" for p, v in prior_choice.scores.items())
        provenance["prior_correction"] = (f"power {prior_choice.power:g}, chosen on {prior_choice.folds} folds of the "
                                          f"labelled days (class accuracy held out: {held})" if prior_choice.folds
                                          else "power 0: fewer than 2 labelled days to choose on")
    labels = [str(c) for c in model.classes_]
    decoder = fit_decoder(matrix.y, matrix.days, labels, config) if args.decoder else None
    joined = None
    if args.channel_hmm is not None:
        mass = class_mass(matrix.y, config.balance, weights, groups, share)
        # The HMM learns on every day the forest learnt from, simulated ones included (channel_hmm.fit_channel_hmm),
        # each day the same, or with --hmm-counts homes each row as the forest weighs its home.
        counts = weights if args.hmm_counts == "homes" else None
        joined = fit_channel_hmm(matrix.X, matrix.y, matrix.days, labels, spec, args.channel_hmm,
                                 forest_prior(mass, labels), sample_weight=counts, balanced=args.decide == "balanced")
        provenance["channel_hmm"] = (f"forest weight {args.channel_hmm:g}, HMM on {len(matrix.y)} slices"
                                     + (", each home counted the same" if counts is not None else "")
                                     + (", decides balanced" if joined.balanced else ""))
    bias = None
    if args.class_bias:  # offsets learnt on held-out days, never on the days a model was trained on
        everything = np.ones(len(matrix.y), dtype=bool)
        held_out = out_of_fold(matrix, config, everything, min(7, len(np.unique(matrix.days))))
        if args.bias_target:
            bias, _ = fit_class_bias(held_out, matrix.y, sorted(labels), margin_objective(*args.bias_target))
        else:
            bias, _ = fit_class_bias(held_out, matrix.y, sorted(labels))
    elif args.prior_correction:  # the scenes' training weights divided out: each decides with the same prior
        bias = prior_correction(class_mass(matrix.y, config.balance, weights, groups, share), args.prior_correction)
    blob = to_onnx(model, spec, provenance, decoder, bias, lookahead=args.review, channel_hmm=joined)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Write beside, then rename: a running hub reloads the file when it changes and must never see half of it.
    partial = args.out.with_name(f".{args.out.name}.partial")
    partial.write_bytes(blob)
    os.replace(partial, args.out)
    report = {"model": str(args.out), "bytes": len(blob), "labels": list(map(str, model.classes_)),
              "slices": slices, "rows": len(matrix.y), "feature_spec": spec.version,
              "decoder": decoder is not None or joined is not None, "channel_hmm": args.channel_hmm,
              "review": args.review, "max_depth": config.max_depth, "depth_capped_to_fit": depth_capped,
              "class_bias": bias.to_dict()["offsets"] if bias is not None else None,
              "decision": "class-bias" if args.class_bias else "prior-correction" if args.prior_correction
              else "balanced" if joined is not None and joined.balanced else "plain",
              "prior_correction": args.prior_correction if not args.class_bias else 0.0}
    if prior_choice is not None:
        report["prior_choice"] = {"power": prior_choice.power, "folds": prior_choice.folds,
                                  "held_out_class_accuracy": {f"{p:g}": round(v, 4)
                                                              for p, v in prior_choice.scores.items()}}
    if gate is not None:
        report.update(written=True, gate=gate)
    print(json.dumps(report))
    return 0


def _household_path(args: argparse.Namespace, review: bool = False) -> Path:
    """Where the hub in --config DIR loads the household's model from: not the working directory (a train run in
    a checkout would otherwise overwrite the bundled model, and the hub would never see the result)."""
    from qilu_hub.cli import config_dir
    from qilu_hub.recognition.settings import HOUSEHOLD_MODEL, HOUSEHOLD_REVIEW_MODEL

    return config_dir(args) / (HOUSEHOLD_REVIEW_MODEL if review else HOUSEHOLD_MODEL)


def _gate(args: argparse.Namespace, dataset: Any, household: Any, spec: Any, config: Any) -> dict[str, Any] | str:
    """Hold out the newest fifth of the labelled days (at least one); train on the rest as the real run will;
    score that candidate and the current model on the held-out days. Accepted when the candidate's mean of
    time-slice and class accuracy is at least the current model's. The current model may have been trained
    on those days already, which flatters it: the gate errs towards keeping what works."""
    import numpy as np

    from qilu_hub.recognition.component import DEFAULT_MODEL
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import ModelLoadError, SceneModel
    from qilu_hub.recognition.training import Matrix, build_matrix, class_mass, fit, metrics, prior_correction

    days = sorted(set(household.days.tolist()))
    if len(days) < 2:
        return "--only-if-better needs labels on at least 2 days (the newest are held out to compare)"
    held = days[-max(1, round(len(days) / 5)):]
    test = np.isin(household.days, held)
    train = Matrix(household.X[~test], household.y[~test], household.days[~test], household.times[~test])
    weights = groups = None
    if args.bootstrap_days > 0:
        train, weights = _with_bootstrap(train, spec, args)
    share = None
    if args.home:  # trained as the real run will be: beside the same homes
        train, weights, groups, share = _with_homes(train, weights, spec, args)
    candidate = fit(train.X, train.y, config, sample_weight=weights, groups=groups, share=share)
    proba = candidate.predict_proba(household.X[test])
    if args.prior_correction and not args.class_bias:  # decided as the written model will decide
        mass = class_mass(train.y, config.balance, weights, groups, share)
        proba = prior_correction(mass, args.prior_correction).apply(proba)
    truth = household.y[test]
    labels = sorted(set(truth.tolist()) | {str(c) for c in candidate.classes_})

    def score(pred: Any) -> dict[str, float]:
        m = metrics(truth, pred, labels)
        return {k: round(m[k], 4) for k in ("timeslice_accuracy", "class_accuracy")}

    result: dict[str, Any] = {"held_out_days": held, "held_out_slices": int(test.sum()),
                              "candidate": score(np.asarray(candidate.classes_).astype(str)[proba.argmax(axis=1)])}
    current_path = args.compare_with or (args.out if args.out.is_file() else DEFAULT_MODEL)
    result["current_model"] = str(current_path)
    try:
        current = SceneModel.load(current_path, DEFAULT_SPEC, review=None)  # a review model: what reviews now
    except ModelLoadError as exc:  # nothing usable to keep
        result.update(current=None, accepted=True, reason=str(exc))
        return result
    same = current.spec == spec and current.lookahead == args.review
    # Same rows in the same order, with the current model's own columns.
    X = household.X if same else build_matrix(dataset, current.spec, lookahead=current.lookahead).X
    # As the current model decides live: through its decoder, if it has one (the bundled model has).
    decided = current.decode(current.predict_proba(X[test]), household.days[test])
    result["current"] = score(np.asarray(current.labels)[decided.argmax(axis=1)])

    def mean(s: dict[str, float]) -> float:
        return (s["timeslice_accuracy"] + s["class_accuracy"]) / 2

    result["accepted"] = mean(result["candidate"]) >= mean(result["current"])
    return result


def _prior_by_days(household: Any, spec: Any, args: argparse.Namespace, config: Any) -> Any:
    """``--prior-correction auto``: the power the household's own labelled days choose (``training.
    prior_power_by_days``), each fold predicted by a forest trained as the real run trains (the other folds,
    simulated bootstrap days, --home homes), each power deciding with that forest's own class masses."""
    from qilu_hub.recognition.training import class_mass, fit, prior_power_by_days

    def train(rest: Any) -> tuple[Any, dict[str, float]]:
        weights = groups = share = None
        if args.source == "recorder" and args.bootstrap_days > 0:
            rest, weights = _with_bootstrap(rest, spec, args)
        if args.home:
            rest, weights, groups, share = _with_homes(rest, weights, spec, args)
        model = fit(rest.X, rest.y, config, sample_weight=weights, groups=groups, share=share)
        return model, class_mass(rest.y, config.balance, weights, groups, share)

    return prior_power_by_days(household, train)


def _with_bootstrap(matrix: Any, spec: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    """The household's labelled slices plus simulated days: labels teach this home's habits, the
    simulator keeps the scenes nobody has labelled yet. Returns the joined matrix and sample weights."""
    import numpy as np

    from qilu_hub.recognition.simulator import SimConfig, simulate
    from qilu_hub.recognition.training import Matrix, build_matrix

    sim = getattr(args, "_bootstrap_sim", None)
    if sim is None:  # the gate, the prior choice's folds and the real run join the same simulated days: build once
        sim = build_matrix(simulate(SimConfig(days=args.bootstrap_days, homes=2, seed=args.seed)), spec,
                           lookahead=args.review)
        args._bootstrap_sim = sim
    joined = Matrix(
        np.vstack([matrix.X, sim.X]), np.concatenate([matrix.y, sim.y]),
        # Day groups stay apart: cross-validation must never mix a household day with a simulated one.
        np.concatenate([np.char.add("home:", matrix.days.astype(str)), np.char.add("sim:", sim.days.astype(str))]),
        np.concatenate([matrix.times, sim.times]),
    )
    weights = np.concatenate([np.full(len(matrix.y), args.household_weight), np.ones(len(sim.y))])
    return joined, weights


def _class_balance(args: argparse.Namespace) -> str:
    """--class-balance, or its default: per home for a household's days (bench/recognition_adaptation.py)."""
    return str(args.class_balance or ("per-home" if args.source == "recorder" else "pooled"))


def _with_homes(matrix: Any, weights: Any, spec: Any, args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    """The --source slices plus each --home's, every home weighing the same in total, so a 30-day home does not
    outvote a 14-day one; but a household's own labelled days (--source recorder) weigh ``--day-weight`` homes
    per labelled day, so its habits win over the other homes' more as it labels more, while scenes it has not
    labelled yet still come from them (simulated bootstrap days, if any, weigh one home).  Returns the joined
    matrix, sample weights, with per-home class balance the group of each row (the household's days, the
    simulated days, each --home) that ``training.fit`` balances the scenes within (else None), and with
    ``--unlabelled open`` the share of a slice each row stands for (else None)."""
    import numpy as np

    from qilu_hub.recognition.datasets import load_dataset
    from qilu_hub.recognition.evaluation import SHARED_SCENES, home_from_dataset, household_weight
    from qilu_hub.recognition.training import Matrix

    cached = getattr(args, "_home_parts", None)
    if cached is None:  # the --only-if-better gate and the real run join the same homes: read them once
        cached = [home_from_dataset(Path(mapping).stem, load_dataset(data, mapping), spec, SHARED_SCENES).matrix
                  for data, mapping in args.home]
        args._home_parts = cached
    parts = [matrix, *cached]
    base = np.ones(len(matrix.y)) if weights is None else np.asarray(weights, dtype=float)
    simulated = np.zeros(len(matrix.y), dtype=bool)
    if args.source == "recorder":
        days = matrix.days.astype(str)
        simulated = np.char.startswith(days, "sim:")  # _with_bootstrap's days; the rest are the household's
        own = ~simulated
        factor = household_weight(len(np.unique(days[own])), args.day_weight)
        first = np.where(own, base * factor / max(base[own].sum(), 1e-12), base / max(base[~own].sum(), 1e-12))
    else:
        first = base / base.sum()
    scaled = [first] + [np.full(len(p.y), 1.0 / len(p.y)) for p in parts[1:]]
    total = sum(len(p.y) for p in parts)
    joined = Matrix(
        np.vstack([p.X for p in parts]), np.concatenate([p.y for p in parts]),
        np.concatenate([np.char.add(f"h{i}:", p.days.astype(str)) for i, p in enumerate(parts)]),
        np.concatenate([p.times for p in parts]),
    )
    groups = None
    if _class_balance(args) == "per-home":
        groups = np.concatenate([simulated.astype(int)] + [np.full(len(p.y), 2 + i) for i, p in enumerate(parts[1:])])
    weights = np.concatenate(scaled) * total
    if args.unlabelled == "idle":
        return joined, weights, groups, None
    # Each --home's unlabelled time is open to the scenes it never labels; the --source slices (the household's
    # own labels, or the simulator's, which label every scene) are kept as they are.
    from qilu_hub.recognition.evaluation import spread_parts

    index, labels, share = spread_parts(joined.y, [len(p.y) for p in parts], closed=[0])
    spread = Matrix(joined.X[index], labels, joined.days[index], joined.times[index])
    return spread, weights[index] * share, groups[index] if groups is not None else None, share


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from qilu_hub.recognition.datasets import DatasetError
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.runtime import ModelLoadError, SceneModel
    from qilu_hub.recognition.training import build_matrix, confusion_png, metrics

    if args.cv is not None:
        return _cross_validate(args)
    if args.model is None:
        from qilu_hub.recognition.component import DEFAULT_MODEL

        household = _household_path(args)
        args.model = household if household.is_file() else DEFAULT_MODEL
    try:
        model = SceneModel.load(args.model, DEFAULT_SPEC, review=None)  # either kind; a review model looks ahead
        dataset = _load(args)
    except (ModelLoadError, DatasetError, OSError) as exc:
        print(f"qilu-hub model eval: {exc}", file=sys.stderr)
        return 1
    matrix = build_matrix(dataset, model.spec, progress=not args.no_progress, lookahead=model.lookahead)
    proba = model.decode(model.predict_proba(matrix.X), matrix.days)  # its decoder, if any, restarted each day
    pred = np.asarray(model.labels)[proba.argmax(axis=1)]
    labels = sorted(set(model.labels) | set(map(str, matrix.y)))
    result = metrics(matrix.y, pred, labels)
    confusion_png(np.asarray(result["confusion"]), labels, args.png, f"{args.model.name} on {args.source}")
    result["png"] = str(args.png)
    print(json.dumps({k: v for k, v in result.items() if k != "confusion"}, indent=2))
    return 0


def _cross_validate(args: argparse.Namespace) -> int:
    """``model eval --cv``: train and score by cross-validation; prints (and with --json writes) the figures."""
    import time

    import numpy as np

    from qilu_hub.recognition.datasets import DatasetError, load_dataset
    from qilu_hub.recognition.evaluation import (
        PER_DAY_WEIGHT,
        confusion_of,
        days_of_labels,
        figures,
        home_from_dataset,
        learning_curve_png,
        leave_one_home_out,
        lodo_predictions,
    )
    from qilu_hub.recognition.features import DEFAULT_SPEC
    from qilu_hub.recognition.mapping_file import MappingError
    from qilu_hub.recognition.runtime import ModelLoadError, SceneModel
    from qilu_hub.recognition.training import FOREST_CONFIGS, build_matrix, confusion_png

    household = household_rule(args.source, args.home, args.cv)
    if args.forest is None:
        args.forest = HOUSEHOLD_FOREST if household else "default"
    if args.prior_correction is None:
        args.prior_correction = _default_prior_power(args, household)
    if _prior_power_refused(args, "eval"):
        return 2
    if args.channel_hmm is not None and (args.cv != "leave-one-home-out" or args.unlabelled == "open"
                                         or not 0 <= args.channel_hmm <= 16):
        print("qilu-hub model eval: --channel-hmm W (0 to 16) scores leave-one-home-out, with --unlabelled idle",
              file=sys.stderr)
        return 2
    if _channel_hmm_flag_without_it(args, "eval"):
        return 2
    if args.boot < 0:
        print("qilu-hub model eval: --boot must be 0 (no intervals) or more", file=sys.stderr)
        return 2
    if args.simulator_homes < 1:
        print("qilu-hub model eval: --simulator-homes must be at least 1", file=sys.stderr)
        return 2
    if args.forest not in FOREST_CONFIGS:
        print(f"qilu-hub model eval: unknown --forest {args.forest!r}; one of {', '.join(FOREST_CONFIGS)}",
              file=sys.stderr)
        return 2
    config = replace(FOREST_CONFIGS[args.forest], seed=args.seed)
    if args.trees is not None:
        config = replace(config, n_estimators=args.trees)
    if args.depth is not None:
        config = replace(config, max_depth=args.depth)
    t0 = time.perf_counter()
    homes = []
    try:
        if args.source != "simulator" or args.cv != "leave-one-home-out" or not args.home:
            target = _load(args)
            # A home is named after its mapping file (one folder can hold two homes, as Ordóñez A and B).
            name = args.mapping.stem if args.mapping else Path(str(args.data or args.source)).name
            homes.append((name, target))
        for data, mapping in args.home:
            homes.append((Path(mapping).stem, load_dataset(data, mapping)))
    except (DatasetError, MappingError, OSError) as exc:
        print(f"qilu-hub model eval: {exc}", file=sys.stderr)
        return 1
    names = [n for n, _ in homes]
    for i, n in enumerate(names):  # two folders with one name (uci_adl_ordonez for A and B): keep both
        if names.count(n) > 1:
            names[i] = f"{n}#{names[:i + 1].count(n)}"
    result: dict[str, Any] = {"cv": args.cv, "forest": args.forest,
                              "config": {k: v for k, v in config.__dict__.items() if k != "n_jobs"},
                              "bootstrap": f"{args.boot} resamples of whole days, 95% percentile intervals"}
    if args.cv == "leave-one-home-out":
        if len(homes) < 2:
            print("qilu-hub model eval: leave-one-home-out needs at least two homes (--source and --home)",
                  file=sys.stderr)
            return 2
        built = [home_from_dataset(n, ds) for n, (_, ds) in zip(names, homes, strict=True)]
        extra = []
        if args.simulator_days > 0:
            from qilu_hub.recognition.simulator import SimConfig, simulate

            extra = [build_matrix(simulate(SimConfig(days=args.simulator_days, homes=args.simulator_homes,
                                                     seed=args.seed)))]
        preds: dict[str, Any] = {}
        fixed = {}
        try:
            for path in args.compare_model:
                fixed[f"model:{path.name}"] = SceneModel.load(path, DEFAULT_SPEC)
        except ModelLoadError as exc:
            print(f"qilu-hub model eval: {exc}", file=sys.stderr)
            return 1
        if args.train_homes:
            unknown = sorted(set(args.train_homes) - {h.name for h in built})
            if unknown:
                print(f"qilu-hub model eval: --train-homes {', '.join(unknown)}: no such home "
                      f"({', '.join(h.name for h in built)})", file=sys.stderr)
                return 2
            result["train_homes"] = args.train_homes
        result["unlabelled"] = args.unlabelled
        if args.channel_hmm is not None:
            result["channel_hmm"] = args.channel_hmm
            result["hmm_counts"] = args.hmm_counts
            result["decide"] = args.decide
        if extra:
            result["simulator"] = {"days_per_home": args.simulator_days, "homes": args.simulator_homes,
                                   "seed": args.seed}
        result["train_scenes"] = "every scene the training homes label" if args.all_scenes else "the scored home's"
        result["homes"] = leave_one_home_out(built, config, extra, args.boot, not args.no_hmm, preds,
                                             args.train_homes, fixed, open_unlabelled=args.unlabelled == "open",
                                             channel_hmm=args.channel_hmm, all_scenes=args.all_scenes,
                                             hmm_count_homes=args.hmm_counts == "homes",
                                             balanced=args.decide == "balanced")
        rows = result["homes"].values()
        hmms = () if args.no_hmm else ("hmm_causal", "hmm_offline") + (
            ("hmm_causal_balanced",) if args.decide == "balanced" else ())
        for who in ("ours", "majority_class", *hmms, *fixed):
            scored = [r[who] for r in rows if r.get(who)]
            result[f"mean_over_homes_{who}"] = {
                m: round(float(np.mean([f[m] for f in scored])), 4) for m in ("timeslice_accuracy", "class_accuracy")
            } | {"homes": len(scored)}
        scored_homes = [h for h in built if h.name in preds]
        y = np.concatenate([h.matrix.y for h in scored_homes])
        pred = np.concatenate([preds[h.name] for h in scored_homes])
        labels = sorted(set(y.tolist()))
        confusion_png(confusion_of(y, pred, labels), labels, args.png, "leave-one-home-out, all homes")
    else:
        name, dataset = names[0], homes[0][1]
        spec = DEFAULT_SPEC.with_sources(e.source for e in dataset.events) if args.per_device else DEFAULT_SPEC
        target = home_from_dataset(name, dataset, spec, keep=None)
        if target.n_days < 2:
            print("qilu-hub model eval: cross-validation over days needs at least 2 labelled days", file=sys.stderr)
            return 1
        m = target.matrix
        pred = lodo_predictions(m, config)
        result["home"] = name
        result["leave_one_day_out"] = figures(m.y, pred, m.days, target.scenes, args.boot)
        confusion_png(confusion_of(m.y, pred, target.scenes), target.scenes, args.png, f"{name}, leave-one-day-out")
        if args.cv == "days-of-labels":
            others = [home_from_dataset(n, ds, keep=None) for n, (_, ds) in zip(names[1:], homes[1:], strict=True)]
            curves = [days_of_labels(target, config, args.label_days, args.repeats, (), pred, args.seed)]
            if others:
                per_day, whole = args.per_day_weight, args.target_weight
                if per_day is None and whole is None:  # as model train weighs a household's days
                    per_day = PER_DAY_WEIGHT
                curves.append(days_of_labels(target, config, [0, *args.label_days], args.repeats, others, pred,
                                             args.seed, target_weight=1.0 if whole is None else whole,
                                             per_day_weight=per_day,
                                             balance_per_home=args.class_balance == "per-home",
                                             prior_correction=args.prior_correction))
            result["days_of_labels"] = curves
            learning_curve_png(curves, args.curve_png, f"{name}: class accuracy vs labelled days")
            result["curve_png"] = str(args.curve_png)
    result["png"] = str(args.png)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=1)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
