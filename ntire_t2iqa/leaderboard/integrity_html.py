"""The organizer-only integrity page: one self-contained HTML file, marked private at its top and title.

It names teams suspected of probing or sharing predictions, so it is never part of the
public leaderboard: the banner, the title and a ``noindex`` robots tag say so.
"""

from __future__ import annotations

from collections.abc import Collection

from ..safetext import html as _e
from .collusion import Match, TeamPair
from .export import TRACK_TITLES
from .html import PRIVATE_NOTICE
from .integrity import IntegrityReport
from .probing import TeamProbing

#: Rows listed per section before the rest is counted (the JSON output has everything).
MAX_ROWS = 50
MAX_IMAGES = 20

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { padding: 0.25rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; }
tr.flagged td { background: #fff1f0; }
details { margin: 0.4rem 0 0.8rem; } summary { cursor: pointer; }
.note { color: #555; font-size: 0.9rem; }
#private-banner { background: #b00020; color: #fff; font-weight: bold; padding: 1rem 1.5rem; margin: 0 0 1rem;
                  border: 4px solid #600; font-size: 1.1rem; }
"""

_BANNER = (f'<div id="private-banner" role="alert">{PRIVATE_NOTICE}. This integrity report names teams suspected '
           "of probing the hidden labels or of sharing predictions. Its findings are leads to check with the teams, "
           "not proof. Share it only with organizers; it is never part of the public leaderboard.</div>")


def _table(head: list[str], rows: list[tuple[str, list[str]]], numeric: Collection[int] = ()) -> str:
    """``rows``: (css class, cells already escaped)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join(f'<tr class="{cls}">' + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>'
                                                 for i, c in enumerate(cells)) + "</tr>" for cls, cells in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _more(total: int, shown: int, what: str) -> str:
    return f'<p class="note">... and {total - shown:,} more {what} (see --json).</p>' if total > shown else ""


def _images(report: IntegrityReport, indices: list[int]) -> str:
    names = ", ".join(_e(report.data.image_name(i)) for i in indices[:MAX_IMAGES])
    return names + (f" and {len(indices) - MAX_IMAGES:,} more" if len(indices) > MAX_IMAGES else "")


def _probing(report: IntegrityReport) -> str:
    teams = report.probing
    if not teams:
        return "<p>No probe pairs: no team has two submissions that differ on only a few images.</p>"
    rows = [("flagged" if t.flagged else "", [_e(t.team), "yes" if t.flagged else "no", f"{t.submissions:,}",
                                             f"{t.probes:,}", f"{t.single_image_probes:,}", f"{t.bits:.1f}",
                                             f"{len(t.images()):,}"]) for t in teams[:MAX_ROWS]]
    parts = [_table(["Team", "Flagged", "Submissions", "Probes", "Single-image probes", "Bits (estimate)",
                     "Images probed"], rows, {2, 3, 4, 5, 6}), _more(len(teams), MAX_ROWS, "teams")]
    for t in teams[:MAX_ROWS]:
        parts.append(_team_details(report, t))
    return "".join(parts)


def _team_details(report: IntegrityReport, team: TeamProbing) -> str:
    chains = []
    for k, chain in enumerate(team.chains[:MAX_ROWS], start=1):
        rows = [("", [_e(s.sub.file), _e(s.sub.submitted_at), _e(s.parent.file) if s.parent else "(start)",
                      f"{len(s.changed):,}", _images(report, s.changed)]) for s in chain.steps[:MAX_ROWS]]
        chains.append(f"<p>Chain {k}: {len(chain.steps):,} submissions, {len(chain.probes):,} probes</p>"
                      + _table(["File", "Submitted", "Probe of", "Images changed", "Which"], rows, {3})
                      + _more(len(chain.steps), MAX_ROWS, "submissions"))
    probed = sorted(team.images().items(), key=lambda x: (-x[1], x[0]))
    top = ", ".join(f"{_e(report.data.image_name(i))} ({n})" for i, n in probed[:MAX_IMAGES])
    return (f"<details><summary>{_e(team.team)}: {len(team.chains):,} chain(s)</summary>{''.join(chains)}"
            f"{_more(len(team.chains), MAX_ROWS, 'chains')}<p>Images probed most: {top}</p></details>")


def _match_row(m: Match, report: IntegrityReport) -> tuple[str, list[str]]:
    agreement = "n/a" if m.agreement is None else f"{m.agreement:.4f}"
    return ("", [f"{_e(m.a.team)}: {_e(m.a.file)} ({_e(m.a.submitted_at)})",
                 f"{_e(m.b.team)}: {_e(m.b.file)} ({_e(m.b.submitted_at)})", f"{m.pearson:.4f}",
                 f"{m.spearman:.4f}", agreement, f"{m.identical_images:,} of {report.data.n_images:,}",
                 "yes" if m.identical else "no"])


def _pairs(report: IntegrityReport, pairs: list[TeamPair], empty: str) -> str:
    if not pairs:
        return f"<p>{_e(empty)}</p>"
    agreement = "Decisions agree" if report.track == "align" else "Mask overlap"
    rows = [("flagged", [_e(p.team_a), _e(p.team_b), f"{len(p.matches):,}", f"{sum(m.identical for m in p.matches):,}",
                         _e(p.first)]) for p in pairs[:MAX_ROWS]]
    parts = [_table(["Team", "Matches team", "Matching pairs", "Identical pairs", "First to submit"], rows, {2, 3}),
             _more(len(pairs), MAX_ROWS, "team pairs")]
    for p in pairs[:MAX_ROWS]:
        rows = [_match_row(m, report) for m in p.matches[:MAX_ROWS]]
        parts.append(f"<details><summary>{_e(p.team_a)} and {_e(p.team_b)}: evidence</summary>"
                     + _table(["Submission", "Matching submission", "Pearson", "Spearman", agreement,
                               "Identical images", "Identical file content"], rows, {2, 3, 4})
                     + _more(len(p.matches), MAX_ROWS, "pairs") + "</details>")
    return "".join(parts)


def _limits(report: IntegrityReport) -> str:
    head = f"<p>{_e(report.limits.describe())}.</p>"
    if not report.refused:
        return head + "<p>No submission was refused.</p>"
    rows = [("", [_e(r.team), _e(r.file), _e(r.submitted_at), _e(r.reason)]) for r in report.refused[:MAX_ROWS]]
    return head + _table(["Team", "File", "Submitted", "Refused because"], rows) + \
        _more(len(report.refused), MAX_ROWS, "refused submissions")


def to_html(report: IntegrityReport) -> str:
    """The whole private page."""
    o = report.options
    heading = f"Integrity report, {TRACK_TITLES[report.track]}" + (f", phase {report.phase}" if report.phase else "")
    summary = (f"<p>{len(report.data.subs):,} scored submissions ({report.data.totals.shape[0]:,} distinct files) "
               f"of {report.teams():,} teams on {report.data.n_images:,} images. A probe pair differs on 1 to "
               f"{report.probe_limit:,} images; a team is flagged from {o.min_probes} probes. Teams match at "
               f"correlation {o.min_correlation:g} and {'decision' if report.track == 'align' else 'mask'} agreement "
               f"{o.min_agreement if report.track == 'align' else o.min_mask_agreement:g} or more.</p>")
    notes = "".join(f'<p class="note">{_e(n)}</p>' for n in report.data.notes)
    body = (f"<h1>{_e(heading)}</h1>{summary}{notes}"
            f"<h2>Label probing</h2>{_probing(report)}"
            f"<h2>Matching predictions across teams</h2>"
            f"{_pairs(report, report.copies, 'No two teams submitted matching predictions.')}"
            f"<h2>The public baseline submitted as a team's own</h2>"
            f"{_pairs(report, report.baseline_copies, 'No team submitted a baseline unchanged.')}"
            f"<h2>Submission limits</h2>{_limits(report)}")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex, '
            f'nofollow"><title>{_e(PRIVATE_NOTICE)}: {_e(heading)}</title><style>{_CSS}</style></head>'
            f"<body>{_BANNER}{body}</body></html>\n")
