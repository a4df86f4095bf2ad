"""The documentation's links and the results files it cites, checked without TensorFlow.

Pages: README.md, pretrained/README.md (the model card) and docs/*.md. (a) Every relative link resolves to an existing file, and every
#anchor (on the same page or another .md page) matches a heading of that page, by GitHub's rule.
(b) Every file under benchmarks/results/ is cited by path or file name on some page, and every
benchmarks/results/ path a page cites exists; a path written after a commit
(`cc12249:benchmarks/results/x.json`) names a file in the history and is not looked for.
Links inside fenced code blocks or inline code are not links. Citations may be written
`name.{json,md}` (each alternative) or `name[_quick].md` (with and without the bracketed part).
"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PAGES = [ROOT / "README.md", ROOT / "pretrained" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
PATHLIKE = re.compile(r"[\w.\-{},\[\]*/:]+")
COMMIT_PREFIX = re.compile(r"[0-9a-f]{7,40}:$")


def prose_lines(text):
    """The page's lines outside fenced code blocks (fenced lines come back empty)."""
    out, fenced = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fenced is None and match:
            fenced = match.group(1)
            out.append("")
        elif fenced is not None:
            if line.strip().startswith(fenced):
                fenced = None
            out.append("")
        else:
            out.append(line)
    return out


def without_code_spans(line):
    return re.sub(r"(`+)(.+?)\1", lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor for a heading: the rendered text, lowercased, punctuation other than '-'
    and '_' removed, spaces turned into '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page):
    found, seen = set(), {}
    for line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page):
    """(line number, target) of every link and image on the page."""
    for number, line in enumerate(prose_lines(page.read_text(encoding="utf-8")), 1):
        for match in LINK.finditer(without_code_spans(line)):
            yield number, match.group(1)


def expand(token):
    """'a.{json,md}' -> a.json, a.md; 'a[_quick].md' -> a.md, a_quick.md."""
    brace = re.search(r"\{([^{}]*)\}", token)
    if brace:
        return [x for alt in brace.group(1).split(",")
                for x in expand(token[:brace.start()] + alt + token[brace.end():])]
    bracket = re.search(r"\[([\w.\-]*)\]", token)
    if bracket:
        return [x for alt in ("", bracket.group(1))
                for x in expand(token[:bracket.start()] + alt + token[bracket.end():])]
    return [token]


def cited_paths(page):
    """(line number, path under benchmarks/results/, historic) for every such path on the page."""
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        for token in PATHLIKE.findall(line):
            for text in expand(token):
                at = text.find("benchmarks/results/")
                if at < 0:
                    continue
                name = text[at + len("benchmarks/results/"):].rstrip(".,:;")
                if name:
                    yield number, name, bool(COMMIT_PREFIX.search(text[:at]))


def test_every_relative_link_and_anchor_resolves():
    problems = []
    for page in PAGES:
        where = page.relative_to(ROOT)
        for number, target in links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                problems.append(f"{where}:{number}: link {target!r}: {path_part} does not exist")
                continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where}:{number}: link {target!r}: no heading of "
                                f"{dest.relative_to(ROOT)} has the anchor #{anchor}")
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_results_file_is_cited_and_every_cited_one_exists():
    cited, problems = set(), []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        cited |= {Path(x).name for token in PATHLIKE.findall(text) for x in expand(token)
                  if not re.match(r"[0-9a-f]{7,40}:", x)}  # a commit's file is not this tree's
        for number, name, historic in cited_paths(page):
            if historic or "*" in name:
                continue
            if not (RESULTS / name).is_file():
                problems.append(f"{page.relative_to(ROOT)}:{number}: cites "
                                f"benchmarks/results/{name}, which does not exist")
    for path in sorted(RESULTS.rglob("*")):
        if path.is_file() and path.name not in cited:
            problems.append(f"benchmarks/results/{path.relative_to(RESULTS)} is cited by no page "
                            "(README.md or docs/*.md): cite it or remove it")
    assert not problems, "\n".join(problems)


def test_the_checks_themselves():
    assert slug("What `configs/all_cpu.config` scores") == "what-configsall_cpuconfig-scores"
    assert slug("What stops it short of 0.95") == "what-stops-it-short-of-095"
    assert slug("Pre's touching cells, by eye") == "pres-touching-cells-by-eye"
    assert sorted(expand("real_all_contact20{,_depth0}.{json,md}")) == [
        "real_all_contact20.json", "real_all_contact20.md", "real_all_contact20_depth0.json",
        "real_all_contact20_depth0.md"]
    assert sorted(expand("throughput[_quick].md")) == ["throughput.md", "throughput_quick.md"]
    assert prose_lines("a\n```\n[x](y)\n```\nb") == ["a", "", "", "", "b"]
    assert not list(LINK.finditer(without_code_spans("`[x](nowhere.md)`")))
