"""MkDocs hooks: pages made from the code and the results, so each fact keeps one source.

* ``reference/config.md``: the tables of every config field (run config and study protocol) from the
  fields' own type, default and doc (``videoperlin.config_fields.describe``), as ``videoperlin config``.
* ``results/<name>/``: each ``benchmarks/results/<name>/report.md`` (and the ``README.md`` of folders
  that have no report) with the figures beside it, shown under the report.
* ``index.md`` and ``changelog.md``: the repository's ``README.md`` and ``CHANGELOG.md`` (their
  links into ``docs/`` made relative to the site).
"""

from __future__ import annotations

import html
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CONFIG_MARK = "<!-- config fields -->"
PROTOCOL_MARK = "<!-- protocol fields -->"
RESULTS_MARK = "<!-- results pages -->"
PRESETS_MARK = "<!-- presets -->"
CLI_MARK = "<!-- commands -->"


def result_reports() -> dict[str, Path]:
    """``{page name: report file}``: every results folder with a report.md (or only a README.md)."""
    reports = {}
    for report in sorted(RESULTS.rglob("report.md")) + sorted(RESULTS.glob("*/README.md")):
        name = report.parent.relative_to(RESULTS).as_posix()
        reports.setdefault(name, report)
    return reports


def on_files(files: Files, config) -> Files:
    """Add the results reports and their figures, and the changelog, as pages of the site."""
    for name, report in result_reports().items():
        files.append(File.generated(config, f"results/{name}/index.md", abs_src_path=str(report)))
        for figure in sorted((report.parent / "figures").glob("*.png")):
            uri = f"results/{name}/figures/{figure.name}"
            files.append(File.generated(config, uri, abs_src_path=str(figure)))
    files.append(File.generated(config, "changelog.md", abs_src_path=str(ROOT / "CHANGELOG.md")))
    files.append(File.generated(config, "index.md", abs_src_path=str(ROOT / "README.md")))
    return files


def field_table(cls: type) -> str:
    from videoperlin.config_fields import describe

    rows = ["| key | type | default | what it is |", "|---|---|---|---|"]
    for key, kind, default, doc in describe(cls):
        cells = [f"`{key}`", html.escape(kind).replace("|", "\\|"), f"`{default}`", doc.replace("|", "\\|")]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def figures_of(page_src: str) -> str:
    """Markdown showing every figure of a results folder, one per paragraph with its file name."""
    folder = Path(page_src).parent / "figures"
    name = Path(page_src).parent.relative_to("results").as_posix()
    shown = sorted((RESULTS / name / "figures").glob("*.png"))
    return "\n\n".join(f"![{f.stem}](figures/{f.name})  \n`{(folder / f.name).name}`" for f in shown)


def results_list() -> str:
    """One line per results page: its title (the report's first heading) and folder."""
    lines = []
    for name, report in result_reports().items():
        title = next(
            (line.lstrip("# ").strip() for line in report.read_text().splitlines() if line.startswith("#")), name
        )
        lines.append(f"* [{title}]({name}/index.md) (`benchmarks/results/{name}`)")
    return "\n".join(lines)


def presets_table() -> str:
    """Every registered family's presets: their label axes and class counts, from the registry."""
    from videoperlin.vpn.family import FAMILIES, load_families

    load_families()
    rows = ["| family | preset | label axes | classes |", "|---|---|---|---|"]
    for name, family in sorted(FAMILIES.items()):
        for preset, axes in family.presets.items():
            listed = "; ".join(f"{axis} {', '.join(str(v) for v in values)}" for axis, values in axes.items())
            default = " (default)" if preset == family.default_preset else ""
            rows.append(f"| `{name}` | `{preset}`{default} | {listed} | {len(family.space_from_dict(axes))} |")
    return "\n".join(rows)


def commands_reference() -> str:
    """``videoperlin COMMAND --help`` of every command in the command table."""
    import contextlib
    import io

    from videoperlin.cli import COMMANDS, build_parser

    parser = build_parser()
    sections = []
    for command in COMMANDS:
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):
            parser.parse_args([*command.split(), "--help"])
        sections.append(f"## `videoperlin {command}`\n\n```text\n{text.getvalue().rstrip()}\n```")
    return "\n\n".join(sections)


def on_page_markdown(markdown: str, page, config, files) -> str:
    src = page.file.src_uri
    markdown = markdown.replace(PRESETS_MARK, presets_table()).replace(CLI_MARK, commands_reference())
    if src == "index.md":  # the README: its links point into docs/ from the repository root
        markdown = markdown.replace("](docs/", "](").replace("](CHANGELOG.md)", "](changelog.md)")
    if src == "results/index.md":
        markdown = markdown.replace(RESULTS_MARK, results_list())
    if src == "reference/config.md":
        from videoperlin.study.protocol import Protocol
        from videoperlin.train.config import RunConfig

        markdown = markdown.replace(CONFIG_MARK, field_table(RunConfig))
        markdown = markdown.replace(PROTOCOL_MARK, field_table(Protocol))
    elif src.startswith("results/") and src.endswith("/index.md") and src != "results/index.md":
        figures = figures_of(src)
        if figures:
            markdown += "\n\n## Figures\n\n" + figures + "\n"
    return markdown
