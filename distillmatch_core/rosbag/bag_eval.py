"""Offline evaluation of a recorded RGB + thermal bag (``distillmatch bag-eval``).

Two passes over the input bag, which is only ever read:

1. Index: header stamps and record times of every image message (and the
   camera_info messages), then pairing with the live node's policy
   (``ros_interface.approximate_time_pairing``).
2. Process: every pair goes through the node's own ``FrameProcessor``;
   nothing is dropped. Only the messages of pairs not yet processed are held
   in memory, so long bags stream.

Everything is written into a hidden temporary folder that is renamed to
``out_dir`` at the end (``atomic_output``):

    out_dir/report.json        summary, settings, output bag topics
    out_dir/pairs.csv          one row per pair
    out_dir/plots/*.png        matches/inliers, processing time, stability, reference error
    out_dir/output_bag/        rosbag2 v8 with the node's output topics
    out_dir/overlay.mp4        with --video
"""
from __future__ import annotations

import bisect
import dataclasses
import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from distillmatch_core.ros_interface.approximate_time_pairing import (RGB_INPUT, THERMAL_INPUT, PairingPolicy,
                                                                      StampedArrival, pair_arrivals)
from distillmatch_core.ros_interface.image_encoding import ENCODINGS, is_compressed_image
from distillmatch_core.ros_interface.message_factory import RosbagsMessageFactory, stamp_to_ns
from distillmatch_core.ros_interface.processing_pipeline import (FramePair, FrameProcessor, PairMatcher,
                                                                 ProcessingConfig)
from distillmatch_core.rosbag.atomic_output import atomic_output_path, check_output_path
from distillmatch_core.rosbag.bag_errors import BagEncodingError, BagTopicError, EmptyBagError
from distillmatch_core.rosbag.bag_reader import CAMERA_INFO_TYPE, IMAGE_TYPES, BagMessage, InputBag
from distillmatch_core.rosbag.bag_writer import ROSBAG_FORMAT_VERSION, MessageBagWriter
from distillmatch_core.rosbag.eval_plots import write_plots
from distillmatch_core.rosbag.eval_report import (PairRecord, build_summary, fill_geometry_metrics, summarize,
                                                  write_pairs_csv, write_report_json)
from distillmatch_core.rosbag.output_bag import NodeOutputBag
from distillmatch_core.rosbag.overlay_video import OverlayVideoWriter
from distillmatch_core.rosbag.topic_names import (DEFAULT_NODE_NAME, DEFAULT_RGB_TOPIC, DEFAULT_THERMAL_TOPIC,
                                                  camera_info_topic_for)
from distillmatch_core.rosbag.typestore_selection import DEFAULT_TYPESTORE, load_typestore

OUTPUT_BAG_NAME = "output_bag"
REPORT_NAME = "report.json"
PAIRS_CSV_NAME = "pairs.csv"
PLOTS_DIR_NAME = "plots"
VIDEO_NAME = "overlay.mp4"


@dataclass
class BagEvalConfig:
    input_bag: Path
    out_dir: Path
    rgb_topic: str = DEFAULT_RGB_TOPIC
    thermal_topic: str = DEFAULT_THERMAL_TOPIC
    # None: the image_transport sibling (/cam/camera_info) if the bag has it; "": never.
    rgb_camera_info_topic: Optional[str] = None
    thermal_camera_info_topic: Optional[str] = None
    pairing: PairingPolicy = field(default_factory=PairingPolicy)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    typestore: str = DEFAULT_TYPESTORE
    node_name: str = DEFAULT_NODE_NAME
    namespace: str = ""
    output_storage: str = "sqlite3"  # what Humble replays without extra plugins
    reference_homography: Optional[np.ndarray] = None  # (3, 3) thermal -> RGB from rig calibration
    reference_homography_source: str = ""
    video: bool = False
    video_fps: float = 10.0
    include_inputs: bool = False
    overwrite: bool = False
    progress: bool = True
    matcher_info: Dict[str, Any] = field(default_factory=dict)  # reported as given (weights, backend...)


@dataclass
class BagEvalResult:
    out_dir: Path
    report: Dict[str, Any]
    records: List[PairRecord]

    @property
    def succeeded_pairs(self) -> int:
        return sum(1 for r in self.records if not r.error)


@dataclass
class _ImageArrival:
    input_index: int  # RGB_INPUT / THERMAL_INPUT
    position: int  # order among all image messages as the reader yields them
    stamp_ns: int
    log_time_ns: int


@dataclass
class _BagIndex:
    arrivals: List[_ImageArrival]
    counts: Tuple[int, int]  # rgb, thermal messages
    camera_infos: Dict[int, Tuple[List[int], List[Any]]]  # input -> (log times, messages), sorted
    start_ns: Optional[int] = None
    end_ns: Optional[int] = None


def load_reference_homography(path: Path) -> np.ndarray:
    """Text file with 9 numbers (3 rows of 3), thermal -> RGB; ValueError if it is not an invertible 3x3."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"reference homography file not found: {path}")
    try:
        H = np.loadtxt(path, dtype=np.float64, comments="#", delimiter=None).reshape(-1)
    except ValueError as exc:
        raise ValueError(f"{path}: not a whitespace-separated 3x3 matrix: {exc}") from None
    if H.size != 9 or not np.all(np.isfinite(H)):
        raise ValueError(f"{path}: expected 9 finite numbers (3x3 thermal->RGB homography), found {H.size}")
    H = H.reshape(3, 3)
    if abs(np.linalg.det(H)) < 1e-12:
        raise ValueError(f"{path}: the homography is singular")
    return H / H[2, 2] if abs(H[2, 2]) > 1e-12 else H


def _resolve_camera_info_topic(bag: InputBag, requested: Optional[str], image_topic: str) -> Optional[str]:
    if requested == "":
        return None
    if requested is None:
        candidate = camera_info_topic_for(image_topic)
        topic = bag.topics().get(candidate)
        return candidate if topic is not None and topic.msgtype == CAMERA_INFO_TYPE else None
    bag.require_topic(requested, (CAMERA_INFO_TYPE,))
    return requested


def _index_bag(bag: InputBag, rgb_topic: str, thermal_topic: str, info_topics: Dict[int, str],
               progress: bool) -> _BagIndex:
    inputs = {rgb_topic: RGB_INPUT, thermal_topic: THERMAL_INPUT}
    info_inputs = {topic: index for index, topic in info_topics.items()}
    arrivals: List[_ImageArrival] = []
    counts = [0, 0]
    infos: Dict[int, Tuple[List[int], List[Any]]] = {index: ([], []) for index in info_topics}
    index = _BagIndex(arrivals, (0, 0), infos)
    total = bag.topics()[rgb_topic].count + bag.topics()[thermal_topic].count
    messages = bag.messages([rgb_topic, thermal_topic, *info_inputs])
    for message in tqdm(messages, total=total or None, desc="indexing", unit="msg", disable=not progress,
                        leave=False):
        if message.topic in info_inputs:
            times, msgs = infos[info_inputs[message.topic]]
            times.append(message.log_time_ns)
            msgs.append(message.msg)
            continue
        input_index = inputs[message.topic]
        if not is_compressed_image(message.msg) and message.msg.encoding not in ENCODINGS:
            raise BagEncodingError(f"{message.topic}: image encoding {message.msg.encoding!r} is not supported; "
                                   f"supported: {', '.join(ENCODINGS)}")
        arrivals.append(_ImageArrival(input_index, len(arrivals), stamp_to_ns(message.msg.header.stamp),
                                      message.log_time_ns))
        counts[input_index] += 1
        index.start_ns = message.log_time_ns if index.start_ns is None else min(index.start_ns, message.log_time_ns)
        index.end_ns = message.log_time_ns if index.end_ns is None else max(index.end_ns, message.log_time_ns)
    index.counts = (counts[0], counts[1])
    return index


def _nearest_stamp_gap_s(arrivals: List[_ImageArrival]) -> Optional[float]:
    """Smallest |rgb - thermal| stamp difference in the bag, to explain why nothing paired."""
    rgb = np.array(sorted(a.stamp_ns for a in arrivals if a.input_index == RGB_INPUT), dtype=np.int64)
    thermal = np.array(sorted(a.stamp_ns for a in arrivals if a.input_index == THERMAL_INPUT), dtype=np.int64)
    if rgb.size == 0 or thermal.size == 0:
        return None
    slots = np.clip(np.searchsorted(thermal, rgb), 1, len(thermal)) - 1
    gaps = np.minimum(np.abs(rgb - thermal[slots]), np.abs(rgb - thermal[np.clip(slots + 1, 0, len(thermal) - 1)]))
    return float(gaps.min()) / 1e9


def _latest_camera_info(index: _BagIndex, input_index: int, log_time_ns: int) -> Any:
    """The newest camera_info recorded at or before ``log_time_ns`` (what the node would hold)."""
    entry = index.camera_infos.get(input_index)
    if not entry or not entry[0]:
        return None
    times, msgs = entry
    slot = bisect.bisect_right(times, log_time_ns) - 1
    return msgs[slot] if slot >= 0 else None


def run_bag_eval(config: BagEvalConfig, matcher_factory: Callable[[], PairMatcher]) -> BagEvalResult:
    """Evaluates ``config.input_bag``; the matcher is created only after the bag checks pass."""
    typestore = load_typestore(config.typestore)
    out_dir = Path(config.out_dir).absolute()
    check_output_path(out_dir, config.overwrite, protected=config.input_bag)
    with InputBag(config.input_bag, typestore) as bag:
        if bag.message_count == 0:
            raise EmptyBagError(f"the bag {config.input_bag} holds no messages")
        if config.rgb_topic == config.thermal_topic:
            raise BagTopicError(f"--rgb-topic and --thermal-topic are both {config.rgb_topic}")
        topic_summaries = {name: bag.require_topic(name, IMAGE_TYPES)
                           for name in (config.rgb_topic, config.thermal_topic)}
        for summary in topic_summaries.values():
            if summary.count == 0:
                raise EmptyBagError(f"topic {summary.name} holds no messages; {bag.describe_topics()}")
        info_topics = {i: t for i, t in ((RGB_INPUT, _resolve_camera_info_topic(bag, config.rgb_camera_info_topic,
                                                                                 config.rgb_topic)),
                                         (THERMAL_INPUT, _resolve_camera_info_topic(
                                             bag, config.thermal_camera_info_topic, config.thermal_topic)))
                       if t is not None}
        index = _index_bag(bag, config.rgb_topic, config.thermal_topic, info_topics, config.progress)
        ordered = sorted(index.arrivals, key=lambda a: (a.log_time_ns, a.position))
        pairs = pair_arrivals((StampedArrival(a.input_index, a.stamp_ns, a) for a in ordered), config.pairing)
        if not pairs:
            gap = _nearest_stamp_gap_s(index.arrivals)
            hint = "" if gap is None else f"; the closest RGB/thermal stamps are {gap:.6f} s apart"
            raise EmptyBagError(f"no RGB/thermal pair has header stamps closer than slop = "
                                f"{config.pairing.slop_s} s{hint}")

        matcher = matcher_factory()
        processor = FrameProcessor(matcher, RosbagsMessageFactory(typestore), config.processing)
        with atomic_output_path(out_dir, overwrite=config.overwrite, protected=config.input_bag,
                                create=True) as staging:
            video = OverlayVideoWriter(staging / VIDEO_NAME, config.video_fps) if config.video else None
            with MessageBagWriter(staging / OUTPUT_BAG_NAME, typestore, config.output_storage) as writer:
                output = NodeOutputBag(writer, config.node_name, config.namespace)
                try:
                    records = _process_pairs(bag, config, index, pairs, processor, output, video)
                finally:
                    if video is not None:
                        video.close()
                if config.include_inputs:
                    input_topics = [config.rgb_topic, config.thermal_topic, *info_topics.values()]
                    for connection, log_time, raw in bag.raw_messages(input_topics):
                        output.copy_input(connection.topic, connection.msgtype, log_time, raw)
                bag_topics = {topic: {"type": writer.types[topic], "count": count}
                              for topic, count in sorted(writer.counts.items())}
            fill_geometry_metrics(records, config.reference_homography)
            write_pairs_csv(records, staging / PAIRS_CSV_NAME)
            plots = write_plots(records, staging / PLOTS_DIR_NAME, config.reference_homography is not None)
            report = _build_report(config, bag, topic_summaries, info_topics, index, pairs, records, bag_topics,
                                   [p.relative_to(staging).as_posix() for p in plots], video)
            # Written last: a report.json in the folder means every other file is complete.
            write_report_json(report, staging / REPORT_NAME)
    return BagEvalResult(out_dir, report, records)


def _process_pairs(bag: InputBag, config: BagEvalConfig, index: _BagIndex, pairs: List[Tuple[Any, Any]],
                   processor: FrameProcessor, output: NodeOutputBag,
                   video: Optional[OverlayVideoWriter]) -> List[PairRecord]:
    # A pair can be processed once both of its messages have been read (reader order).
    schedule = sorted(pairs, key=lambda pair: max(pair[0].position, pair[1].position))
    needed = {a.position for pair in schedule for a in pair}
    buffered: Dict[int, BagMessage] = {}
    records: List[PairRecord] = []
    next_pair = 0
    with tqdm(total=len(schedule), desc="bag-eval", unit="pair", disable=not config.progress) as bar:
        messages = bag.messages([config.rgb_topic, config.thermal_topic])
        for position, message in enumerate(messages):
            if position in needed:
                buffered[position] = message
            while next_pair < len(schedule) and max(schedule[next_pair][0].position,
                                                    schedule[next_pair][1].position) <= position:
                rgb_arrival, thermal_arrival = schedule[next_pair]
                records.append(_process_one(len(records), buffered.pop(rgb_arrival.position),
                                            buffered.pop(thermal_arrival.position), rgb_arrival, index,
                                            processor, output, video))
                next_pair += 1
                bar.update(1)
    return records


def _process_one(pair_index: int, rgb: BagMessage, thermal: BagMessage, rgb_arrival: _ImageArrival,
                 index: _BagIndex, processor: FrameProcessor, output: NodeOutputBag,
                 video: Optional[OverlayVideoWriter]) -> PairRecord:
    available_at = max(rgb.log_time_ns, thermal.log_time_ns)
    pair = FramePair(rgb=rgb.msg, thermal=thermal.msg,
                     rgb_camera_info=_latest_camera_info(index, RGB_INPUT, available_at),
                     thermal_camera_info=_latest_camera_info(index, THERMAL_INPUT, available_at))
    outcome = processor.process(pair, want_overlay=video is not None)
    # Output records carry the RGB message's record time, so input and output bags replay in step.
    output.write_frame(outcome.messages, rgb.log_time_ns)
    if video is not None and outcome.overlay is not None:
        video.write(outcome.overlay)
    return PairRecord(
        index=pair_index, rgb_stamp_ns=stamp_to_ns(rgb.msg.header.stamp),
        thermal_stamp_ns=stamp_to_ns(thermal.msg.header.stamp), rgb_log_time_ns=rgb_arrival.log_time_ns,
        num_matches=outcome.num_matches, num_inliers=outcome.num_inliers, match_time_s=outcome.match_time_s,
        processing_time_s=outcome.processing_time_s, homography=outcome.homography,
        homography_estimate=outcome.homography_estimate, thermal_size=outcome.thermal_size,
        has_relative_pose=outcome.relative_pose is not None, error=outcome.error or "")


def _build_report(config: BagEvalConfig, bag: InputBag, topic_summaries: Dict[str, Any], info_topics: Dict[int, str],
                  index: _BagIndex, pairs: List[Any], records: List[PairRecord], bag_topics: Dict[str, Any],
                  plots: List[str], video: Optional[OverlayVideoWriter]) -> Dict[str, Any]:
    from distillmatch_core.version import __version__
    failed = [r for r in records if r.error]
    rgb_count, thermal_count = index.counts
    report: Dict[str, Any] = {
        "tool": "distillmatch bag-eval",
        "version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": {
            "bag": str(Path(config.input_bag).absolute()),
            "storage": bag.storage,
            "typestore": config.typestore,
            "rgb_topic": dataclasses.asdict(topic_summaries[config.rgb_topic]),
            "thermal_topic": dataclasses.asdict(topic_summaries[config.thermal_topic]),
            "rgb_camera_info_topic": info_topics.get(RGB_INPUT),
            "thermal_camera_info_topic": info_topics.get(THERMAL_INPUT),
            "duration_s": None if index.start_ns is None else (index.end_ns - index.start_ns) / 1e9,
        },
        "pairing": {
            "policy": "message_filters.ApproximateTimeSynchronizer (rclpy) semantics; see docs/bag_eval.md",
            "slop_s": config.pairing.slop_s,
            "queue_size": config.pairing.queue_size,
        },
        "matcher": config.matcher_info,
        "processing": dataclasses.asdict(config.processing),
        "counts": {
            "rgb_messages": rgb_count,
            "thermal_messages": thermal_count,
            "pairs": len(pairs),
            "unpaired_rgb": rgb_count - len(pairs),
            "unpaired_thermal": thermal_count - len(pairs),
            "pairs_succeeded": len(records) - len(failed),
            "pairs_failed": len(failed),
            "pairs_with_homography": sum(1 for r in records if r.homography is not None),
            "pairs_with_relative_pose": sum(1 for r in records if r.has_relative_pose),
        },
        "summary": build_summary(records),
        "reference": None,
        "first_error": failed[0].error if failed else None,
        "output_bag": {
            "path": OUTPUT_BAG_NAME,
            "storage": config.output_storage,
            "format_version": ROSBAG_FORMAT_VERSION,
            "timestamps": "record time of each pair's RGB message in the input bag",
            "topics": bag_topics,
        },
        "files": {
            "pairs_csv": PAIRS_CSV_NAME,
            "plots": plots,
            "video": VIDEO_NAME if video is not None and video.frames_written else None,
        },
    }
    if video is not None and video.error:
        report["files"]["video_error"] = video.error
    if config.reference_homography is not None:
        report["reference"] = {
            "source": config.reference_homography_source,
            "homography": np.asarray(config.reference_homography).tolist(),
            "corner_error_px": summarize(r.reference_corner_error_px for r in records),
        }
    return report
