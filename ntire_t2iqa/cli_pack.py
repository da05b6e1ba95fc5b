"""``ntire-t2iqa pack``: predictions to a submission zip, validated before it is written."""

from __future__ import annotations

import json
import sys

import click

from .cli_common import TRACK, err, out, print_problems, reference_failure
from .errors import MissingDependency, ReferenceDataError, SubmissionError, count
from .safetext import terminal


@click.command("pack")
@click.argument("predictions", type=click.Path(exists=True))
@click.option("--track", type=TRACK, required=True, help="align (Track 1) or structure (Track 2).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="The zip to write (written only when it is valid; an existing file is replaced).")
@click.option("--runtime", type=str, default=None, help="readme.txt: runtime per image in seconds, e.g. 0.5.")
@click.option("--gpu/--cpu", "gpu", default=None, help="readme.txt: the method ran on a GPU (--gpu) or a CPU.")
@click.option("--extra-data/--no-extra-data", "extra_data", default=None,
              help="readme.txt: training used data beyond the challenge's.")
@click.option("--llm/--no-llm", "llm", default=None, help="readme.txt: the method uses a large language model.")
@click.option("--description", type=str, default=None, help="readme.txt: one line about the method.")
@click.option("--readme", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Copy this readme.txt instead of writing one from the flags above.")
@click.option("--inputs", type=click.Path(exists=True), default=None,
              help="Public inputs of the split (as for validate): check that every image and element is there.")
@click.option("--elements", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Track 1: element scores as a long table (img_path, element, score), beside a table of totals.")
@click.option("--scores", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Track 2: the structure scores, a table with the columns name and score.")
@click.option("--threshold", type=click.FloatRange(min=0), default=None,
              help="Track 2: pixels above THRESHOLD x 255 (8-bit masks), x 65535 (16-bit) or x 1 (floats) are "
                   "distorted; needed for heatmaps and JPEG masks.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def pack_command(predictions: str, track: str, out_path: str, runtime: str | None, gpu: bool | None,
                 extra_data: bool | None, llm: bool | None, description: str | None, readme: str | None,
                 inputs: str | None, elements: str | None, scores: str | None, threshold: float | None,
                 as_json: bool) -> None:
    """Write a submission zip from PREDICTIONS, only if it is valid.

    \b
    Track 1 (align): PREDICTIONS is a JSON list of records, a CSV/TSV or a Parquet file:
      img_path,total_score,element_score   (element_score: a JSON object per row)
      img_path,total_score,element,score   (one row per element)
      img_path,total_score  + --elements long.csv (img_path,element,score)
    Track 2 (structure): a folder of mask images (PNG/JPG, any size; 0/1, 0/255, or grey
    heatmaps with --threshold) with --scores scores.csv (name,score), or an .npz (one mask
    array per image name with --scores, or arrays names, scores and masks).

    readme.txt is written from --runtime, --gpu/--cpu, --extra-data/--no-extra-data,
    --llm/--no-llm and --description (or copied from --readme). Exit 0: written;
    1: invalid (nothing written); 2: usage error or unreadable inputs.
    """
    from .packing import pack

    flags = {"--runtime": runtime, "--gpu/--cpu": gpu, "--extra-data/--no-extra-data": extra_data,
             "--llm/--no-llm": llm, "--description": description}
    if readme is None and any(v is None for v in flags.values()):
        missing = ", ".join(k for k, v in flags.items() if v is None)
        raise click.UsageError(f"readme.txt needs {missing} (or --readme FILE).")
    if readme is not None and any(v is not None for v in flags.values()):
        raise click.UsageError("pass either --readme or the readme flags, not both.")
    try:
        report = pack(predictions, out_path, track, runtime=runtime, gpu=gpu, extra_data=extra_data, llm=llm,
                      description=description, readme=readme, inputs=inputs, elements=elements, scores=scores,
                      threshold=threshold)
    except ReferenceDataError as exc:
        reference_failure(exc, as_json)
        return
    except (MissingDependency, ValueError) as exc:
        _usage_failure(str(exc), as_json)
        return
    except SubmissionError as exc:
        if as_json:
            click.echo(json.dumps({"written": None, "valid": False, "errors": [p.to_dict() for p in exc.errors],
                                   "warnings": [p.to_dict() for p in exc.problems if p.severity == "warning"]}))
        else:
            print_problems(exc.problems, err)
            err.print(f"[bold red]invalid[/bold red]: {count(exc.problems, 'error'):,} error(s); nothing written.")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps({"written": out_path, **report.to_dict()}))
        return
    print_problems(report.problems, out)
    note = report.coverage_note()
    if note:
        out.print(f"[dim]note[/dim]    {terminal(note)}")
    extra = f" with {report.n_warnings:,} warning(s)" if report.warnings else ""
    out.print(f"[bold green]wrote[/bold green] {terminal(out_path)}: valid {track} submission, "
              f"{report.n_images:,} images{extra}.")


def _usage_failure(message: str, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": "usage", "message": message}))
    else:
        err.print(f"[bold red]error[/bold red]: {terminal(message)}")
    sys.exit(2)
