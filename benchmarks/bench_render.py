"""Render speed: ours (PyAV, frames kept in C) beside the ffmpeg CLI doing the same work, in one run.

    .venv/bin/python benchmarks/bench_render.py [--spans 12 --span-seconds 5 --fps 30 --preset veryfast]
        [--clips-dir KIT_WEEK] [--no-quality]

The same EDL (spans of generated 1080p clips, a 2 s title card) is rendered to 1920×1080 and 1080×1920:
by ours (`media.render.render`) and by the ffmpeg CLI (one `-filter_complex` with trim/setpts, scale or
crop, concat, the same libx264 settings; Debian's ffmpeg, for this benchmark only). Each row prints wall
seconds, peak memory of the process tree, and ours/CLI. Ours also draws the credit plates; the CLI rows
carry no overlays, so the comparison slightly favours the CLI.

Quality (unless `--no-quality`): the same EDL rendered by ours near-losslessly (CRF 1) as the
reference, then both outputs at the x264 settings ours used before the speed work (the preset's own
partitions, `PREVIOUS`) and at today's; each output's SSIM and PSNR against the reference (the ffmpeg
CLI's ssim and psnr filters), its size, and each pass's seconds. Generated clips are easy to encode:
`--clips-dir` takes the `clip_*.mp4` of a folder instead, e.g. a week of `../shared/gameplay_kit`
(clips of 18 s or more), which is real engine gameplay at the bitrate cap.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE, bench_clips, ffmpeg, markdown_table, timed

from montage_pipeline.media.render import EncodeSettings, OutputSpec, RenderSpan, render

X264 = "scenecut=0:open-gop=0:colorprim=bt709:transfer=bt709:colormatrix=bt709:range=tv"
# libx264's own partitions (what the preset used before `EncodeSettings.partitions`).
PREVIOUS_PARTITIONS = "p8x8,b8x8,i8x8,i4x4"


def _child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cli_command(
    binary: str, spans: list[RenderSpan], intro: float, out: Path, w: int, h: int, fps: int, preset: str
) -> list[str]:
    inputs: list[str] = []
    parts, labels = [], []
    parts.append(f"color=c=0x101428:s={w}x{h}:r={fps}:d={intro}[v0]")
    labels.append("[v0]")
    for i, span in enumerate(spans):
        inputs += [
            "-ss",
            f"{span.source_in_s:.3f}",
            "-t",
            f"{span.source_out_s - span.source_in_s:.3f}",
            "-i",
            str(span.source_path),
        ]
        geometry = f"scale={w}:{h}" if w > h else f"crop=ih*9/16:ih,scale={w}:{h}"
        parts.append(f"[{i}:v]fps={fps},{geometry},setsar=1,format=yuv420p,setpts=PTS-STARTPTS[v{i + 1}]")
        labels.append(f"[v{i + 1}]")
    parts.append(f"{''.join(labels)}concat=n={len(labels)}:v=1:a=0[out]")
    gop = fps // 2
    return [
        binary,
        "-v",
        "error",
        "-y",
        *inputs,
        "-filter_complex",
        ";".join(parts),
        "-map",
        "[out]",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        "21",
        "-profile:v",
        "high",
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-bf",
        "2",
        "-maxrate",
        "8000k",
        "-bufsize",
        "16000k",
        "-x264-params",
        X264,
        "-movflags",
        "+faststart",
        "-r",
        str(fps),
        str(out),
    ]


def similarity(binary: str, output: Path, reference: Path) -> tuple[float, float]:
    """SSIM (all planes) and mean PSNR (dB) of `output` against `reference`, frame by frame."""
    graph = "[0:v]split[a][b];[1:v]split[c][d];[a][c]ssim;[b][d]psnr"
    cmd = [
        binary,
        "-hide_banner",
        "-i",
        str(output),
        "-i",
        str(reference),
        "-lavfi",
        graph,
        "-f",
        "null",
        "-",
    ]
    log = subprocess.run(cmd, check=True, capture_output=True, text=True).stderr
    ssim = re.search(r"SSIM .* All:([0-9.]+)", log)
    psnr = re.search(r"PSNR .* average:([0-9.]+|inf)", log)
    if not (ssim and psnr):
        raise RuntimeError(f"no SSIM/PSNR in ffmpeg's output: {log[-500:]}")
    return float(ssim.group(1)), float(psnr.group(1))


def quality_table(
    binary: str,
    spans: list[RenderSpan],
    intro: float,
    outputs: list[OutputSpec],
    settings: EncodeSettings,
    title: str,
) -> str:
    """Each output at the previous and today's x264 settings against a near-lossless render of the same
    EDL (today's outputs are those already at `outputs`)."""
    near_lossless = dataclasses.replace(settings, crf=1, preset="ultrafast", maxrate_kbps=1_000_000)
    previous = dataclasses.replace(settings, partitions=PREVIOUS_PARTITIONS)

    def moved(tag: str) -> list[OutputSpec]:
        return [dataclasses.replace(o, path=o.path.with_name(f"{tag}_{o.path.name}")) for o in outputs]

    references, earlier = moved("reference"), moved("previous")
    render(spans, references, near_lossless, title=title, intro_s=intro)
    previous_s = timed(lambda: render(spans, earlier, previous, title=title, intro_s=intro))
    rows: list[tuple[str, ...]] = []
    for ref, before, now in zip(references, earlier, outputs, strict=True):
        for name, spec, used, seconds in (
            (f"previous (partitions {previous.partitions})", before, previous, previous_s),
            (f"today (partitions {settings.partitions})", now, settings, None),
        ):
            ssim, psnr = similarity(binary, spec.path, ref.path)
            rows.append(
                (
                    f"{spec.width}×{spec.height}",
                    f"{used.preset} CRF {used.crf}, {name}",
                    f"{seconds:.1f}" if seconds is not None else "(row above)",
                    f"{spec.path.stat().st_size / 1e6:.1f}",
                    f"{ssim:.5f}",
                    f"{psnr:.2f}",
                )
            )
    headers = ("output", "x264 settings", "both outputs, s", "size MB", "SSIM", "PSNR dB")
    return markdown_table(rows, headers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spans", type=int, default=12)
    parser.add_argument("--span-seconds", type=float, default=5.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--workdir", type=Path, default=CACHE)
    parser.add_argument("--clips-dir", type=Path, help="render these clip_*.mp4 instead of generated ones")
    parser.add_argument("--no-quality", action="store_true", help="skip the SSIM/PSNR table")
    args = parser.parse_args()
    if args.clips_dir:
        clips = sorted(args.clips_dir.glob("clip_*.mp4"))
        if not clips:
            parser.error(f"no clip_*.mp4 in {args.clips_dir}")
    else:
        clips = bench_clips(6, 20.0, 30, (1920, 1080), args.workdir)
    intro = 2.0
    spans, m = [], intro
    for i in range(args.spans):
        start = 1.0 + (i * 3.7) % 12
        spans.append(
            RenderSpan(
                clips[i % len(clips)],
                start,
                start + args.span_seconds,
                m,
                m + args.span_seconds,
                f"@player{i} · Game",
            )
        )
        m += args.span_seconds
    out_dir = args.workdir / "render_out"
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = EncodeSettings(fps=args.fps, preset=args.preset)
    land = OutputSpec(out_dir / "ours_land.mp4", 1920, 1080)
    port = OutputSpec(out_dir / "ours_port.mp4", 1080, 1920, layout="center")
    rows = []
    binary = ffmpeg()
    title = "Weekly Highlights - January 27, 2025"
    for name, outputs in (("landscape", [land]), ("portrait", [port]), ("both, one decode", [land, port])):
        start = time.perf_counter()
        render(spans, outputs, settings, title=title, intro_s=intro)
        ours = time.perf_counter() - start
        cli = None
        if binary:
            start = time.perf_counter()
            for o in outputs:
                cmd = cli_command(
                    binary,
                    spans,
                    intro,
                    out_dir / f"cli_{o.width}x{o.height}.mp4",
                    o.width,
                    o.height,
                    args.fps,
                    args.preset,
                )
                subprocess.run(cmd, check=True)
            cli = time.perf_counter() - start
        rows.append((name, ours, cli))
    montage_s = intro + args.spans * args.span_seconds
    print(
        f"\n{args.spans} spans × {args.span_seconds:g}s + {intro:g}s title = {montage_s:g}s montage, "
        f"{args.fps} fps, libx264 {args.preset}, CRF 21, 2 cores\n"
    )
    print("| output | ours s | ffmpeg CLI s | ours / CLI | ours × real time |")
    print("|---|---|---|---|---|")
    for name, ours, cli in rows:
        ratio = f"{ours / cli:.2f}×" if cli else "—"
        cli_s = f"{cli:.1f}" if cli else "— (no ffmpeg)"
        print(f"| {name} | {ours:.1f} | {cli_s} | {ratio} | {montage_s / ours:.2f} |")
    print(
        f"\npeak memory: ours {_self_peak_mb():.0f} MB (this process), ffmpeg CLI {_child_peak_mb():.0f} MB"
    )
    if binary and not args.no_quality:
        source = args.clips_dir or "generated clips"
        print(f"\nQuality against a near-lossless render of the same EDL ({source}):\n")
        print(quality_table(binary, spans, intro, [land, port], settings, title))


if __name__ == "__main__":
    main()
